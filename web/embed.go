// Package web is zipq's UI: a TypeScript single-page app, bundled into
// dist/ui by web/build (esbuild's Go API; `make ui` runs it) and embedded
// here, so the binary serves it with no CDN or separate web server.
package web

import (
	"bytes"
	"compress/gzip"
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

//go:embed all:dist
var dist embed.FS

// Handler serves the built UI. Paths that are not files get index.html,
// so deep links (/traces/{id}, /dependencies) load the app, which routes
// them. Without a build it explains how to make one.
func Handler() http.Handler {
	ui, err := fs.Sub(dist, "dist/ui")
	if err != nil {
		panic(err) // unreachable: the path is a constant inside the embed
	}
	index, err := fs.ReadFile(ui, "index.html")
	if err != nil {
		return http.HandlerFunc(notBuilt)
	}
	files := http.FileServerFS(ui)
	packed := gzipAssets(ui)
	indexGz := gzipBytes(index)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Every UI response: no content sniffing, no framing by other sites
		// (clickjacking the replay form).
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		p := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		if strings.HasPrefix(p, "api/") || strings.HasPrefix(p, "admin/") {
			http.NotFound(w, r)
			return
		}
		if p != "" && p != "index.html" {
			if st, err := fs.Stat(ui, p); err == nil && !st.IsDir() {
				if strings.HasPrefix(p, "assets/") { // content-hashed names
					w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
				}
				if gz, ok := packed[p]; ok {
					w.Header().Set("Vary", "Accept-Encoding")
					if acceptsGzip(r) {
						w.Header().Set("Content-Type", mime.TypeByExtension(path.Ext(p)))
						w.Header().Set("Content-Encoding", "gzip")
						_, _ = w.Write(gz)
						return
					}
				}
				files.ServeHTTP(w, r)
				return
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		// The UI builds every element from text nodes; this keeps any
		// injected markup from running scripts or loading from elsewhere.
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
		w.Header().Set("Vary", "Accept-Encoding")
		if acceptsGzip(r) {
			w.Header().Set("Content-Encoding", "gzip")
			_, _ = w.Write(indexGz)
			return
		}
		_, _ = w.Write(index)
	})
}

// gzipAssets compresses the UI's text assets once, when the handler is
// made (the embedded files never change), so each request is served
// pre-compressed at no CPU cost: the app's JavaScript shrinks about 3×.
func gzipAssets(ui fs.FS) map[string][]byte {
	out := map[string][]byte{}
	_ = fs.WalkDir(ui, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch path.Ext(p) {
		case ".js", ".css", ".html", ".svg", ".json", ".map":
		default:
			return nil
		}
		b, err := fs.ReadFile(ui, p)
		if err != nil {
			return err
		}
		if gz := gzipBytes(b); len(gz) < len(b) {
			out[p] = gz
		}
		return nil
	})
	return out
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // a valid level: no error
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

// acceptsGzip reads Accept-Encoding's gzip entry (refused only by q=0).
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") {
			q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}

func notBuilt(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte("zipq's UI is not built into this binary: run `make build` (go run ./web/build bundles it), then build zipq again.\nThe API is at /api/v2/.\n"))
}
