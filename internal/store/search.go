package store

import "strings"

// EscapeLike escapes LIKE's wildcards (and the escape character) in s, for
// a pattern written with ESCAPE '\' on both dialects: a search for "a_b"
// matches "a_b" only.
func EscapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// ListQuery selects one page of a list shown to operators, newest first.
type ListQuery struct {
	// Status keeps the rows in this state ("": any).
	Status string
	// Search keeps the rows one of whose identifiers is exactly this
	// ("": every row); which identifiers depends on the list.
	Search string
	// Before is the identifier of the last row of the page before
	// ("": the first page); the page holds the rows listed after it.
	Before string
	// Limit bounds the page (each list caps it).
	Limit int
}
