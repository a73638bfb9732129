// Package docs holds zipq's documentation; its test checks that every link
// and every repository path the README and the docs name resolves inside
// the repository, so a reader never follows a path that is not there.
package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	// A repository path in backticks: a folder (`storage/`) or a file with
	// an extension (`web/src/main.ts`, `.ci/run` aside).
	repoPath = regexp.MustCompile("`((?:[a-z][a-z0-9_-]*/)+(?:[A-Za-z0-9_.-]+\\.(?:go|md|sh|sql|ts|mjs|yaml|yml|json|png|html|css))?)`")
)

// generated are paths a build or an install makes; they are not in a
// fresh clone.
var generated = []string{"bin", "web/dist/ui", "web/node_modules", "web/.node", "web/.deps", "web/.test-build"}

func TestLinksResolveInsideTheRepository(t *testing.T) {
	files := []string{"../README.md"}
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".md") {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		if strings.Contains(text, "../shared") {
			t.Errorf("%s points at ../shared, which is not part of the repository", f)
		}
		for _, m := range mdLink.FindAllStringSubmatch(text, -1) {
			target, _, _ := strings.Cut(m[1], "#")
			if target == "" || strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(f), target)); err != nil {
				t.Errorf("%s: link %s does not resolve", f, m[1])
			}
		}
		for _, m := range repoPath.FindAllStringSubmatch(text, -1) {
			p := strings.TrimSuffix(m[1], "/")
			if isGenerated(p) {
				continue
			}
			if _, err := os.Stat(filepath.Join("..", p)); err != nil {
				t.Errorf("%s: path `%s` is not in the repository", f, m[1])
			}
		}
	}
}

func isGenerated(p string) bool {
	for _, g := range generated {
		if p == g || strings.HasPrefix(p, g+"/") {
			return true
		}
	}
	return false
}
