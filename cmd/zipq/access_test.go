package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/openzipkin/zipkin-go/model"
	zipkinamqp "github.com/openzipkin/zipkin-go/reporter/amqp"
	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"

	"github.com/zipq/zipq/broker"
	"github.com/zipq/zipq/internal/testenv"
	"github.com/zipq/zipq/query"
)

// tokensFile writes a tokens file with one line per token (name scopes
// secret), at bcrypt's lowest cost so the test stays quick.
func tokensFile(t *testing.T, path string, tokens ...[3]string) {
	t.Helper()
	var b strings.Builder
	for _, tok := range tokens {
		h, err := bcrypt.GenerateFromPassword([]byte(tok[2]), bcrypt.MinCost)
		testenv.Must(t, err)
		fmt.Fprintf(&b, "%s %s - - %s\n", tok[0], tok[1], h)
	}
	testenv.Must(t, os.WriteFile(path, []byte(b.String()), 0o600))
}

// call makes one request with an optional bearer token.
func call(t *testing.T, c *http.Client, method, url, token, body string) (*http.Response, string) {
	t.Helper()
	return callAs(t, c, method, url, token, "", body)
}

// callAs is call naming a tenant (X-Scope-OrgID) unless it is empty.
func callAs(t *testing.T, c *http.Client, method, url, token, tenant, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	testenv.Must(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if tenant != "" {
		req.Header.Set("X-Scope-OrgID", tenant)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	testenv.Must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

const (
	readTok  = "zq_reader-0123456789abcdef"
	writeTok = "zq_writer-0123456789abcdef"
	adminTok = "zq_admin-0123456789abcdef"
	lateTok  = "zq_late-0123456789abcdef"
)

// TestAccessControl runs zipq with tokens from a file (bcrypt) and from
// the environment, and checks each scope on every way in: Zipkin HTTP
// ingest, OTLP/HTTP and OTLP/gRPC (the OTel SDK's exporters with their
// headers option), reads, /metrics and the admin pipeline; a SIGHUP
// reload adds a token without dropping a kept-alive connection; wrong
// tokens are counted and then limited per address.
func TestAccessControl(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	file := filepath.Join(t.TempDir(), "tokens")
	tokensFile(t, file, [3]string{"grafana", "read", readTok}, [3]string{"otel", "write", writeTok})
	httpAddr, grpcAddr := freeAddr(t), freeAddr(t)
	p := startZipq(t, append(f.env, "ZIPQ_TOKENS_FILE="+file, "ZIPQ_ADMIN_TOKEN="+adminTok, "ZIPQ_AUTH_FAILURE_BURST=5",
		"ZIPQ_OTLP_HTTP_ADDR="+httpAddr, "ZIPQ_OTLP_GRPC_ADDR="+grpcAddr, "ZIPQ_LOG_LEVEL=info"), "serve")
	base := "http://" + p.addr
	c := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(c.CloseIdleConnections)
	span := `[{"traceId":"00000000000000000000000000acce55","id":"0000000000000001","name":"get","timestamp":%d,"duration":5,"localEndpoint":{"serviceName":"guarded"}}]`
	body := fmt.Sprintf(span, time.Now().UnixMicro())

	for _, x := range []struct {
		method, path, token, body string
		code                      int
	}{
		{"POST", "/api/v2/spans", "", body, 401},
		{"POST", "/api/v2/spans", readTok, body, 403},
		{"POST", "/api/v2/spans", writeTok, body, 202},
		{"GET", "/api/v2/services", "", "", 401},
		{"GET", "/api/v2/services", writeTok, "", 403},
		{"GET", "/api/search?q=%7B%7D", "", "", 401},
		{"GET", "/metrics", "", "", 401},
		{"GET", "/metrics", readTok, "", 200},
		{"GET", "/api/zipq/pipeline", readTok, "", 403},
		{"GET", "/api/zipq/pipeline", adminTok, "", 200},
		{"POST", "/admin/replay", readTok, "", 403},
		{"GET", "/health", "", "", 200},
		{"GET", "/config.json", "", "", 200},
		{"GET", "/", "", "", 200}, // the UI's files: it asks for a token itself
	} {
		resp, text := call(t, c, x.method, base+x.path, x.token, x.body)
		if resp.StatusCode != x.code {
			t.Errorf("%s %s with %q: %d, want %d: %s", x.method, x.path, x.token, resp.StatusCode, x.code, text)
		}
		if x.code == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `Bearer realm="zipq"`) {
			t.Errorf("%s %s: 401 without WWW-Authenticate: %v", x.method, x.path, resp.Header)
		}
	}
	testenv.Eventually(t, 30*time.Second, "the span read back with the read token", func() bool {
		resp, text := call(t, c, "GET", base+"/api/v2/trace/00000000000000000000000000acce55", readTok, "")
		return resp.StatusCode == 200 && strings.Contains(text, "guarded")
	})
	// Grafana's Tempo data source with a token and a tenant header (custom
	// HTTP headers): Save & test's /api/echo, then a TraceQL search.
	for _, path := range []string{"/api/echo", "/api/search?q=" + url.QueryEscape(`{ resource.service.name = "guarded" }`)} {
		resp, b := callAs(t, c, "GET", base+path, readTok, "single-tenant", "")
		if resp.StatusCode != 200 || (strings.HasPrefix(path, "/api/search") && !strings.Contains(b, "acce55")) {
			t.Errorf("Grafana's %s with a token and a tenant: %d %s", path, resp.StatusCode, b)
		}
	}

	// OTLP: both exporters refused without a token, accepted with the
	// write token in their headers option.
	ctx := context.Background()
	export := func(e sdktrace.SpanExporter) error {
		defer func() { _ = e.Shutdown(ctx) }()
		return e.ExportSpans(ctx, stub("op"))
	}
	noRetry := otlptracehttp.RetryConfig{Enabled: false}
	for token, wantOK := range map[string]bool{"": false, readTok: false, writeTok: true} {
		h := map[string]string{}
		if token != "" {
			h["Authorization"] = "Bearer " + token
		}
		he, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(httpAddr), otlptracehttp.WithInsecure(), otlptracehttp.WithHeaders(h), otlptracehttp.WithRetry(noRetry))
		testenv.Must(t, err)
		ge, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(grpcAddr), otlptracegrpc.WithInsecure(), otlptracegrpc.WithHeaders(h),
			otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}))
		testenv.Must(t, err)
		if err := export(he); (err == nil) != wantOK {
			t.Errorf("OTLP/HTTP with %q: %v", token, err)
		}
		err = export(ge)
		if (err == nil) != wantOK {
			t.Errorf("OTLP/gRPC with %q: %v", token, err)
		}
		if want := map[string]codes.Code{"": codes.Unauthenticated, readTok: codes.PermissionDenied}[token]; !wantOK && !strings.Contains(err.Error(), want.String()) {
			t.Errorf("OTLP/gRPC with %q: %v, want %v", token, err, want)
		}
	}

	// A token added to the file works after SIGHUP; the connection the
	// client keeps alive carries on through the reload.
	if resp, _ := call(t, c, "GET", base+"/api/v2/services", lateTok, ""); resp.StatusCode != 401 {
		t.Fatalf("the late token before the reload: %d", resp.StatusCode)
	}
	tokensFile(t, file, [3]string{"grafana", "read", readTok}, [3]string{"otel", "write", writeTok}, [3]string{"late", "read", lateTok})
	testenv.Must(t, p.cmd.Process.Signal(syscall.SIGHUP))
	testenv.Eventually(t, 10*time.Second, "the late token accepted after SIGHUP", func() bool {
		resp, _ := call(t, c, "GET", base+"/api/v2/services", lateTok, "")
		return resp.StatusCode == 200
	})
	if !strings.Contains(p.output(), "tokens reloaded") {
		t.Error("the reload is not logged")
	}

	// Guessing: each wrong token is counted; past the burst (5) the
	// address waits, whatever it sends, with Retry-After.
	var last *http.Response
	for range 6 {
		last, _ = call(t, c, "GET", base+"/api/v2/services", "zq_guess-0123456789abcdef", "")
	}
	if last.StatusCode != 429 || last.Header.Get("Retry-After") == "" {
		t.Fatalf("sixth wrong token: %d %v", last.StatusCode, last.Header)
	}
	if resp, _ := call(t, c, "GET", base+"/api/v2/services", readTok, ""); resp.StatusCode != 429 {
		t.Fatalf("a limited address is refused before its token is checked: %d", resp.StatusCode)
	}
	// Counted by reason (the scrape comes from another address: the
	// limit is per client address, and the test's is 127.0.0.1 for all,
	// so wait out the limit first).
	time.Sleep(time.Minute / 5)
	_, metrics := call(t, c, "GET", base+"/metrics", adminTok, "")
	for name, least := range map[string]float64{`zipq_auth_failures_total{reason="invalid"}`: 5, `zipq_auth_failures_total{reason="limited"}`: 2,
		`zipq_auth_failures_total{reason="scope"}`: 5, `zipq_auth_failures_total{reason="missing"}`: 4, `zipq_auth_tokens`: 4,
		`zipq_auth_reloads_total{result="ok"}`: 1} {
		var v float64
		if i := strings.Index(metrics, "\n"+name+" "); i < 0 {
			t.Errorf("/metrics lacks %s", name)
		} else if _, err := fmt.Sscan(metrics[i+len(name)+2:], &v); err != nil || v < least {
			t.Errorf("%s = %v, want at least %v", name, v, least)
		}
	}
	if m := p.output(); strings.Contains(m, readTok) || strings.Contains(m, adminTok) {
		t.Error("a token is in the log")
	}
}

// TestAccessRefusedOnANetworkWithoutTokens: bound beyond loopback with no
// tokens, zipq refuses to start and says how to fix it; ZIPQ_AUTH=none
// starts it.
func TestAccessRefusedOnANetworkWithoutTokens(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cmd := exec.Command(binary, "serve")
	cmd.Env = append(append(os.Environ(), f.env...), "ZIPQ_HTTP_ADDR=0.0.0.0:0", "ZIPQ_OTLP_HTTP_ADDR=off", "ZIPQ_OTLP_GRPC_ADDR=off")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not a loopback address") || !strings.Contains(string(out), "ZIPQ_AUTH=none") ||
		!strings.Contains(string(out), "zipq token") {
		t.Fatalf("want a refusal that says what to do: %v\n%s", err, tail(string(out), 2000))
	}
	p := spawnZipq(t, append(f.env, "ZIPQ_AUTH=none", "ZIPQ_OTLP_HTTP_ADDR=0.0.0.0:0"), "serve")
	p.waitHealth(t, 200)
}

// TestTLS serves HTTPS and OTLP/gRPC over TLS from a certificate made
// here, and picks up a renewed certificate without a restart.
func TestTLS(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pki := testenv.NewPKI(t)
	grpcAddr := freeAddr(t)
	p := spawnZipq(t, append(f.env, "ZIPQ_TLS_CERT_FILE="+pki.ServerCert, "ZIPQ_TLS_KEY_FILE="+pki.ServerKey,
		"ZIPQ_OTLP_GRPC_ADDR="+grpcAddr, "ZIPQ_LOG_LEVEL=info"), "serve")
	pem, err := os.ReadFile(pki.CA)
	testenv.Must(t, err)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	tc := &tls.Config{RootCAs: roots}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc, DisableKeepAlives: true}}
	var resp *http.Response
	testenv.Eventually(t, 30*time.Second, "/health over HTTPS", func() bool {
		r, err := c.Get("https://" + p.addr + "/health")
		if err != nil {
			return false
		}
		r.Body.Close()
		resp = r
		return r.StatusCode == 200
	})
	serial := resp.TLS.PeerCertificates[0].SerialNumber
	plainHTTP := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if r, err := plainHTTP.Get("http://" + p.addr + "/health"); err == nil {
		r.Body.Close()
		if r.StatusCode == 200 {
			t.Fatal("plain HTTP is served beside HTTPS")
		}
	}

	ctx := context.Background()
	ge, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(grpcAddr), otlptracegrpc.WithTLSCredentials(credentials.NewTLS(tc)),
		otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}))
	testenv.Must(t, err)
	spans := stub("over-tls")
	testenv.Must(t, ge.ExportSpans(ctx, spans))
	testenv.Must(t, ge.Shutdown(ctx))
	plain, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(grpcAddr), otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}))
	testenv.Must(t, err)
	if err := plain.ExportSpans(ctx, spans); err == nil {
		t.Error("OTLP/gRPC in clear text is accepted beside TLS")
	}
	_ = plain.Shutdown(ctx)

	// Renewed in place (as cert-manager does): new connections get it.
	pki.Issue(t, "server", "localhost", x509.ExtKeyUsageServerAuth)
	testenv.Eventually(t, 10*time.Second, "the renewed certificate served", func() bool {
		r, err := c.Get("https://" + p.addr + "/health")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.TLS.PeerCertificates[0].SerialNumber.Cmp(serial) != 0
	})
	if !strings.Contains(p.output(), "tls certificate reloaded") {
		t.Error("the reload is not logged")
	}
}

// stub is one finished span to export.
func stub(name string) []sdktrace.ReadOnlySpan {
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{15: 1}, SpanID: trace.SpanID{7: 1}})
	now := time.Now()
	return tracetest.SpanStubs{{Name: name, SpanContext: sc, StartTime: now.Add(-time.Millisecond), EndTime: now}}.Snapshots()
}

// TestTLSToRabbitMQAndPostgres: zipq reaches a broker that demands TLS
// with a client certificate (amqps, ZIPQ_RABBIT_*_FILE) and a PostgreSQL
// that accepts only certificate-authenticated TLS (sslmode=verify-full),
// both made here with a CA of the test's own; a span posted over HTTP
// goes through both and is read back. The wrong CA, or no client
// certificate, is refused with the reason.
func TestTLSToRabbitMQAndPostgres(t *testing.T) {
	t.Parallel()
	pki := testenv.NewPKI(t)
	pgCert, pgKey := pki.Issue(t, "pg-client", "postgres", x509.ExtKeyUsageClientAuth)
	pgURL := testenv.StartTLSPostgres(t, pki)
	b := testenv.StartTLSBroker(t, pki)
	pgWith := func(ca string) string {
		return pgURL + "?sslmode=verify-full&sslrootcert=" + ca + "&sslcert=" + pgCert + "&sslkey=" + pgKey
	}
	amqps := fmt.Sprintf("amqps://guest:guest@127.0.0.1:%d/", b.TLSPort)

	other := testenv.NewPKI(t)
	// migrate waits for a database it cannot use, logging why: here, for
	// as long as the test lets it.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "migrate", "-postgres-url", pgWith(other.CA)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "certificate signed by unknown authority") {
		t.Fatalf("a server certificate from another CA must be refused: %v\n%s", err, tail(string(out), 1500))
	}
	noCert := broker.Config{URL: amqps, CAFile: pki.CA}
	if conn, err := broker.Dial(noCert, "test"); err == nil {
		conn.Close()
		t.Fatal("the broker demands a client certificate, yet a dial without one connected")
	}

	queue := "zipkin.tls." + testenv.ID()
	p := startZipq(t, []string{"POSTGRES_URL=" + pgWith(pki.CA), "RABBIT_URI=" + amqps, "RABBIT_QUEUE=" + queue,
		"ZIPQ_RABBIT_CA_FILE=" + pki.CA, "ZIPQ_RABBIT_CERT_FILE=" + pki.ClientCert, "ZIPQ_RABBIT_KEY_FILE=" + pki.ClientKey,
		"RABBIT_MANAGEMENT_URL=off", "RABBIT_PARKED_QUEUE_TYPE=classic"}, "serve")
	postSpans(t, "http://"+p.addr, fmt.Sprintf(`[{"traceId":"0000000000000000000000000000715a","id":"0000000000000001","name":"get","timestamp":%d,"duration":3,"localEndpoint":{"serviceName":"over-tls"}}]`, time.Now().UnixMicro()))
	testenv.Eventually(t, 30*time.Second, "the span through amqps and TLS PostgreSQL", func() bool {
		var spans []map[string]any
		return getJSON(t, "http://"+p.addr+"/api/v2/trace/0000000000000000000000000000715a", &spans) == 200 && len(spans) == 1
	})
}

// TestInitSecretsThenServeOnANetwork is docker-compose.yml's path without
// Docker: `zipq init-secrets` makes the CA, certificate and tokens; zipq
// bound to every interface with them serves HTTPS, and its printed reader
// token reads while no token is refused. A second run changes nothing.
func TestInitSecretsThenServeOnANetwork(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "secrets")
	out, err := exec.Command(binary, "init-secrets", "-dir", dir).CombinedOutput()
	testenv.Must(t, err)
	tokens := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 3 && strings.HasPrefix(f[2], "zq_") {
			tokens[f[0]] = f[2]
		}
	}
	if len(tokens) != 3 {
		t.Fatalf("want the ingest, reader and admin tokens printed:\n%s", out)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "tokens"))
	if again, err := exec.Command(binary, "init-secrets", "-dir", dir).CombinedOutput(); err != nil || !strings.Contains(string(again), "nothing made") {
		t.Fatalf("a second run must leave the secrets alone: %v %s", err, again)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "tokens")); string(after) != string(before) {
		t.Fatal("the tokens file changed on the second run")
	}

	f := newFixture(t)
	port := strings.TrimPrefix(freeAddr(t), "127.0.0.1:")
	spawnZipq(t, append(f.env, "ZIPQ_TOKENS_FILE="+filepath.Join(dir, "tokens"), "ZIPQ_TLS_CERT_FILE="+filepath.Join(dir, "server.pem"),
		"ZIPQ_TLS_KEY_FILE="+filepath.Join(dir, "server.key"), "ZIPQ_OTLP_HTTP_ADDR=0.0.0.0:0", "ZIPQ_OTLP_GRPC_ADDR=off"), "serve", "-http-addr", "0.0.0.0:"+port)
	pem, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	testenv.Must(t, err)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, DisableKeepAlives: true}}
	base := "https://localhost:" + port
	testenv.Eventually(t, 30*time.Second, "zipq on 0.0.0.0 over HTTPS", func() bool {
		r, err := c.Get(base + "/health")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == 200
	})
	if resp, body := call(t, c, "GET", base+"/api/v2/services", tokens["reader"], ""); resp.StatusCode != 200 {
		t.Fatalf("reader token: %d %s", resp.StatusCode, body)
	}
	if resp, _ := call(t, c, "GET", base+"/api/v2/services", "", ""); resp.StatusCode != 401 {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
}

// TestLeastPrivilegeRabbitMQUsers gives each party the permissions the
// README's table lists, on a broker of the test's own: a service's
// zipkin-go AMQP reporter publishes, a `zipq collector` stores and parks,
// a `zipq query` reads, shows the parked message and replays it — and no
// AMQP operation is refused.
func TestLeastPrivilegeRabbitMQUsers(t *testing.T) {
	t.Parallel()
	b := testenv.StartBroker(t)
	const vhost = "team-a"
	b.Ctl(t, "add_vhost", vhost, "--default-queue-type", "quorum")
	// The table of README "Running zipq on a network", as rabbitmqctl takes it.
	perms := map[string][3]string{
		"service":   {`^zipkin$`, `^(amq\.default|zipkin)$`, `^zipkin$`},
		"collector": {`^zipkin(\.parked|\.poison)?$`, `^(amq\.default|zipkin(\.parked|\.poison)?)$`, `^zipkin(\.parked|\.poison)?$`},
		"query":     {`^zipkin(\.parked)?$`, `^(amq\.default|zipkin)$`, `^zipkin(\.parked)?$`},
	}
	readme, err := os.ReadFile("../../README.md")
	testenv.Must(t, err)
	for user, p := range perms {
		b.Ctl(t, "add_user", user, user+"-pw")
		b.Ctl(t, "set_permissions", "-p", vhost, user, p[0], p[1], p[2])
		for _, re := range p {
			if !strings.Contains(string(readme), "`"+strings.ReplaceAll(re, "|", `\|`)+"`") {
				t.Errorf("README's permission table lacks %s's %s", user, re)
			}
		}
	}
	uri := func(user string) string {
		return fmt.Sprintf("amqp://%s:%s-pw@127.0.0.1:%d/%s", user, user, b.Port, vhost)
	}
	f := newFixture(t)
	common := slices.Concat(f.env, []string{"RABBIT_QUEUE=zipkin", "RABBIT_MANAGEMENT_URL=off", "ZIPQ_LOG_LEVEL=info"})
	// The service declares the queue first, as an unchanged client does.
	rep, err := zipkinamqp.NewReporter(uri("service"))
	testenv.Must(t, err)
	c := startZipq(t, append(common, "RABBIT_URI="+uri("collector")), "collector")
	q := startZipq(t, append(common, "RABBIT_URI="+uri("query"), "ZIPQ_ADMIN_TOKEN="+adminTok), "query")

	rep.Send(model.SpanModel{SpanContext: model.SpanContext{TraceID: model.TraceID{Low: 0x1ea57}, ID: 1}, Name: "least",
		Timestamp: time.Now(), Duration: time.Millisecond, LocalEndpoint: &model.Endpoint{ServiceName: "least-privilege"}})
	testenv.Must(t, rep.Close())
	testenv.Eventually(t, 30*time.Second, "the span through the service's and collector's users", func() bool {
		var spans []map[string]any
		return getJSON(t, "http://"+q.addr+"/api/v2/trace/000000000001ea57", &spans) == 200 && len(spans) == 1
	})
	// A message that cannot be stored, published with the service's user,
	// is parked by the collector, shown by the query process and replayed.
	conn, err := amqp.Dial(uri("service"))
	testenv.Must(t, err)
	ch, err := conn.Channel()
	testenv.Must(t, err)
	testenv.Must(t, ch.Publish("", "zipkin", false, false, amqp.Publishing{ContentType: "application/json", Body: []byte("not json")}))
	testenv.Must(t, conn.Close())
	var pipe struct {
		Pipeline struct{ Parked int } `json:"pipeline"`
	}
	testenv.Eventually(t, 30*time.Second, "the parked message on the pipeline page", func() bool {
		return getJSON(t, "http://"+q.addr+"/api/zipq/pipeline", &pipe) == 200 && pipe.Pipeline.Parked == 1
	})
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, body := call(t, hc, "POST", "http://"+q.addr+"/admin/replay", adminTok, ""); resp.StatusCode != 200 || !strings.Contains(body, `"replayed":1`) {
		t.Fatalf("replay with the query's user: %d %s", resp.StatusCode, body)
	}
	for name, p := range map[string]*proc{"collector": c, "query": q} {
		if log := p.output(); strings.Contains(log, "ACCESS_REFUSED") || strings.Contains(log, "access to") {
			t.Errorf("%s was refused something:\n%s", name, tail(log, 3000))
		}
	}
}

// TestTenantsEndToEnd runs zipq serve with two tenants besides the
// default one, whose spans share a trace ID and service names: team-a
// with a queue beside the default one's, team-b in a vhost of its own.
// Their spans come both ways — HTTP with a bound token, and the tenant's
// queue, as an unchanged AMQP client sends them — and every read
// route, walked as the other tenant (its bound token, or a free token
// with X-Scope-OrgID), shows nothing of them; a tenant over its ingest
// limit is answered 429 with Retry-After, counted per tenant.
func TestTenantsEndToEnd(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	dir := t.TempDir()
	tenants := filepath.Join(dir, "tenants")
	// team-a's queue beside the fixture's; team-b's in a vhost of its own.
	vhostB := testenv.VHost(t)
	testenv.Must(t, os.WriteFile(tenants, []byte("# name settings\nteam-a max_trace_spans=3\nteam-b uri="+vhostB+" spans_per_second=4\nteam-c spans_per_second=2\n"), 0o600))
	tokens := filepath.Join(dir, "tokens")
	var lines strings.Builder
	for _, tok := range [][4]string{{"a", "read,write", "team-a", "zq_team-a-0123456789"}, {"b", "read,write", "team-b", "zq_team-b-0123456789"},
		{"free", "read,write,admin", "-", "zq_free-0123456789ab"}} {
		h, err := bcrypt.GenerateFromPassword([]byte(tok[3]), bcrypt.MinCost)
		testenv.Must(t, err)
		fmt.Fprintf(&lines, "%s %s %s - %s\n", tok[0], tok[1], tok[2], h)
	}
	testenv.Must(t, os.WriteFile(tokens, []byte(lines.String()), 0o600))
	testenv.DeleteQueues(t, f.queue+".team-a", f.queue+".team-c") // team-b's go with its vhost
	p := startZipq(t, append(f.env, "ZIPQ_TENANTS_FILE="+tenants, "ZIPQ_TOKENS_FILE="+tokens, "ZIPQ_LINK_INTERVAL=100ms"), "serve")
	base := "http://" + p.addr
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	do := func(method, path, token, tenant, body string) (int, string, http.Header) {
		resp, text := callAs(t, c, method, base+path, token, tenant, body)
		return resp.StatusCode, text, resp.Header
	}
	now := time.Now().Add(-time.Minute).UnixMicro()
	trace := func(who string, id int) string {
		return fmt.Sprintf(`[{"traceId":"000000000000000000000000000007e0","id":"%016x","name":"only-in-%s-op","kind":"CLIENT","timestamp":%d,"duration":100,
			"localEndpoint":{"serviceName":"frontend"},"remoteEndpoint":{"serviceName":"backend"},"tags":{"owner":"only-in-%s-tag"}}]`, id, who, now, who)
	}
	// team-a over HTTP with its token; team-b through its queue, as a
	// client publishing straight to RabbitMQ does (no token, no header).
	if code, body, _ := do("POST", "/api/v2/spans", "zq_team-a-0123456789", "", trace("a", 1)); code != 202 {
		t.Fatalf("team-a's post: %d %s", code, body)
	}
	// team-b's service publishes to the queue it always used (RABBIT_QUEUE's
	// name), in its own vhost.
	conn, err := amqp.Dial(vhostB)
	testenv.Must(t, err)
	ch, err := conn.Channel()
	testenv.Must(t, err)
	testenv.Must(t, ch.Publish("", f.queue, false, false, amqp.Publishing{ContentType: "application/json", Body: []byte(trace("b", 2))}))
	testenv.Must(t, conn.Close())
	for who, token := range map[string]string{"a": "zq_team-a-0123456789", "b": "zq_team-b-0123456789"} {
		testenv.Eventually(t, 30*time.Second, who+"'s trace stored", func() bool {
			code, body, _ := do("GET", "/api/v2/trace/000000000000000000000000000007e0", token, "", "")
			return code == 200 && strings.Contains(body, "only-in-"+who)
		})
	}
	time.Sleep(time.Second) // the linker's and the service metrics' rounds

	// Every read route, as each other tenant, two ways.
	end := time.Now().Add(time.Minute)
	q := url.Values{"start": {fmt.Sprint(end.Add(-time.Hour).Unix())}, "end": {fmt.Sprint(end.Unix())}}
	// Each GET route of the route table (walked from a router with every
	// part on, so a route added later is walked too), with a query that
	// finds the shared trace.
	window := "lookback=3600000&endTs=" + fmt.Sprint(end.UnixMilli())
	const id = "000000000000000000000000000007e0"
	queries := map[string][]string{
		"/api/v2/services": {""}, "/api/v2/spans": {"serviceName=frontend"}, "/api/v2/remoteServices": {"serviceName=frontend"},
		"/api/v2/traces": {"serviceName=frontend&" + window}, "/api/v2/trace/{traceId}": {""}, "/api/v2/traceMany": {"traceIds=" + id},
		"/api/v2/dependencies": {window}, "/api/v2/autocompleteKeys": {""}, "/api/v2/autocompleteValues": {"key=owner"},
		"/api/search":           {q.Encode() + "&q=" + url.QueryEscape("{}"), q.Encode() + "&tags=owner%3Donly-in-a-tag"},
		"/api/traces/{traceId}": {""}, "/api/v2/traces/{traceId}": {""}, "/api/search/tags": {""}, "/api/v2/search/tags": {""},
		"/api/v2/search/tag/{tag}/values": {""}, "/api/search/tag/{tag}/values": {""},
		"/api/metrics/query_range": {q.Encode() + "&step=60&q=" + url.QueryEscape("{} | count_over_time() by (name)"),
			q.Encode() + "&step=60&q=" + url.QueryEscape(`{ span.owner != "x" } | count_over_time() by (name)`)},
		"/api/metrics/query": {q.Encode() + "&q=" + url.QueryEscape("{} | count_over_time() by (name)")},
		"/api/zipq/stats":    {window + "&step=60000&by=spanName"}, "/api/zipq/pipeline": {"parked=1"},
		"/api/zipq/usage": {window + "&by=service,spanName"},
		"/metrics":        {""}, "/prometheus": {""},
	}
	var routes []string
	for _, r := range getRoutes(t) {
		qs, ok := queries[r]
		if !ok {
			t.Errorf("route %s is not in the isolation walk: give it a query that would find the shared trace", r)
		}
		tag := "span.owner"
		if !strings.HasPrefix(r, "/api/v2/") {
			tag = "owner"
		}
		path := strings.NewReplacer("{traceId}", id, "{tag}", tag).Replace(r)
		for _, qs := range qs {
			routes = append(routes, path+"?"+qs)
		}
	}
	for _, viewer := range []struct{ who, token, tenant, other string }{
		{"b", "zq_team-b-0123456789", "", "a"}, {"b", "zq_free-0123456789ab", "team-b", "a"},
		{"a", "zq_team-a-0123456789", "", "b"}, {"a", "zq_free-0123456789ab", "team-a", "b"},
		{"default", "zq_free-0123456789ab", "", "a"}, {"default", "zq_free-0123456789ab", "", "b"},
	} {
		seenOwn := false
		for _, path := range routes {
			code, body, _ := do("GET", path, viewer.token, viewer.tenant, "")
			if strings.Contains(body, "only-in-"+viewer.other) {
				t.Errorf("%s (token %s, header %q) sees %s's data on %s: %d %s", viewer.who, viewer.token[:8], viewer.tenant, viewer.other, path, code, tail(body, 300))
			}
			if code >= 500 {
				t.Errorf("%s on %s: %d %s", viewer.who, path, code, body)
			}
			seenOwn = seenOwn || strings.Contains(body, "only-in-"+viewer.who)
		}
		if viewer.who != "default" && !seenOwn {
			t.Errorf("%s saw none of its own data: the walk proves nothing", viewer.who)
		}
	}
	// A token bound to one tenant cannot name another.
	if code, _, _ := do("GET", "/api/v2/services", "zq_team-a-0123456789", "team-b", ""); code != 403 {
		t.Errorf("team-a's token naming team-b: %d", code)
	}
	if code, _, _ := do("GET", "/api/v2/services", "zq_free-0123456789ab", "team-z", ""); code != 403 {
		t.Errorf("a tenant not in the tenants file: %d", code)
	}
	// team-b's limit, 4 spans a second: a 5-span request passes on a whole
	// budget, the next is told when to retry.
	five := "[" + strings.Repeat(strings.TrimSuffix(strings.TrimPrefix(trace("b", 3), "["), "]")+",", 4) + strings.TrimSuffix(strings.TrimPrefix(trace("b", 4), "["), "]") + "]"
	if code, body, _ := do("POST", "/api/v2/spans", "zq_team-b-0123456789", "", five); code != 202 {
		t.Fatalf("team-b's first post: %d %s", code, body)
	}
	code, body, h := do("POST", "/api/v2/spans", "zq_team-b-0123456789", "", five)
	if code != 429 || h.Get("Retry-After") == "" || !strings.Contains(body, "ingest limit") {
		t.Fatalf("team-b over its limit: %d %v %s", code, h, body)
	}
	if code, body, _ := do("POST", "/api/v2/spans", "zq_team-a-0123456789", "", five); code != 202 {
		t.Fatalf("team-a has no limit: %d %s", code, body)
	}
	// team-c's queue is consumed at its limit, 2 spans a second, and
	// nothing is dropped: 8 one-span messages take 3 s or more.
	var msgs [][]byte
	for i := range 8 {
		msgs = append(msgs, []byte(trace("c", 10+i)))
	}
	began := time.Now()
	publishRaw(t, f.queue+".team-c", msgs...)
	testenv.Eventually(t, 30*time.Second, "team-c's 8 spans stored", func() bool {
		code, body, _ := do("GET", "/api/v2/trace/000000000000000000000000000007e0", "zq_free-0123456789ab", "team-c", "")
		return code == 200 && strings.Count(body, `"only-in-c-op"`) == 8
	})
	if took := time.Since(began); took < 2500*time.Millisecond {
		t.Errorf("team-c's 8 spans stored in %v: its consumer did not slow to 2 spans/s", took)
	}
	// team-a keeps at most 3 spans a trace: a message of 4 more spans of a
	// new trace stores 3 and parks 1 with the reason, for a replay once the
	// limit is raised.
	var four []string
	for i := range 4 {
		four = append(four, fmt.Sprintf(`{"traceId":"0000000000000000000000000000a11a","id":"%016x","name":"capped","timestamp":%d,"localEndpoint":{"serviceName":"capped"}}`, 100+i, now))
	}
	publishRaw(t, f.queue+".team-a", []byte("["+strings.Join(four, ",")+"]"))
	testenv.Eventually(t, 30*time.Second, "3 spans stored, 1 parked", func() bool {
		code, body, _ := do("GET", "/api/zipq/pipeline?parked=1", "zq_free-0123456789ab", "team-a", "")
		code2, trace, _ := do("GET", "/api/v2/trace/0000000000000000000000000000a11a", "zq_team-a-0123456789", "", "")
		return code == 200 && strings.Contains(body, `"parked":1`) && strings.Contains(body, "max_trace_spans") &&
			code2 == 200 && strings.Count(trace, `"capped"`) == 3*2 // name and service of each
	})
	// The pipeline page shows the tenant's own queue and limits.
	if code, body, _ := do("GET", "/api/zipq/pipeline", "zq_free-0123456789ab", "team-b", ""); code != 200 ||
		!strings.Contains(body, `"tenant":"team-b"`) || !strings.Contains(body, `"limitSpansPerSecond":4`) ||
		!strings.Contains(body, `"queue":"`+f.queue+`"`) {
		t.Errorf("team-b's pipeline: %d %s", code, body)
	}
	if code, _, _ := do("GET", "/metrics", "zq_team-a-0123456789", "", ""); code != 403 {
		t.Errorf("/metrics holds every tenant's series: a tenant's read token gets %d, want 403", code)
	}
	_, metrics, _ := do("GET", "/metrics", "zq_free-0123456789ab", "", "")
	if !strings.Contains(metrics, `zipq_ingest_limited_total{protocol="zipkin",tenant="team-b"} 1`) ||
		!strings.Contains(metrics, `zipq_collector_spans_stored_total{tenant="team-a"}`) {
		t.Errorf("per-tenant metrics missing:\n%s", tail(metrics, 2000))
	}
}

// getRoutes is every GET route of zipq's route table that needs a token,
// from a router with every part switched on (the parts are never called).
func getRoutes(t *testing.T) []string {
	type everything struct {
		query.SpanReader
		query.TraceFinder
		query.TempoModel
		query.StatsReader
	}
	reg := prometheus.NewRegistry()
	all := everything{}
	h := query.NewRouter(query.Options{Reader: all, Finder: all, Tempo: all, Stats: all, Registerer: reg, Gatherer: reg,
		Ingest: http.NotFoundHandler(), Assets: http.NotFoundHandler(), Pipeline: func(context.Context, bool) (any, error) { return nil, nil }})
	public := map[string]bool{"/health": true, "/info": true, "/config.json": true, "/zipkin/config.json": true, "/api/echo": true,
		"/api/status/buildinfo": true, "/ready": true, "/*": true}
	var out []string
	testenv.Must(t, chi.Walk(h.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if method == http.MethodGet && !public[route] {
			out = append(out, route)
		}
		return nil
	}))
	if len(out) < 20 {
		t.Fatalf("%d GET routes: the router did not switch everything on", len(out))
	}
	return out
}
