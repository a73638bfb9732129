package query_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/zipq/zipq/auth"
	"github.com/zipq/zipq/query"
)

// everything serves every route the router has; its parts are never
// called (the walk stops at access control).
type everything struct {
	query.SpanReader
	query.TraceFinder
	query.TempoModel
	query.StatsReader
}

// routeScope is what each route needs. A route missing here needs read:
// a new route is closed until it is listed as public on purpose.
var (
	publicRoutes = map[string]bool{"GET /health": true, "GET /info": true, "GET /config.json": true, "GET /zipkin/config.json": true,
		"GET /api/echo": true, "GET /api/status/buildinfo": true, "GET /ready": true}
	writeRoutes = map[string]bool{"POST /api/v2/spans": true}
)

func scopeOf(method, route string) (auth.Scope, bool) {
	key := method + " " + route
	switch {
	// "/*" is the UI's files (any method): the UI asks for a token itself.
	case publicRoutes[key] || route == "/*" || method == http.MethodOptions:
		return 0, true
	case writeRoutes[key]:
		return auth.Write, false
	case strings.HasPrefix(route, "/admin/") || strings.HasPrefix(route, "/debug/") || route == "/api/zipq/pipeline":
		return auth.Admin, false
	}
	return auth.Read, false
}

// TestEveryRouteNeedsItsScope walks the route table of a router with every
// part switched on and tokens enforced: each route that is not public
// refuses a request without a token (401 with WWW-Authenticate), with a
// token of the other scopes (403), and with a token bound to another
// tenant than the one the request names (403) — and none of those answers
// carries anything but the refusal.
func TestEveryRouteNeedsItsScope(t *testing.T) {
	secrets := map[string]string{"reader": "zq_reader-0123456789", "writer": "zq_writer-0123456789",
		"admin": "zq_admin-0123456789ab", "team-a": "zq_team-a-0123456789"}
	var lines []string
	for name, scopes := range map[string]string{"reader": "read", "writer": "write", "admin": "admin", "team-a": "read,write,admin"} {
		h, err := bcrypt.GenerateFromPassword([]byte(secrets[name]), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		tenant := "-"
		if name == "team-a" {
			tenant = "team-a"
		}
		lines = append(lines, strings.Join([]string{name, scopes, tenant, "-", string(h)}, " "))
	}
	c := auth.DefaultConfig()
	c.TokensFile = filepath.Join(t.TempDir(), "tokens")
	c.FailureBurst = 1 << 20 // this test fails on purpose, many times
	if err := os.WriteFile(c.TokensFile, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	all := everything{}
	reg := prometheus.NewRegistry()
	h := query.NewRouter(query.Options{Auth: a, Reader: all, Finder: all, Tempo: all, Stats: all, Replayer: &fakeReplayer{},
		Ingest: http.NotFoundHandler(), Assets: http.NotFoundHandler(), Config: query.Config{Pprof: true}, Registerer: reg, Gatherer: reg,
		Pipeline: func(context.Context, bool) (any, error) { return nil, nil },
		Discard:  func(context.Context, string) (int, error) { return 0, nil }})
	routes := 0
	err = chi.Walk(h.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		need, public := scopeOf(method, route)
		if public {
			return nil
		}
		routes++
		target := strings.NewReplacer("{traceId}", "00000000000000aa", "{tag}", "x", "{profile}", "heap", "/*", "/").Replace(route)
		try := func(token, tenant string) *httptest.ResponseRecorder {
			req := httptest.NewRequest(method, target, nil)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			if tenant != "" {
				req.Header.Set(auth.TenantHeader, tenant)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return rec
		}
		if rec := try("", ""); rec.Code != http.StatusUnauthorized || !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s %s without a token: %d %q", method, route, rec.Code, rec.Body)
		}
		for name, scope := range map[string]auth.Scope{"reader": auth.Read, "writer": auth.Write, "admin": auth.Admin} {
			if scope == need {
				continue
			}
			if rec := try(secrets[name], ""); rec.Code != http.StatusForbidden {
				t.Errorf("%s %s (needs %s) with the %s token: %d %q", method, route, need, name, rec.Code, rec.Body)
			}
		}
		if rec := try(secrets["team-a"], "team-b"); rec.Code != http.StatusForbidden || strings.Contains(rec.Body.String(), "zq_") {
			t.Errorf("%s %s with team-a's token for team-b: %d %q", method, route, rec.Code, rec.Body)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if routes < 25 {
		t.Fatalf("walked %d guarded routes: the router did not switch everything on", routes)
	}
}
