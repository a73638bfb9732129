// Package web is zipq's UI: a Vite + TypeScript single-page app, built into
// dist/ui by `npm run build` (the Makefile runs it) and embedded here, so
// the binary serves it with no CDN or separate web server.
package web

import (
	"embed"
	"io/fs"
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
				files.ServeHTTP(w, r)
				return
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		// The UI builds every element from text nodes; this keeps any
		// injected markup from running scripts or loading from elsewhere.
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
		_, _ = w.Write(index)
	})
}

func notBuilt(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte("zipq's UI is not built into this binary: run `make build` (npm ci && npm run build in web/), then build zipq again.\nThe API is at /api/v2/.\n"))
}
