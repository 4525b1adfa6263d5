package asset

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"strings"
	"testing"
)

func pngOf(w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	img.Set(0, 0, color.RGBA{1, 2, 3, 255})
	var b bytes.Buffer
	_ = png.Encode(&b, img)
	return b.Bytes()
}

func jpegOf(w, h int) []byte {
	var b bytes.Buffer
	_ = jpeg.Encode(&b, image.NewRGBA(image.Rect(0, 0, w, h)), nil)
	return b.Bytes()
}

// hugePNG is a valid PNG header claiming 100000x100000 pixels: refused on
// its size, before any pixel is allocated.
func hugePNG() []byte {
	b := pngOf(1, 1)
	// IHDR width and height sit at bytes 16..23.
	copy(b[16:24], []byte{0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0})
	return b
}

func TestCheck(t *testing.T) {
	pdf := []byte("%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n")
	for _, c := range []struct {
		name, declared string
		content        []byte
		kind           Kind
		mt             string
	}{
		{"png", "image/png", pngOf(32, 20), CardArt, PNG},
		{"jpeg", "image/jpeg", jpegOf(16, 16), CardArt, JPEG},
		{"text", "text/plain; charset=UTF-8", []byte("Terms: be nice."), Terms, Text},
		{"html", "text/html", []byte("<p>Terms</p>"), Terms, HTML},
		{"pdf", "application/pdf", pdf, Terms, PDF},
		{"a JPEG labelled PNG", "image/png", jpegOf(16, 16), "", ""},
		{"a PNG labelled JPEG", "image/jpeg", pngOf(8, 8), "", ""},
		{"text labelled PNG", "image/png", []byte("hello"), "", ""},
		{"a truncated PNG", "image/png", pngOf(64, 64)[:60], "", ""},
		{"a huge PNG", "image/png", hugePNG(), "", ""},
		{"latin-1 text", "text/plain; charset=iso-8859-1", []byte("caf\xe9"), "", ""},
		{"invalid UTF-8", "text/plain", []byte("caf\xe9"), "", ""},
		{"a PNG labelled PDF", "application/pdf", pngOf(4, 4), "", ""},
		{"an unknown type", "image/gif", []byte("GIF89a"), "", ""},
		{"no media type", "png", pngOf(4, 4), "", ""},
		{"empty", "image/png", nil, "", ""},
		{"too large", "text/plain", []byte(strings.Repeat("a", MaxSize+1)), "", ""},
	} {
		kind, mt, err := Check(c.declared, c.content)
		if c.kind == "" {
			if KindOf(err) != KindBadContent {
				t.Errorf("%s: accepted as %s %s (%v)", c.name, kind, mt, err)
			}
			continue
		}
		if err != nil || kind != c.kind || mt != c.mt {
			t.Errorf("%s: %s %s %v", c.name, kind, mt, err)
		}
	}
}

func TestNewGUID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		g := NewGUID()
		if !GUIDPattern.MatchString(g) || g[14] != '4' || seen[g] {
			t.Fatalf("GUID %s", g)
		}
		seen[g] = true
	}
}

// FuzzCheck: whatever the content and its label, Check never panics, and
// what it accepts is within the size bound and decodes as its type.
func FuzzCheck(f *testing.F) {
	f.Add("image/png", pngOf(3, 3))
	f.Add("image/jpeg", jpegOf(8, 8))
	f.Add("text/plain", []byte("terms"))
	f.Add("application/pdf", []byte("%PDF-1.7 %%EOF"))
	f.Add("image/png", hugePNG())
	f.Fuzz(func(t *testing.T, declared string, content []byte) {
		kind, mt, err := Check(declared, content)
		if err != nil {
			if KindOf(err) != KindBadContent {
				t.Fatalf("refusal %v is not a bad-content refusal", err)
			}
			return
		}
		if len(content) == 0 || len(content) > MaxSize {
			t.Fatalf("accepted %d bytes", len(content))
		}
		switch mt {
		case PNG, JPEG:
			cfg, _, derr := image.DecodeConfig(bytes.NewReader(content))
			if kind != CardArt || derr != nil || cfg.Width > MaxSide || cfg.Height > MaxSide {
				t.Fatalf("accepted %s as %s: %v %+v", declared, mt, derr, cfg)
			}
		case Text, HTML, PDF:
			if kind != Terms {
				t.Fatalf("%s is %s", mt, kind)
			}
		default:
			t.Fatalf("accepted content type %s", mt)
		}
	})
}
