package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/zipq/zipq/internal/tenant"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// tokenLine is a tokens-file line for secret at bcrypt's lowest cost
// (tests only: the cost is in the hash, so checks stay fast).
func tokenLine(t testing.TB, name, scopes, tenant, expires, secret string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(secret), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join([]string{name, scopes, tenant, expires, string(h)}, " ")
}

func newAuth(t testing.TB, cfg Config, lines ...string) *Authenticator {
	t.Helper()
	if len(lines) > 0 {
		cfg.TokensFile = filepath.Join(t.TempDir(), "tokens")
		if err := os.WriteFile(cfg.TokensFile, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

const (
	readSecret  = "zq_read-secret-0123456789"
	adminSecret = "zq_admin-secret-0123456789"
)

func TestAuthenticate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Tenants = []string{"team-a", "team-b"}
	cfg.WriteToken = "zq_env-write-0123456789"
	a := newAuth(t, cfg,
		"# name scopes tenant expires hash",
		tokenLine(t, "grafana", "read", "team-a", "-", readSecret),
		tokenLine(t, "ops", "read,write,admin", "-", "-", adminSecret),
		tokenLine(t, "old", "read", "-", "2001-01-01", "zq_expired-secret-0123456789"),
	)
	if !a.Enforcing() || !a.HasAdmin() {
		t.Fatal("tokens configured: enforcing, with an admin")
	}
	ctx := context.Background()
	for _, c := range []struct {
		name, authz, tenant string
		need                Scope
		want                error // nil: allowed
		wantTenant          string
	}{
		{"bound tenant", "Bearer " + readSecret, "", Read, nil, "team-a"},
		{"bound tenant named", "Bearer " + readSecret, "team-a", Read, nil, "team-a"},
		{"bound tenant, other named", "Bearer " + readSecret, "team-b", Read, &ForbiddenError{}, ""},
		{"scope missing", "Bearer " + readSecret, "", Write, &ForbiddenError{}, ""},
		{"free token, tenant named", "Bearer " + adminSecret, "team-b", Admin, nil, "team-b"},
		{"free token, default tenant", "bearer " + adminSecret, "", Read | Write, nil, DefaultTenant},
		{"basic auth password", "Basic " + base64.StdEncoding.EncodeToString([]byte("grafana:"+readSecret)), "", Read, nil, "team-a"},
		{"env token", "Bearer " + cfg.WriteToken, "", Write, nil, DefaultTenant},
		{"env token, other scope", "Bearer " + cfg.WriteToken, "", Read, &ForbiddenError{}, ""},
		{"expired", "Bearer zq_expired-secret-0123456789", "", Read, ErrExpired, ""},
		{"wrong", "Bearer zq_wrong-secret-0123456789", "", Read, ErrInvalid, ""},
		{"missing", "", "", Read, ErrMissing, ""},
		{"bad scheme", "Token " + readSecret, "", Read, ErrInvalid, ""},
		{"bad tenant", "Bearer " + readSecret, "a/b", Read, &BadTenantError{}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := a.Authenticate(ctx, "192.0.2."+c.name, c.authz, c.tenant, c.need)
			switch {
			case c.want == nil:
				if err != nil || p.Tenant != c.wantTenant {
					t.Fatalf("got %+v, %v; want tenant %q", p, err, c.wantTenant)
				}
			case errors.As(c.want, new(*ForbiddenError)):
				if !errors.As(err, new(*ForbiddenError)) {
					t.Fatalf("got %v, want forbidden", err)
				}
			case errors.As(c.want, new(*BadTenantError)):
				if !errors.As(err, new(*BadTenantError)) {
					t.Fatalf("got %v, want a bad tenant", err)
				}
			case !errors.Is(err, c.want):
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

// A reload swaps the token set: a removed token stops working even after
// it was verified (and cached), a new one works, and a bad file keeps the
// tokens in use.
func TestReload(t *testing.T) {
	a := newAuth(t, DefaultConfig(), tokenLine(t, "a", "read", "-", "-", readSecret))
	ctx := context.Background()
	if _, err := a.Authenticate(ctx, "ip", "Bearer "+readSecret, "", Read); err != nil {
		t.Fatal(err)
	}
	write := func(lines ...string) {
		if err := os.WriteFile(a.cfg.TokensFile, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(tokenLine(t, "b", "read", "-", "-", adminSecret))
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, "ip", "Bearer "+readSecret, "", Read); !errors.Is(err, ErrInvalid) {
		t.Fatalf("removed token: %v", err)
	}
	if _, err := a.Authenticate(ctx, "ip", "Bearer "+adminSecret, "", Read); err != nil {
		t.Fatalf("added token: %v", err)
	}
	write("b read - - not-a-hash")
	if err := a.Reload(); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("bad file: %v", err)
	}
	if _, err := a.Authenticate(ctx, "ip", "Bearer "+adminSecret, "", Read); err != nil {
		t.Fatalf("after a failed reload the tokens in use stay: %v", err)
	}
}

func TestParseTokensErrorsNameTheLine(t *testing.T) {
	_, err := ParseTokens(strings.NewReader("# c\n\na read - -\nb reed - - $2a$04$x\nc read - tomorrow $2a$04$x\n"))
	for _, want := range []string{"line 3: 4 fields", `line 4: scope "reed"`, `line 5: expires "tomorrow"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
	line := tokenLine(t, "a", "read", "-", "-", readSecret)
	if _, err := ParseTokens(strings.NewReader(line + "\n" + line)); err == nil || !strings.Contains(err.Error(), "also on line 1") {
		t.Errorf("duplicate names: %v", err)
	}
}

func TestNewTokenRoundTrips(t *testing.T) {
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	secret, line, err := NewToken("grafana", Read|Admin, "team-a", exp, bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	toks, err := ParseTokens(strings.NewReader(line))
	if err != nil || len(toks) != 1 {
		t.Fatal(line, err)
	}
	tok := toks[0]
	if tok.Name != "grafana" || tok.Scopes != Read|Admin || tok.Tenant != "team-a" || !tok.Expires.Equal(exp) ||
		bcrypt.CompareHashAndPassword(tok.hash, []byte(secret)) != nil {
		t.Fatalf("%+v from %q", tok, line)
	}
	if got, ok, err := Credential("Bearer " + secret); !ok || err != nil || got != secret {
		t.Fatalf("a made token must pass the header parser: %q %v", got, err)
	}
}

// After burst failures an address waits, even with a good token (checked
// before the token, so guessing costs no bcrypt); other addresses do not.
func TestFailuresAreLimitedPerAddress(t *testing.T) {
	cfg := DefaultConfig()
	cfg.FailureBurst = 3
	a := newAuth(t, cfg, tokenLine(t, "a", "read", "-", "-", readSecret))
	ctx := context.Background()
	for range 3 {
		if _, err := a.Authenticate(ctx, "198.51.100.1", "Bearer zq_guess-0123456789abc", "", Read); !errors.Is(err, ErrInvalid) {
			t.Fatal(err)
		}
	}
	var lim *LimitedError
	if _, err := a.Authenticate(ctx, "198.51.100.1", "Bearer "+readSecret, "", Read); !errors.As(err, &lim) || lim.RetryAfter < time.Second {
		t.Fatalf("fourth attempt: %v", err)
	}
	if _, err := a.Authenticate(ctx, "198.51.100.2", "Bearer "+readSecret, "", Read); err != nil {
		t.Fatalf("another address: %v", err)
	}
	// Missing credentials cost nothing and are not limited (a browser
	// opening the UI before it has a token asks several times).
	for range 10 {
		if _, err := a.Authenticate(ctx, "198.51.100.3", "", "", Read); !errors.Is(err, ErrMissing) {
			t.Fatal(err)
		}
	}
	// The budget refills: with the clock moved on, the good token works.
	a.limiter.now = func() time.Time { return time.Now().Add(time.Minute) }
	if _, err := a.Authenticate(ctx, "198.51.100.1", "Bearer "+readSecret, "", Read); err != nil {
		t.Fatalf("after the refill: %v", err)
	}
}

func TestLimiterForgetsAndOverflows(t *testing.T) {
	l := newLimiter(1, time.Minute)
	now := time.Unix(1e9, 0)
	l.now = func() time.Time { return now }
	for i := range maxAddrs {
		l.fail(net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)).String())
	}
	if len(l.byAddr) != maxAddrs {
		t.Fatal(len(l.byAddr))
	}
	l.fail("192.0.2.1") // none refilled: shares the overflow budget
	if _, ok := l.byAddr["192.0.2.1"]; ok || l.wait("192.0.2.2") == 0 {
		t.Fatal("past the cap, new addresses share one budget")
	}
	now = now.Add(2 * time.Minute) // every budget whole again
	l.fail("192.0.2.3")
	if _, ok := l.byAddr["192.0.2.3"]; !ok || len(l.byAddr) != 1 {
		t.Fatalf("idle addresses are forgotten: %d remembered", len(l.byAddr))
	}
}

func TestExposure(t *testing.T) {
	open := DefaultConfig()
	if err := open.CheckExposure("127.0.0.1:9411", "[::1]:4317", "localhost:4318"); err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"0.0.0.0:9411", ":9411", "10.0.0.1:9411", "[::]:4317", "zipq:9411"} {
		if err := open.CheckExposure("127.0.0.1:1", addr); err == nil || !strings.Contains(err.Error(), "ZIPQ_AUTH=none") {
			t.Errorf("%s without tokens: %v", addr, err)
		}
	}
	none := open
	none.Mode = ModeNone
	withTokens := open
	withTokens.ReadToken = "zq_0123456789abcdef"
	adminOnly := open
	adminOnly.AdminToken = "zq_0123456789abcdef"
	for _, c := range []Config{none, withTokens} {
		if err := c.CheckExposure("0.0.0.0:9411"); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	if adminOnly.Enforcing() || adminOnly.CheckExposure("0.0.0.0:9411") == nil {
		t.Error("an admin token alone guards the admin actions, not reads: not on a network")
	}
	bad := open
	bad.Mode = ModeTokens
	bad.ReadToken = "short"
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "at least 16") {
		t.Error(err)
	}
}

func TestHTTP(t *testing.T) {
	a := newAuth(t, Config{Mode: ModeAuto, FailureBurst: 10, Tenants: []string{"team-a", "team-b"}}, tokenLine(t, "r", "read", "team-a", "-", readSecret))
	h := a.Require(Read)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := FromContext(r.Context())
		_, _ = w.Write([]byte(p.Tenant))
	}))
	do := func(authz, tenant string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/api/v2/services", nil)
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		if tenant != "" {
			r.Header.Set(TenantHeader, tenant)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	if w := do("Bearer "+readSecret, ""); w.Code != 200 || w.Body.String() != "team-a" {
		t.Fatal(w.Code, w.Body)
	}
	if w := do("", ""); w.Code != 401 || !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), `Bearer realm="zipq"`) {
		t.Fatal(w.Code, w.Header())
	}
	if w := do("Bearer zq_wrong-0123456789", ""); w.Code != 401 || !strings.Contains(w.Header().Get("WWW-Authenticate"), "invalid_token") {
		t.Fatal(w.Code, w.Header())
	}
	if w := do("Bearer "+readSecret, "team-b"); w.Code != 403 || strings.Contains(w.Body.String(), readSecret) {
		t.Fatal(w.Code, w.Body)
	}
	if w := do("Bearer "+readSecret, "bad/tenant"); w.Code != 400 {
		t.Fatal(w.Code, w.Body)
	}
	wh := a.Require(Write)(http.NotFoundHandler())
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.Header.Set("Authorization", "Bearer "+readSecret)
	wh.ServeHTTP(rec, r)
	if rec.Code != 403 || !strings.Contains(rec.Header().Get("WWW-Authenticate"), `scope="write"`) {
		t.Fatal(rec.Code, rec.Header())
	}

	// Not enforcing: reads pass with the named tenant; admin needs a token.
	o := newAuth(t, Config{Mode: ModeAuto, FailureBurst: 1, AdminToken: adminSecret, Tenants: []string{"team-a", "team-b"}})
	rec = httptest.NewRecorder()
	r = httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set(TenantHeader, "team-b")
	o.Require(Read)(h2(t, "team-b")).ServeHTTP(rec, r)
	if rec.Code != 200 {
		t.Fatal(rec.Code)
	}
	rec = httptest.NewRecorder()
	o.RequireToken(Admin)(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/admin/replay", nil))
	if rec.Code != 401 {
		t.Fatal("admin without a token:", rec.Code)
	}
}

func h2(t *testing.T, tenant string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := FromContext(r.Context()); !ok || p.Tenant != tenant {
			t.Errorf("principal %+v", p)
		}
	})
}

func TestGRPC(t *testing.T) {
	a := newAuth(t, DefaultConfig(), tokenLine(t, "w", "write", "-", "-", readSecret))
	ic := a.UnaryInterceptor(Write)
	call := func(md metadata.MD) codes.Code {
		ctx := metadata.NewIncomingContext(context.Background(), md)
		ctx = peer.NewContext(ctx, &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 9), Port: 5}})
		_, err := ic(ctx, nil, &grpc.UnaryServerInfo{}, func(ctx context.Context, _ any) (any, error) {
			if p, ok := FromContext(ctx); !ok || p.Name != "w" {
				t.Errorf("principal %+v", p)
			}
			return nil, nil
		})
		return status.Code(err)
	}
	for _, c := range []struct {
		md   metadata.MD
		want codes.Code
	}{
		{metadata.Pairs("authorization", "Bearer "+readSecret), codes.OK},
		{metadata.Pairs(), codes.Unauthenticated},
		{metadata.Pairs("authorization", "Bearer zq_nope-0123456789"), codes.Unauthenticated},
		{metadata.Pairs("authorization", "Bearer "+readSecret, "x-scope-orgid", "../x"), codes.InvalidArgument},
	} {
		if got := call(c.md); got != c.want {
			t.Errorf("%v: %v, want %v", c.md, got, c.want)
		}
	}
}

// fakeStream is a server stream with only a context.
type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s fakeStream) Context() context.Context { return s.ctx }

// TestGRPCStream: a stream's handler sees the principal and its tenant.
func TestGRPCStream(t *testing.T) {
	a := newAuth(t, Config{Mode: ModeAuto, FailureBurst: 10, Tenants: []string{"team-a"}}, tokenLine(t, "w", "write", "team-a", "-", readSecret))
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+readSecret))
	err := a.StreamInterceptor(Write)(nil, fakeStream{ctx: ctx}, &grpc.StreamServerInfo{}, func(_ any, ss grpc.ServerStream) error {
		if p, ok := FromContext(ss.Context()); !ok || p.Tenant != "team-a" || tenant.From(ss.Context()) != "team-a" {
			t.Errorf("the stream's context: %+v", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.StreamInterceptor(Write)(nil, fakeStream{ctx: context.Background()}, &grpc.StreamServerInfo{},
		func(any, grpc.ServerStream) error { return nil }); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no token: %v", err)
	}
}

var tokenOracle = regexp.MustCompile(`^[A-Za-z0-9\-._~+/]+=*$`)

// FuzzCredential: a header yields a token only when it is Bearer or Basic
// carrying an RFC 6750 token; the token comes back out of either encoding
// unchanged; and anything else is refused with a reason, never a panic or
// a token with other characters.
func FuzzCredential(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer  zq_x=", "Basic " + base64.StdEncoding.EncodeToString([]byte("u:zq_y")),
		"Basic !!", "Token x", "", "Bearer", "Bearer a b", "Basic " + base64.StdEncoding.EncodeToString([]byte("nopass"))} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		tok, ok, err := Credential(v)
		if strings.TrimSpace(v) == "" {
			if ok || err != nil {
				t.Fatalf("empty header: %q %v %v", tok, ok, err)
			}
			return
		}
		if !ok {
			t.Fatalf("a non-empty header carries a credential, good or bad: %q", v)
		}
		if err != nil {
			return
		}
		if !tokenOracle.MatchString(tok) {
			t.Fatalf("Credential(%q) = %q: not a b64token", v, tok)
		}
		for _, enc := range []string{"Bearer " + tok, "Basic " + base64.StdEncoding.EncodeToString([]byte("user:"+tok))} {
			if got, ok, err := Credential(enc); !ok || err != nil || got != tok {
				t.Fatalf("%q round trip: %q %v", enc, got, err)
			}
		}
	})
}

// BenchmarkRequire is the cost a request pays for access control once its
// token was verified (bcrypt runs once per token and reload), against no
// access control on the same handler.
func BenchmarkRequire(b *testing.B) {
	a := newAuth(b, DefaultConfig(), tokenLine(b, "w", "read,write", "-", "-", readSecret))
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	for _, c := range []struct {
		name string
		h    http.Handler
	}{{"off", ok}, {"on", a.Require(Read)(ok)}} {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/api/v2/services", nil)
			req.Header.Set("Authorization", "Bearer "+readSecret)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				c.h.ServeHTTP(w, req)
			}
		})
	}
}

// Without a tenants table, any tenant but the default one is refused —
// named, bound to a token, enforced or not; with one, any tenant it does
// not list.
func TestOnlyTheDefaultTenantIsServed(t *testing.T) {
	a := newAuth(t, DefaultConfig(), tokenLine(t, "bound", "read", "team-a", "-", readSecret), tokenLine(t, "free", "read", "-", "-", adminSecret))
	ctx := context.Background()
	var forb *ForbiddenError
	for _, c := range []struct{ token, tenant string }{{readSecret, ""}, {adminSecret, "team-b"}} {
		if _, err := a.Authenticate(ctx, "ip", "Bearer "+c.token, c.tenant, Read); !errors.As(err, &forb) || !forb.Tenant {
			t.Errorf("%q for %q: %v", c.token, c.tenant, err)
		}
	}
	for _, tenant := range []string{"", DefaultTenant} {
		if p, err := a.Authenticate(ctx, "ip", "Bearer "+adminSecret, tenant, Read); err != nil || p.Tenant != DefaultTenant {
			t.Errorf("tenant %q: %+v %v", tenant, p, err)
		}
	}
	open := newAuth(t, DefaultConfig())
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set(TenantHeader, "team-b")
	open.Require(Read)(http.NotFoundHandler()).ServeHTTP(rec, r)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("open, another tenant named: %d", rec.Code)
	}
	if n := testutil.ToFloat64(open.failures.WithLabelValues("tenant")); n != 1 {
		t.Fatalf("the refusal is counted as reason tenant: %v", n)
	}
	listed := newAuth(t, Config{Mode: ModeAuto, FailureBurst: 1, Tenants: []string{"team-a"}})
	for tenant, code := range map[string]int{"team-a": 404, "team-b": 403, DefaultTenant: 404} {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set(TenantHeader, tenant)
		listed.Require(Read)(http.NotFoundHandler()).ServeHTTP(rec, r)
		if rec.Code != code {
			t.Errorf("tenants [team-a], %s named: %d, want %d", tenant, rec.Code, code)
		}
	}
}

// FuzzParseTokens: an accepted tokens file has one-word unique names,
// known scopes, valid tenants and bcrypt hashes, and written back out it
// reads as the same tokens.
func FuzzParseTokens(f *testing.F) {
	h := "$2a$04$" + strings.Repeat("a", 53)
	for _, s := range []string{"a read - - " + h + "\n", "# c\n\nb read,write,admin team-a 2027-06-30 " + h + "\n",
		"a read - 2027-06-30T10:00:00Z " + h + "\na write - - " + h + "\n", "a reed - - x\n", "a read -\n", "a read ../x - " + h + "\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, file string) {
		toks, err := ParseTokens(strings.NewReader(file))
		if err != nil {
			return
		}
		names := map[string]bool{}
		var out strings.Builder
		for _, tok := range toks {
			if tok.Name == "" || strings.ContainsAny(tok.Name, " \t\r\n") || names[tok.Name] || tok.Scopes == 0 || tok.Scopes&^(Read|Write|Admin) != 0 {
				t.Fatalf("accepted %+v from %q", tok, file)
			}
			if tok.Tenant != "" {
				if _, err := tenant.Parse(tok.Tenant); err != nil {
					t.Fatalf("accepted tenant %q: %v", tok.Tenant, err)
				}
			}
			if _, err := bcrypt.Cost(tok.hash); err != nil {
				t.Fatalf("accepted hash %q: %v", tok.hash, err)
			}
			names[tok.Name] = true
			ten, exp := "-", "-"
			if tok.Tenant != "" {
				ten = tok.Tenant
			}
			if !tok.Expires.IsZero() {
				exp = tok.Expires.Format(time.RFC3339Nano)
			}
			fmt.Fprintf(&out, "%s %s %s %s %s\n", tok.Name, tok.Scopes, ten, exp, tok.hash)
		}
		again, err := ParseTokens(strings.NewReader(out.String()))
		if err != nil || len(again) != len(toks) {
			t.Fatalf("%q read as %+v, written back as %q: %+v %v", file, toks, out.String(), again, err)
		}
		for i := range toks {
			if again[i].Name != toks[i].Name || again[i].Scopes != toks[i].Scopes || again[i].Tenant != toks[i].Tenant ||
				!again[i].Expires.Equal(toks[i].Expires) || string(again[i].hash) != string(toks[i].hash) {
				t.Fatalf("%+v written back reads as %+v", toks[i], again[i])
			}
		}
	})
}
