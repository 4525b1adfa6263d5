// Package asset keeps an issuer's assets: the card art images and the
// terms-and-conditions documents that a wallet server fetches with getAsset
// by the GUIDs checkCardAccount and METADATA_UPDATE hand it. Each asset is
// stored in the database (both backends) with its issuer, kind, content type,
// size and SHA-256, and is checked before it is kept: an image must decode
// as the type it claims (PNG or JPEG, at most 4096 pixels a side, the size
// read before the pixels so a small file cannot claim a huge image), a
// terms document must be UTF-8 text (plain or HTML) or a PDF with its
// header and trailer. The standard library decodes the images; nothing else
// is needed.
package asset
