package apiref

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Result(), string(body)
}

// The embedded bundle is the one static/SHA256SUMS pins.
func TestEmbeddedRendererMatchesItsPinnedSums(t *testing.T) {
	sums, err := static.ReadFile("static/SHA256SUMS")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(sums), "# redoc "+RedocVersion+"\n") {
		t.Errorf("SHA256SUMS names another version than %s:\n%s", RedocVersion, sums)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		want, file, _ := strings.Cut(line, "  ")
		raw, err := static.ReadFile("static/" + file)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		got := sha256.Sum256(raw)
		if hex.EncodeToString(got[:]) != want {
			t.Errorf("%s does not match its pinned sum", file)
		}
		n++
	}
	if n != 3 {
		t.Errorf("%d files pinned, want 3", n)
	}
}

func TestHandler_ServesAnIndexAPagePerDocumentAndTheRenderer(t *testing.T) {
	resp, index := get(t, "/reference/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("index: HTTP %d", resp.StatusCode)
	}
	docs := documents()
	if len(docs) < 7 {
		t.Fatalf("%d documents", len(docs))
	}
	for _, d := range docs {
		if !strings.Contains(index, `href="/reference/`+d.Name+`"`) {
			t.Errorf("index lacks %s", d.Name)
		}
		resp, page := get(t, "/reference/"+d.Name)
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, `data-spec="/openapi/`+d.File+`"`) ||
			!strings.Contains(page, `<script src="/reference/static/redoc.standalone.js" defer></script>`) {
			t.Errorf("%s: HTTP %d\n%s", d.Name, resp.StatusCode, page)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self';") || strings.Contains(csp, "http") {
			t.Errorf("%s: CSP %q", d.Name, csp)
		}
	}
	for path, want := range map[string]string{
		"/reference/static/redoc.standalone.js": "text/javascript",
		"/reference/static/reference.js":        "text/javascript",
		"/reference/static/reference.css":       "text/css",
	} {
		if resp, _ := get(t, path); resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), want) {
			t.Errorf("%s: HTTP %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	for _, path := range []string{"/reference/nothing", "/reference/crm.yaml", "/reference/static/none.js"} {
		if resp, _ := get(t, path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: HTTP %d, want 404", path, resp.StatusCode)
		}
	}
}
