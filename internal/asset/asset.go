package asset

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"image/jpeg"
	"image/png"
	"mime"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/provhub/provhub/internal/refusal"
	"github.com/provhub/provhub/internal/store"
)

// Kind is what an asset is for.
type Kind string

const (
	CardArt Kind = "CARD_ART"
	Terms   Kind = "TERMS"
)

// Content types accepted, by kind.
const (
	PNG   = "image/png"
	JPEG  = "image/jpeg"
	Text  = "text/plain"
	HTML  = "text/html"
	PDF   = "application/pdf"
	limit = 512 << 10
)

// MaxSize is the largest asset accepted, in bytes.
const MaxSize = limit

// MaxSide bounds an image's width and height, in pixels.
const MaxSide = 4096

// NoTerms is the termsAndConditionsId that says no terms apply.
const NoTerms = "00000000-0000-0000-0000-000000000000"

// Asset is a stored asset without its content.
type Asset struct {
	GUID, IssuerID string
	Kind           Kind
	ContentType    string
	Size           int
	SHA256         string
	Description    string
	CreatedAt      time.Time
}

// ErrorKind classifies refusals.
type ErrorKind int

const (
	// KindBadContent: the content is not what it claims, or too large.
	KindBadContent ErrorKind = iota + 1
	// KindNotFound: no such asset for this issuer.
	KindNotFound
	// KindInUse: a card still shows the asset.
	KindInUse
)

// KindOf returns the kind of a refusal of this package, 0 for any other error.
func KindOf(err error) ErrorKind { return refusal.KindOf[ErrorKind](err) }

func errorf(kind ErrorKind, format string, args ...any) error {
	return refusal.New(kind, format, args...)
}

// GUIDPattern is the form of the GUIDs the hub makes (lower-case UUIDs).
var GUIDPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// Store keeps assets in the database.
type Store struct {
	db  *store.DB
	now func() time.Time
}

// New returns a Store over db; clock may be nil (time.Now).
func New(db *store.DB, clock func() time.Time) *Store {
	if clock == nil {
		clock = time.Now
	}
	return &Store{db: db, now: clock}
}

// Check tells what content is: its kind and normalised content type,
// or a refusal saying why it is not the declared type. declared may carry
// parameters (text/plain; charset=utf-8); only UTF-8 text is accepted.
func Check(declared string, content []byte) (Kind, string, error) {
	mt, params, err := mime.ParseMediaType(declared)
	if err != nil {
		return "", "", errorf(KindBadContent, "content type %q is not a media type", declared)
	}
	if len(content) == 0 {
		return "", "", errorf(KindBadContent, "the asset is empty")
	}
	if len(content) > MaxSize {
		return "", "", errorf(KindBadContent, "the asset has %d bytes; at most %d are accepted", len(content), MaxSize)
	}
	switch mt {
	case PNG, JPEG:
		if err := checkImage(mt, content); err != nil {
			return "", "", err
		}
		return CardArt, mt, nil
	case Text, HTML:
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
			return "", "", errorf(KindBadContent, "text must be UTF-8, not %s", cs)
		}
		if !utf8.Valid(content) || bytes.IndexByte(content, 0) >= 0 {
			return "", "", errorf(KindBadContent, "the content is not UTF-8 text")
		}
		if mt == HTML && !strings.Contains(strings.ToLower(string(content[:min(len(content), 1024)])), "<") {
			return "", "", errorf(KindBadContent, "the content is not HTML")
		}
		return Terms, mt, nil
	case PDF:
		if !bytes.HasPrefix(content, []byte("%PDF-")) || !bytes.Contains(content[max(0, len(content)-1024):], []byte("%%EOF")) {
			return "", "", errorf(KindBadContent, "the content is not a PDF document (no %%PDF- header or %%%%EOF trailer)")
		}
		return Terms, mt, nil
	}
	return "", "", errorf(KindBadContent, "content type %s is not accepted: card art is image/png or image/jpeg, terms text/plain, text/html or application/pdf", mt)
}

// checkImage decodes an image as the type it claims: its size first, so
// that a small file claiming a huge image is refused before its pixels are
// allocated, then all of it.
func checkImage(mt string, content []byte) error {
	decodeConfig, decode := png.DecodeConfig, png.Decode
	if mt == JPEG {
		decodeConfig, decode = jpeg.DecodeConfig, jpeg.Decode
	}
	cfg, err := decodeConfig(bytes.NewReader(content))
	if err != nil {
		return errorf(KindBadContent, "the content is not a %s image", mt)
	}
	if cfg.Width < 1 || cfg.Height < 1 || cfg.Width > MaxSide || cfg.Height > MaxSide {
		return errorf(KindBadContent, "the image is %dx%d pixels; each side must be 1 to %d", cfg.Width, cfg.Height, MaxSide)
	}
	if _, err := decode(bytes.NewReader(content)); err != nil {
		return errorf(KindBadContent, "the %s image does not decode: %v", mt, err)
	}
	return nil
}

// NewGUID returns a random (version 4) UUID in lower case.
func NewGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Add checks content and stores it as a new asset of issuerID.
func (s *Store) Add(ctx context.Context, issuerID, contentType string, content []byte, description string) (*Asset, error) {
	kind, mt, err := Check(contentType, content)
	if err != nil {
		return nil, err
	}
	if len(description) > 128 {
		return nil, errorf(KindBadContent, "the description has at most 128 characters")
	}
	sum := sha256.Sum256(content)
	a := &Asset{GUID: NewGUID(), IssuerID: issuerID, Kind: kind, ContentType: mt, Size: len(content),
		SHA256: hex.EncodeToString(sum[:]), Description: description, CreatedAt: s.now().UTC()}
	_, err = s.db.Writer().ExecContext(ctx, `INSERT INTO assets (guid, issuer_id, kind, content_type, content, size, sha256, description, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, a.GUID, issuerID, string(kind), mt, content, a.Size, a.SHA256, nullString(description), a.CreatedAt.UnixMicro())
	if err != nil {
		return nil, fmt.Errorf("store asset: %w", err)
	}
	return a, nil
}

const columns = `guid, issuer_id, kind, content_type, size, sha256, description, created_at`

func scan(row interface{ Scan(...any) error }, extra ...any) (*Asset, error) {
	var a Asset
	var desc sql.NullString
	var created int64
	if err := row.Scan(append([]any{&a.GUID, &a.IssuerID, &a.Kind, &a.ContentType, &a.Size, &a.SHA256, &desc, &created}, extra...)...); err != nil {
		return nil, err
	}
	a.Description, a.CreatedAt = desc.String, time.UnixMicro(created).UTC()
	return &a, nil
}

// List returns an issuer's assets, oldest first.
func (s *Store) List(ctx context.Context, issuerID string) ([]Asset, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT `+columns+` FROM assets WHERE issuer_id = $1 ORDER BY created_at, guid`, issuerID)
	if err != nil {
		return nil, fmt.Errorf("list assets: %w", err)
	}
	defer rows.Close()
	var out []Asset
	for rows.Next() {
		a, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("list assets: %w", err)
		}
		out = append(out, *a)
	}
	return out, rows.Err()
}

// Get returns an asset and its content. serves says which issuers the
// caller may read; an asset of any other issuer is as unknown as one that
// does not exist.
func (s *Store) Get(ctx context.Context, guid string, serves func(issuerID string) bool) (*Asset, []byte, error) {
	var content []byte
	a, err := scan(s.db.Reader().QueryRowContext(ctx, `SELECT `+columns+`, content FROM assets WHERE guid = $1`, strings.ToLower(guid)), &content)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil, errorf(KindNotFound, "unknown asset %s", guid)
	case err != nil:
		return nil, nil, fmt.Errorf("read asset: %w", err)
	case !serves(a.IssuerID):
		return nil, nil, errorf(KindNotFound, "unknown asset %s", guid)
	}
	return a, content, nil
}

// Info returns an asset of issuerID without its content.
func (s *Store) Info(ctx context.Context, issuerID, guid string) (*Asset, error) {
	a, err := scan(s.db.Reader().QueryRowContext(ctx, `SELECT `+columns+` FROM assets WHERE guid = $1 AND issuer_id = $2`, strings.ToLower(guid), issuerID))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, errorf(KindNotFound, "unknown asset %s", guid)
	case err != nil:
		return nil, fmt.Errorf("read asset: %w", err)
	}
	return a, nil
}

// Require checks that every guid names an asset of issuerID of kind.
func (s *Store) Require(ctx context.Context, issuerID string, kind Kind, guids ...string) error {
	for _, g := range guids {
		a, err := s.Info(ctx, issuerID, g)
		if err != nil {
			return err
		}
		if a.Kind != kind {
			return errorf(KindBadContent, "asset %s is %s, not %s", g, a.Kind, kind)
		}
	}
	return nil
}

// Remove deletes an asset of issuerID that no card shows.
func (s *Store) Remove(ctx context.Context, issuerID, guid string) error {
	guid = strings.ToLower(guid)
	if _, err := s.Info(ctx, issuerID, guid); err != nil {
		return err
	}
	var n int
	if err := s.db.Reader().QueryRowContext(ctx, `SELECT COUNT(*) FROM issuer_cards WHERE issuer_id = $1 AND state <> 'DELETED'
		AND (terms_id = $2 OR card_art LIKE $3)`, issuerID, guid, `%"`+guid+`"%`).Scan(&n); err != nil {
		return fmt.Errorf("asset in use: %w", err)
	}
	if n > 0 {
		return errorf(KindInUse, "asset %s is shown by %d card(s); register them without it first", guid, n)
	}
	if _, err := s.db.Writer().ExecContext(ctx, `DELETE FROM assets WHERE guid = $1 AND issuer_id = $2`, guid, issuerID); err != nil {
		return fmt.Errorf("remove asset: %w", err)
	}
	return nil
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
