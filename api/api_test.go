package api

import (
	"context"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// Every document loads and validates, and its summaries (the one line
// tools list) say what an operation does: where provhub assumed or added
// something is said in the description, not there.
func TestDocuments_LoadValidateAndKeepAssumptionsOutOfSummaries(t *testing.T) {
	docs := Documents()
	if len(docs) < 7 {
		t.Fatalf("%d documents", len(docs))
	}
	for _, d := range docs {
		raw, err := Files.ReadFile(d.File)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := openapi3.NewLoader().LoadFromData(raw)
		if err != nil {
			t.Errorf("%s: %v", d.File, err)
			continue
		}
		if err := doc.Validate(context.Background()); err != nil {
			t.Errorf("%s: %v", d.File, err)
		}
		for path, item := range doc.Paths.Map() {
			for method, op := range item.Operations() {
				s := strings.ToLower(op.Summary)
				if strings.Contains(s, "(assumed") || strings.Contains(s, "(ours") || strings.Contains(s, "assumed)") {
					t.Errorf("%s %s %s: summary %q", d.File, method, path, op.Summary)
				}
			}
		}
	}
}
