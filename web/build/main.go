// Command build bundles the web UI into web/dist/ui with esbuild's Go API,
// so building and running zipq needs Go alone: no Node.js, no npm. It is
// what `make ui` (and so `make run` and `make build`) runs:
//
//	go run ./web/build
//
// The UI's runtime dependencies (the graph layout library and what it
// needs) are the packages web/package-lock.json pins outside its dev
// tree. They are read from web/node_modules when `npm ci` installed them,
// and otherwise fetched once from the npm registry (ZIPQ_NPM_REGISTRY,
// default https://registry.npmjs.org) into web/.deps, each checked
// against the lockfile's sha512 integrity before it is unpacked.
//
// Type-checking (tsc) and the browser tests stay with Node.js, in `make
// test`: esbuild strips types without checking them.
package main

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/evanw/esbuild/pkg/api"
)

func main() {
	web := flag.String("web", "web", "the UI's directory (package-lock.json, index.html, src/)")
	fetchOnly := flag.Bool("fetch-only", false, "only fetch the runtime dependencies into web/.deps (for an offline build later)")
	flag.Parse()
	if err := run(*web, *fetchOnly); err != nil {
		fmt.Fprintln(os.Stderr, "web/build:", err)
		os.Exit(1)
	}
}

func run(web string, fetchOnly bool) error {
	start := time.Now()
	deps, err := runtimeDeps(filepath.Join(web, "package-lock.json"))
	if err != nil {
		return err
	}
	// -fetch-only fills web/.deps whatever node_modules holds: it makes
	// the copy an offline build (scripts/fresh-machine.sh) takes along.
	modules := filepath.Join(web, "node_modules")
	if fetchOnly || !installed(modules, deps) {
		modules = filepath.Join(web, ".deps", "node_modules")
		if err := fetch(modules, deps); err != nil {
			return err
		}
	}
	if fetchOnly {
		return nil
	}
	files, err := bundle(web, modules)
	if err != nil {
		return err
	}
	fmt.Printf("web/build: %d files in %s (%s)\n", files, filepath.Join(web, "dist", "ui"), time.Since(start).Round(time.Millisecond))
	return nil
}

// dep is one package the lockfile pins for the UI at run time.
type dep struct {
	name, version, integrity string
}

// runtimeDeps lists the lockfile's packages that are not dev-only: what
// the bundle may import.
func runtimeDeps(lockfile string) ([]dep, error) {
	b, err := os.ReadFile(lockfile)
	if err != nil {
		return nil, err
	}
	var lock struct {
		Packages map[string]struct {
			Version   string `json:"version"`
			Integrity string `json:"integrity"`
			Dev       bool   `json:"dev"`
			DevOpt    bool   `json:"devOptional"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(b, &lock); err != nil {
		return nil, fmt.Errorf("%s: %w", lockfile, err)
	}
	var deps []dep
	for key, p := range lock.Packages {
		name, ok := strings.CutPrefix(key, "node_modules/")
		if !ok || p.Dev || p.DevOpt || strings.Contains(name, "/node_modules/") {
			continue
		}
		if !validName.MatchString(name) || p.Integrity == "" {
			return nil, fmt.Errorf("%s: package %q has no usable name or integrity", lockfile, key)
		}
		deps = append(deps, dep{name: name, version: p.Version, integrity: p.Integrity})
	}
	return deps, nil
}

// validName is an npm package name, scoped or not: nothing that could
// leave the modules directory.
var validName = regexp.MustCompile(`^(@[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*$`)

// installed reports whether dir holds every dependency at its version.
func installed(dir string, deps []dep) bool {
	for _, d := range deps {
		b, err := os.ReadFile(filepath.Join(dir, d.name, "package.json"))
		if err != nil {
			return false
		}
		var p struct{ Version string }
		if json.Unmarshal(b, &p) != nil || p.Version != d.version {
			return false
		}
	}
	return true
}

// fetch unpacks each missing dependency into dir from the registry,
// refusing a tarball whose sha512 differs from the lockfile's.
func fetch(dir string, deps []dep) error {
	registry := strings.TrimSuffix(os.Getenv("ZIPQ_NPM_REGISTRY"), "/")
	if registry == "" {
		registry = "https://registry.npmjs.org"
	}
	client := &http.Client{Timeout: 2 * time.Minute}
	for _, d := range deps {
		if installed(dir, []dep{d}) {
			continue
		}
		url := registry + "/" + d.name + "/-/" + path.Base(d.name) + "-" + d.version + ".tgz"
		fmt.Printf("web/build: fetching %s@%s\n", d.name, d.version)
		body, err := get(client, url)
		if err != nil {
			return fmt.Errorf("%s@%s: %w (run `cd web && npm ci`, or set ZIPQ_NPM_REGISTRY to a mirror)", d.name, d.version, err)
		}
		if err := verify(body, d.integrity); err != nil {
			return fmt.Errorf("%s@%s from %s: %w", d.name, d.version, url, err)
		}
		dst := filepath.Join(dir, filepath.FromSlash(d.name))
		if err := os.RemoveAll(dst); err != nil {
			return err
		}
		if err := untar(body, dst); err != nil {
			return fmt.Errorf("%s@%s: %w", d.name, d.version, err)
		}
	}
	return nil
}

func get(client *http.Client, url string) ([]byte, error) {
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 64<<20))
}

// verify checks a Subresource Integrity string (npm's sha512-<base64>).
func verify(body []byte, integrity string) error {
	want, ok := strings.CutPrefix(integrity, "sha512-")
	if !ok {
		return fmt.Errorf("integrity %q: only sha512 is accepted", integrity)
	}
	sum := sha512.Sum512(body)
	if got := base64.StdEncoding.EncodeToString(sum[:]); got != want {
		return errors.New("sha512 differs from package-lock.json: refusing it")
	}
	return nil
}

// untar unpacks an npm tarball (files under package/) into dst.
func untar(tgz []byte, dst string) error {
	zr, err := gzip.NewReader(strings.NewReader(string(tgz)))
	if err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg {
			continue // npm packs regular files; directories are implied
		}
		_, rel, ok := strings.Cut(h.Name, "/")
		rel = path.Clean(rel)
		if !ok || rel == "." || strings.HasPrefix(rel, "../") || path.IsAbs(rel) {
			return fmt.Errorf("tar entry %q escapes the package", h.Name)
		}
		p := filepath.Join(dst, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, io.LimitReader(tr, 64<<20))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
}

// bundle builds src/main.ts (and the CSS it imports) into content-hashed
// files under dist/ui/assets and writes dist/ui/index.html pointing at
// them, as the embed (web/embed.go) serves them.
func bundle(web, modules string) (int, error) {
	out, err := filepath.Abs(filepath.Join(web, "dist", "ui"))
	if err != nil {
		return 0, err
	}
	if err := os.RemoveAll(out); err != nil {
		return 0, err
	}
	res := api.Build(api.BuildOptions{
		EntryPoints:       []string{filepath.Join(web, "src", "main.ts")},
		Bundle:            true,
		Outdir:            filepath.Join(out, "assets"),
		EntryNames:        "[name]-[hash]",
		AssetNames:        "[name]-[hash]",
		Format:            api.FormatESModule,
		Target:            api.ES2022,
		MinifyWhitespace:  true,
		MinifyIdentifiers: true,
		MinifySyntax:      true,
		Sourcemap:         api.SourceMapNone,
		NodePaths:         []string{modules},
		Tsconfig:          filepath.Join(web, "tsconfig.json"),
		Metafile:          true,
		Write:             true,
		LogLevel:          api.LogLevelWarning,
	})
	if len(res.Errors) > 0 {
		msgs := api.FormatMessages(res.Errors, api.FormatMessagesOptions{Kind: api.ErrorMessage})
		return 0, errors.New(strings.Join(msgs, ""))
	}
	var script, style string
	for _, f := range res.OutputFiles {
		rel, err := filepath.Rel(out, f.Path)
		if err != nil {
			return 0, err
		}
		switch filepath.Ext(rel) {
		case ".js":
			script = "/" + filepath.ToSlash(rel)
		case ".css":
			style = "/" + filepath.ToSlash(rel)
		}
	}
	if script == "" {
		return 0, errors.New("esbuild wrote no script")
	}
	index, err := os.ReadFile(filepath.Join(web, "index.html"))
	if err != nil {
		return 0, err
	}
	const entry = `<script type="module" src="/src/main.ts"></script>`
	if !strings.Contains(string(index), entry) {
		return 0, fmt.Errorf("%s has no %s to replace", filepath.Join(web, "index.html"), entry)
	}
	html := strings.Replace(string(index), entry, `<script type="module" crossorigin src="`+script+`"></script>`, 1)
	if style != "" {
		html = strings.Replace(html, "</head>", `  <link rel="stylesheet" crossorigin href="`+style+`">`+"\n  </head>", 1)
	}
	if err := os.WriteFile(filepath.Join(out, "index.html"), []byte(html), 0o644); err != nil {
		return 0, err
	}
	return len(res.OutputFiles) + 1, nil
}
