package demo

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
)

// demoTerms are the sample issuer's terms and conditions.
const demoTerms = `DEMO TRANSIT - terms and conditions of the digital transit card

1. The digital card holds stored value for travel on the demo network.
2. Lost or stolen phones: ask the issuer to suspend the card; its value is kept.
3. The value of a deleted card can be claimed from the issuer within one year.
`

// demoArt draws a sample card's art: a 320x200 PNG in the card's own
// colour, with a stripe and a chip, so each sample card looks different.
func demoArt(i int) []byte {
	palette := []color.RGBA{{0x1f, 0x6f, 0xb4, 0xff}, {0x2e, 0x8b, 0x57, 0xff}, {0xb4, 0x4a, 0x1f, 0xff}}
	base := palette[i%len(palette)]
	img := image.NewRGBA(image.Rect(0, 0, 320, 200))
	for y := range 200 {
		for x := range 320 {
			c := base
			// A light diagonal sheen, a dark stripe and a gold chip.
			shade := uint8((x + y) / 8)
			c.R, c.G, c.B = sat(c.R, shade), sat(c.G, shade), sat(c.B, shade)
			if y >= 130 && y < 150 {
				c = color.RGBA{0x20, 0x20, 0x20, 0xff}
			}
			if x >= 30 && x < 80 && y >= 50 && y < 90 {
				c = color.RGBA{0xd4, 0xaf, 0x37, 0xff}
			}
			img.SetRGBA(x, y, c)
		}
	}
	var b bytes.Buffer
	_ = png.Encode(&b, img) // encoding an in-memory image to a buffer does not fail
	return b.Bytes()
}

func sat(v, add uint8) uint8 {
	if int(v)+int(add) > 0xff {
		return 0xff
	}
	return v + add
}
