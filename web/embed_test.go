package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(t *testing.T, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

// TestHandler: deep links get the app, files are served, API paths are
// never answered with the app. Without a build (go test before make
// build) every path explains how to build it.
func TestHandler(t *testing.T) {
	if _, err := fs.Stat(dist, "dist/ui/index.html"); err != nil {
		rec := get(t, "/traces/abc")
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "make build") {
			t.Fatalf("unbuilt UI: %d %q", rec.Code, rec.Body)
		}
		return
	}
	for _, p := range []string{"/", "/traces/463ac35c9f6413ad", "/dependencies?range=1d", "/pipeline", "/nope/deeper"} {
		rec := get(t, p)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `<main id="app">`) {
			t.Fatalf("%s: %d, want the app", p, rec.Code)
		}
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Fatalf("%s: CSP %q", p, csp)
		}
		if rec.Header().Get("X-Content-Type-Options") != "nosniff" || rec.Header().Get("X-Frame-Options") != "DENY" {
			t.Fatalf("%s: nosniff and no framing: %v", p, rec.Header())
		}
	}
	for _, p := range []string{"/favicon.svg", "/assets/"} {
		if rec := get(t, p); rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("%s: nosniff missing", p)
		}
	}
	for _, p := range []string{"/api/v2/unknown", "/admin/x"} {
		if rec := get(t, p); rec.Code != http.StatusNotFound {
			t.Fatalf("%s: %d, want 404", p, rec.Code)
		}
	}
	assets, err := fs.ReadDir(dist, "dist/ui/assets")
	if err != nil || len(assets) == 0 {
		t.Fatalf("no built assets: %v", err)
	}
	rec := get(t, "/assets/"+assets[0].Name())
	if rec.Code != http.StatusOK || !strings.Contains(rec.Header().Get("Cache-Control"), "immutable") {
		t.Fatalf("asset: %d %q", rec.Code, rec.Header().Get("Cache-Control"))
	}
}

// TestAssetsArePreCompressed: a browser that accepts gzip gets the app and
// its assets gzipped (compressed once, at start), with Vary set; what it
// unpacks is byte for byte what a client without gzip gets.
func TestAssetsArePreCompressed(t *testing.T) {
	if _, err := fs.Stat(dist, "dist/ui/index.html"); err != nil {
		t.Skip("UI not built")
	}
	assets, err := fs.ReadDir(dist, "dist/ui/assets")
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{"/", "/traces/abc"}
	for _, a := range assets {
		if strings.HasSuffix(a.Name(), ".js") {
			paths = append(paths, "/assets/"+a.Name())
		}
	}
	h := Handler()
	for _, p := range paths {
		plain := httptest.NewRecorder()
		h.ServeHTTP(plain, httptest.NewRequest(http.MethodGet, p, nil))
		req := httptest.NewRequest(http.MethodGet, p, nil)
		req.Header.Set("Accept-Encoding", "br;q=1.0, gzip;q=0.8")
		packed := httptest.NewRecorder()
		h.ServeHTTP(packed, req)
		if packed.Header().Get("Content-Encoding") != "gzip" || packed.Header().Get("Vary") != "Accept-Encoding" ||
			packed.Header().Get("Content-Type") != plain.Header().Get("Content-Type") {
			t.Fatalf("%s: headers %v (plain %v)", p, packed.Header(), plain.Header())
		}
		zr, err := gzip.NewReader(packed.Body)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(body, plain.Body.Bytes()) || packed.Body.Len() >= plain.Body.Len() {
			t.Fatalf("%s: %v, %d bytes gzipped for %d", p, err, packed.Body.Len(), plain.Body.Len())
		}
		refused := httptest.NewRequest(http.MethodGet, p, nil)
		refused.Header.Set("Accept-Encoding", "gzip;q=0")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, refused)
		if rec.Header().Get("Content-Encoding") != "" {
			t.Fatalf("%s: gzip sent to a client that refuses it", p)
		}
	}
}
