package query_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/zipq/zipq/auth"
	"github.com/zipq/zipq/internal/testenv"

	"github.com/zipq/zipq/query"
	"github.com/zipq/zipq/zipkin"
)

func TestMain(m *testing.M) { testenv.VerifyNoLeaks(m) }

type fakeReplayer struct {
	limit  int
	reason string
	err    error
}

func (f *fakeReplayer) Replay(_ context.Context, limit int, reason string) (int, error) {
	f.limit, f.reason = limit, reason
	return 3, f.err
}

func do(t *testing.T, h http.Handler, method, target, token string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestHealthReportsEachDependency(t *testing.T) {
	h := query.NewRouter(query.Options{Health: []query.HealthCheck{
		{Name: "postgres", Check: func(context.Context) error { return nil }},
		{Name: "rabbitmq", Check: func(context.Context) error { return errors.New("connection refused") }},
	}})
	rec := do(t, h, http.MethodGet, "/health", "")
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("code %d", rec.Code)
	}
	var body struct {
		Status string
		Zipkin struct {
			Details map[string]struct{ Status, Error string }
		}
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	d := body.Zipkin.Details
	if body.Status != "DOWN" || d["postgres"].Status != "UP" || d["rabbitmq"].Status != "DOWN" || d["rabbitmq"].Error == "" {
		t.Fatalf("%s", rec.Body)
	}
}

func TestAdminReplay(t *testing.T) {
	rp := &fakeReplayer{}
	h := query.NewRouter(query.Options{Auth: adminAuth(t, "s3cret-0123456789"), Replayer: rp})
	cases := []struct {
		name, target, token string
		code                int
	}{
		{"no token", "/admin/replay", "", http.StatusUnauthorized},
		{"wrong token", "/admin/replay", "guess", http.StatusUnauthorized},
		{"bad limit", "/admin/replay?limit=-1", "s3cret-0123456789", http.StatusBadRequest},
		{"garbage limit", "/admin/replay?limit=ten", "s3cret-0123456789", http.StatusBadRequest},
		{"ok", "/admin/replay?limit=5&reason=too_large", "s3cret-0123456789", http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := do(t, h, http.MethodPost, c.target, c.token)
			if rec.Code != c.code {
				t.Fatalf("code %d, want %d: %s", rec.Code, c.code, rec.Body)
			}
		})
	}
	if rp.limit != 5 || rp.reason != "too_large" {
		t.Fatalf("replayer got %d %q", rp.limit, rp.reason)
	}
	// The Bearer scheme is case-insensitive (RFC 9110); the token is not.
	for auth, code := range map[string]int{"bearer s3cret-0123456789": 200, "BEARER s3cret-0123456789": 200, "Bearer S3CRET-0123456789": 401, "Basic s3cret-0123456789": 401, "Bearers3cret-0123456789": 401} {
		req := httptest.NewRequest(http.MethodPost, "/admin/replay", nil)
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != code {
			t.Errorf("Authorization %q: %d, want %d", auth, rec.Code, code)
		}
	}
}

// TestAdminDiscard: one parked message is dropped by its ID, behind the
// admin token; a malformed ID is 400, an unknown one 404.
func TestAdminDiscard(t *testing.T) {
	var got []string
	drop := func(_ context.Context, id string) (int, error) {
		got = append(got, id)
		if id == "00000000000000aa" {
			return 1, nil
		}
		return 0, nil
	}
	h := query.NewRouter(query.Options{Auth: adminAuth(t, "s3cret-0123456789"), Replayer: &fakeReplayer{}, Discard: drop})
	for _, c := range []struct {
		target, token string
		code          int
	}{
		{"/admin/parked/discard?id=00000000000000aa", "", http.StatusUnauthorized},
		{"/admin/parked/discard", "s3cret-0123456789", http.StatusBadRequest},
		{"/admin/parked/discard?id=00000000000000AA", "s3cret-0123456789", http.StatusBadRequest},
		{"/admin/parked/discard?id=0aa", "s3cret-0123456789", http.StatusBadRequest},
		{"/admin/parked/discard?id=00000000000000bb", "s3cret-0123456789", http.StatusNotFound},
		{"/admin/parked/discard?id=00000000000000aa", "s3cret-0123456789", http.StatusOK},
	} {
		if rec := do(t, h, http.MethodPost, c.target, c.token); rec.Code != c.code {
			t.Errorf("%s: %d, want %d: %s", c.target, rec.Code, c.code, rec.Body)
		}
	}
	if strings.Join(got, ",") != "00000000000000bb,00000000000000aa" {
		t.Fatalf("discarder called with %v", got)
	}
}

func TestAdminDisabledWithoutToken(t *testing.T) {
	h := query.NewRouter(query.Options{Replayer: &fakeReplayer{}})
	if rec := do(t, h, http.MethodPost, "/admin/replay", "anything"); rec.Code != http.StatusNotFound {
		t.Fatalf("admin route must not exist without a token: %d", rec.Code)
	}
}

func TestMetricsCountRequestsByRoute(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := query.NewRouter(query.Options{Registerer: reg, Gatherer: reg})
	do(t, h, http.MethodGet, "/info", "")
	rec := do(t, h, http.MethodGet, "/metrics", "")
	if !strings.Contains(rec.Body.String(), `zipq_http_requests_total{code="200",method="GET",route="/info"} 1`) {
		t.Fatalf("request metric missing:\n%s", rec.Body)
	}
	if rec := do(t, h, http.MethodGet, "/prometheus", ""); rec.Code != http.StatusOK {
		t.Fatalf("/prometheus: %d", rec.Code)
	}
}

// TestHealthIgnoresAClientGoingAway: a check is run for the dependency,
// not the client; a request whose client left is still answered UP.
func TestHealthIgnoresAClientGoingAway(t *testing.T) {
	h := query.NewRouter(query.Options{Health: []query.HealthCheck{{Name: "postgres", Check: func(ctx context.Context) error {
		return ctx.Err()
	}}}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health", nil).WithContext(ctx))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"status":"UP"`) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

// TestAnswersSayNosniffAndProfilesHideTheCommandLine: every answer, JSON
// and plain text alike, carries X-Content-Type-Options: nosniff; with
// profiling on, the profiles are served but not /debug/pprof/cmdline,
// whose flags can hold the database password and the admin token.
func TestAnswersSayNosniffAndProfilesHideTheCommandLine(t *testing.T) {
	t.Parallel()
	o := query.Options{Health: []query.HealthCheck{{Name: "x", Check: func(context.Context) error { return nil }}}}
	o.Pprof = true
	h := query.NewRouter(o)
	for path, code := range map[string]int{"/health": 200, "/info": 200, "/debug/pprof/cmdline": 404, "/debug/pprof/heap": 200, "/debug/pprof/": 200, "/nope": 404} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != code || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: %d, nosniff %q; want %d with nosniff", path, rec.Code, rec.Header().Get("X-Content-Type-Options"), code)
		}
	}
}

// TestHealthDetailsNeedTheAdminToken: a dependency's error text (which
// names the database's user and host) is in /health only for the admin;
// anyone else sees DOWN and where to look.
func TestHealthDetailsNeedTheAdminToken(t *testing.T) {
	t.Parallel()
	secret := errors.New(`failed to connect to user=zipq database=zipq host=10.1.2.3:5432: password authentication failed`)
	o := query.Options{Health: []query.HealthCheck{{Name: "postgres", Check: func(context.Context) error { return secret }}}}
	o.Auth = adminAuth(t, "tok-0123456789abcdef")
	h := query.NewRouter(o)
	get := func(auth string) (int, string) {
		req := httptest.NewRequest(http.MethodGet, "/health", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	for _, auth := range []string{"", "Bearer wrong"} {
		if code, body := get(auth); code != 503 || !strings.Contains(body, "DOWN") || strings.Contains(body, "10.1.2.3") || strings.Contains(body, "user=") {
			t.Fatalf("%q: %d %s", auth, code, body)
		}
	}
	if code, body := get("bearer tok-0123456789abcdef"); code != 503 || !strings.Contains(body, "10.1.2.3") {
		t.Fatalf("admin: %d %s", code, body)
	}
}

// TestListenerServesAtMostMaxConnections: past the limit a connection waits
// in the backlog, unanswered, until one being served closes.
func TestListenerServesAtMostMaxConnections(t *testing.T) {
	t.Parallel()
	c := query.DefaultConfig()
	c.MaxConnections = 2
	ln, err := c.Listen("127.0.0.1:0")
	testenv.Must(t, err)
	srv := c.Server(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	var held []net.Conn
	for range 2 {
		conn, err := net.Dial("tcp", ln.Addr().String())
		testenv.Must(t, err)
		held = append(held, conn)
		fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") // served, kept alive
	}
	quick := &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := quick.Get("http://" + ln.Addr().String()); err == nil {
		resp.Body.Close()
		t.Fatal("a third connection was served while two are held")
	}
	held[0].Close()
	testenv.Eventually(t, 5*time.Second, "served once a connection closed", func() bool {
		resp, err := quick.Get("http://" + ln.Addr().String())
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	held[1].Close()
}

// slowReader holds every trace read until released.
type slowReader struct {
	query.SpanReader
	entered, release chan struct{}
}

func (s slowReader) Traces(ctx context.Context, _ []zipkin.TraceID, _ bool) ([][]zipkin.Span, error) {
	s.entered <- struct{}{}
	select {
	case <-s.release:
	case <-ctx.Done():
	}
	return nil, nil
}

func (slowReader) ServiceNames(context.Context) ([]string, error) { return []string{"svc"}, nil }

// TestHeavyReadsAreBounded: with MaxHeavyReads trace reads in progress,
// the next is 503 with Retry-After rather than one more answer held in
// memory; light reads (names) are still answered.
func TestHeavyReadsAreBounded(t *testing.T) {
	t.Parallel()
	rd := slowReader{entered: make(chan struct{}, 1), release: make(chan struct{})}
	o := query.Options{Reader: rd}
	o.MaxHeavyReads = 1
	h := query.NewRouter(o)
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec
	}
	done := make(chan int)
	go func() { done <- get("/api/v2/trace/000000000000000a").Code }()
	<-rd.entered
	if rec := get("/api/v2/trace/000000000000000b"); rec.Code != 503 || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("a second trace read while one is in progress: %d %q", rec.Code, rec.Body)
	}
	if rec := get("/api/v2/services"); rec.Code != 200 {
		t.Fatalf("names while a trace read is in progress: %d", rec.Code)
	}
	close(rd.release)
	<-done
	if rec := get("/api/v2/trace/000000000000000c"); rec.Code == 503 {
		t.Fatalf("after the first finished: %d", rec.Code)
	}
}

// adminAuth is access control with one admin token (reads and writes open,
// as on loopback).
func adminAuth(t testing.TB, token string) *auth.Authenticator {
	t.Helper()
	c := auth.DefaultConfig()
	c.AdminToken = token
	a, err := auth.New(c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
