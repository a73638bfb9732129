package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/zipq/zipq/internal/otlptest"
	"github.com/zipq/zipq/zipkin"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// queue records what a receiver publishes, or refuses everything (down):
// the receiver's unit tests need its answers, not RabbitMQ (the
// end-to-end tests in cmd/zipq publish to the real broker).
type queue struct {
	mu   sync.Mutex
	down bool
	msgs []published
}

type published struct {
	body        []byte
	contentType string
}

func (q *queue) Publish(_ context.Context, body []byte, contentType string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.down {
		return errors.New("connection refused")
	}
	q.msgs = append(q.msgs, published{bytes.Clone(body), contentType})
	return nil
}

// spans decodes everything published, as the collector would.
func (q *queue) spans(t *testing.T) []zipkin.Span {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []zipkin.Span
	for _, m := range q.msgs {
		s, _, err := DefaultLimits().DecodeMessage(m.body, m.contentType, "")
		if err != nil {
			t.Fatalf("published a message the collector would park: %v", err)
		}
		out = append(out, s...)
	}
	return out
}

func newReceiver(t *testing.T, mod func(*Config)) (*Receiver, *queue) {
	t.Helper()
	cfg := DefaultConfig()
	if mod != nil {
		mod(&cfg)
	}
	q := &queue{}
	return New(cfg, q, nil, nil), q
}

func post(h http.Handler, path, contentType string, body []byte, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

func TestLimitsValidateJoinsEveryProblem(t *testing.T) {
	t.Parallel()
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	err := Config{Limits: Limits{MaxBytes: -1, SampleRate: 2}, QueueFormat: "thrift"}.Validate()
	for _, want := range []string{"max message bytes", "sample rate", "queue format", "confirm timeout"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q missing from %v", want, err)
		}
	}
}

// TestDecodeMessage: the collector's view of a queue message — the size
// limit, OTLP by content type, Zipkin detected from the body, sampling
// counted.
func TestDecodeMessage(t *testing.T) {
	t.Parallel()
	pb, _ := otlpRequest(t).MarshalProto()
	zj := zipkin.EncodeJSON([]zipkin.Span{{TraceID: zipkin.TraceID{Low: 1}, ID: 1}})
	lim := DefaultLimits()
	if kept, n, err := lim.DecodeMessage(pb, ContentTypeOTLPProto, ""); err != nil || len(kept) != 2 || n != (zipkin.Tally{Rejected: 2}) {
		t.Fatalf("otlp: %d kept, %+v, %v", len(kept), n, err)
	}
	if kept, _, err := lim.DecodeMessage(zj, "application/x-protobuf", ""); err != nil || len(kept) != 1 {
		t.Fatalf("zipkin json under a wrong content type: %d, %v", len(kept), err)
	}
	if _, _, err := lim.DecodeMessage(pb, "application/x-protobuf", ""); err == nil {
		t.Fatalf("OTLP without its content type is not a Zipkin list: %v", err)
	}
	// The AMQP content_encoding property: gzip is inflated (within the
	// limit, so a small bomb is too_large), anything else parked.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(zj)
	_ = zw.Close()
	for _, enc := range []string{"gzip", "x-gzip", " GZIP "} {
		if kept, _, err := lim.DecodeMessage(gz.Bytes(), "application/json", enc); err != nil || len(kept) != 1 {
			t.Fatalf("content_encoding %q: %d, %v", enc, len(kept), err)
		}
	}
	for enc, want := range map[string]zipkin.Reason{"br": zipkin.ReasonBadEncoding, "deflate": zipkin.ReasonBadEncoding} {
		if _, _, err := lim.DecodeMessage(gz.Bytes(), "", enc); zipkin.ReasonOf(err) != want {
			t.Fatalf("content_encoding %q: %v, want %s", enc, err, want)
		}
	}
	if _, _, err := lim.DecodeMessage(zj, "", "gzip"); zipkin.ReasonOf(err) != zipkin.ReasonBadEncoding {
		t.Fatalf("plain body labelled gzip: %v", err)
	}
	lim.MaxBytes = len(zj) - 1
	if _, _, err := lim.DecodeMessage(zj, "", ""); zipkin.ReasonOf(err) != zipkin.ReasonTooLarge {
		t.Fatalf("over the limit: %v", err)
	}
	if _, _, err := lim.DecodeMessage(gz.Bytes(), "", "gzip"); zipkin.ReasonOf(err) != zipkin.ReasonTooLarge {
		t.Fatalf("over the limit once inflated: %v", err)
	}
	lim = Limits{MaxBytes: 1 << 20, SampleRate: 0.5}
	var spans []zipkin.Span
	for i := range 200 {
		spans = append(spans, zipkin.Span{TraceID: zipkin.TraceID{Low: uint64(i+1) * 0x9E3779B97F4A7C15}, ID: 1})
	}
	kept, n, err := lim.DecodeMessage(zipkin.EncodeJSON(spans), "", "")
	if err != nil || len(kept)+n.SampledOut != 200 || n.SampledOut == 0 || len(kept) == 0 {
		t.Fatalf("sampled: %d kept + %d out of 200, %v", len(kept), n.SampledOut, err)
	}
	// Names past zipkin.MaxNameBytes are cut and counted, whichever way
	// the spans came.
	long := strings.Repeat("s", 4<<20)
	big := zipkin.EncodeJSON([]zipkin.Span{{TraceID: zipkin.TraceID{Low: 9}, ID: 1, Name: "x",
		LocalEndpoint: &zipkin.Endpoint{ServiceName: long}}})
	kept, n, err = Limits{MaxBytes: 8 << 20, SampleRate: 1}.DecodeMessage(big, "", "")
	if err != nil || n.Truncated != 1 || len(kept[0].LocalServiceName()) != zipkin.MaxNameBytes || kept[0].Tags[zipkin.TruncatedTag] == "" {
		t.Fatalf("4 MiB service name: %+v, %v", n, err)
	}
}

func TestZipkinHandler(t *testing.T) {
	t.Parallel()
	r, q := newReceiver(t, func(c *Config) { c.MaxBytes = 4096 })
	h := r.ZipkinHandler()
	body := zipkin.EncodeJSON([]zipkin.Span{{TraceID: zipkin.TraceID{Low: 10}, ID: 11, Name: "get"}})
	for _, c := range []struct {
		name, contentType string
		body              []byte
		header            []string
		code              int
		msg               string
	}{
		{"json", "application/json", body, nil, 202, ""},
		{"gzip", "", gz(body), []string{"Content-Encoding", "gzip"}, 202, ""},
		{"proto as json", "application/x-protobuf", body, nil, 400, "Content-Type says"},
		{"text/plain", "text/plain", body, nil, 415, "Content-Type must be"},
		{"too large", "", bytes.Repeat([]byte(" "), 5000), nil, 413, "exceeds 4096 bytes"},
		{"gzip bomb", "", gz(bytes.Repeat([]byte(" "), 100000)), []string{"Content-Encoding", "gzip"}, 413, "exceeds 4096 bytes"},
		{"x-gzip", "", gz(body), []string{"Content-Encoding", "x-gzip"}, 202, ""},
		{"deflate", "", body, []string{"Content-Encoding", "deflate"}, 415, "unsupported Content-Encoding"},
		{"br", "", body, []string{"Content-Encoding", "br"}, 415, "unsupported Content-Encoding"},
		{"zstd", "", body, []string{"Content-Encoding", "zstd"}, 415, "unsupported Content-Encoding"},
		{"garbage", "", []byte("hello"), nil, 400, "cannot decode spans"},
	} {
		rec := post(h, "/api/v2/spans", c.contentType, c.body, c.header...)
		if rec.Code != c.code || !strings.Contains(rec.Body.String(), c.msg) {
			t.Errorf("%s: %d %q, want %d %q", c.name, rec.Code, rec.Body, c.code, c.msg)
		}
	}
	if got := q.spans(t); len(got) != 3 || got[0].Name != "get" {
		t.Fatalf("published %d spans (%+v), want the three accepted", len(got), got)
	}
	q.down = true
	if rec := post(h, "/api/v2/spans", "", body); rec.Code != 503 || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("queue down: %d %q", rec.Code, rec.Body)
	}
}

func TestOTLPHandler(t *testing.T) {
	t.Parallel()
	r, q := newReceiver(t, func(c *Config) { c.MaxBytes = 64 << 10 })
	h := r.OTLPHandler()
	req := otlpRequest(t)
	pb, _ := req.MarshalProto()
	js, _ := req.MarshalJSON()
	rec := post(h, "/v1/traces", "application/x-protobuf", pb)
	resp := ptraceotlp.NewExportResponse()
	if rec.Code != 200 || resp.UnmarshalProto(rec.Body.Bytes()) != nil || resp.PartialSuccess().RejectedSpans() != 2 {
		t.Fatalf("proto: %d %q", rec.Code, rec.Body)
	}
	rec = post(h, "/v1/traces", "application/json", js)
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" || resp.UnmarshalJSON(rec.Body.Bytes()) != nil {
		t.Fatalf("json: %d %q", rec.Code, rec.Body)
	}
	if got := q.spans(t); len(got) != 4 {
		t.Fatalf("published %d spans, want 2 per request", len(got))
	}
	for _, c := range []struct {
		name, contentType string
		body              []byte
		code              int
		msg               string
	}{
		{"text/plain", "text/plain", js, 415, "Content-Type must be"},
		{"truncated", "application/x-protobuf", pb[:len(pb)/2], 400, "malformed_otlp"},
		{"too large", "application/json", bytes.Repeat([]byte(" "), 70<<10), 413, "exceeds"},
		{"deflate", "application/json", js, 415, "unsupported Content-Encoding"},
		{"amplified", "application/x-protobuf", otlptest.Amplified(t, 1000, 1000), 413, "would carry"},
	} {
		var hdr []string
		if c.name == "deflate" {
			hdr = []string{"Content-Encoding", "deflate"}
		}
		rec := post(h, "/v1/traces", c.contentType, c.body, hdr...)
		if rec.Code != c.code || !strings.Contains(rec.Body.String(), c.msg) {
			t.Errorf("%s: %d %q, want %d %q", c.name, rec.Code, rec.Body, c.code, c.msg)
		}
	}
	q.down = true
	if rec := post(h, "/v1/traces", "application/x-protobuf", pb); rec.Code != 503 || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("queue down: %d %q", rec.Code, rec.Body)
	}
}

// TestPublishSplitsWhatTranslationGrew: a request whose translation is
// larger than a message the collector takes goes out in parts, each
// within the limit, and nothing is lost.
func TestPublishSplitsWhatTranslationGrew(t *testing.T) {
	t.Parallel()
	r, q := newReceiver(t, func(c *Config) { c.MaxBytes = 2000 })
	var spans []zipkin.Span
	for i := range 50 {
		spans = append(spans, zipkin.Span{TraceID: zipkin.TraceID{Low: 7}, ID: zipkin.SpanID(i + 1),
			Tags: map[string]string{"host.name": strings.Repeat("h", 100)}})
	}
	if _, err := r.publishSpans(t.Context(), spans, nil, ""); err != nil {
		t.Fatal(err)
	}
	for _, m := range q.msgs {
		if len(m.body) > 2000 {
			t.Fatalf("a part of %d bytes", len(m.body))
		}
	}
	if got := q.spans(t); len(q.msgs) < 2 || len(got) != 50 {
		t.Fatalf("%d parts, %d spans", len(q.msgs), len(got))
	}
}

func TestGRPCExport(t *testing.T) {
	t.Parallel()
	r, q := newReceiver(t, nil)
	srv := r.GRPCServer()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	client := ptraceotlp.NewGRPCClient(conn)
	resp, err := client.Export(t.Context(), otlpRequest(t))
	if err != nil || resp.PartialSuccess().RejectedSpans() != 2 || len(q.spans(t)) != 2 {
		t.Fatalf("export: %v, %d published", err, len(q.spans(t)))
	}
	big := ptraceotlp.NewExportRequest()
	if err := big.UnmarshalProto(otlptest.Amplified(t, 1000, 1000)); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Export(t.Context(), big); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("amplified request: %v, want RESOURCE_EXHAUSTED", err)
	}
	q.mu.Lock()
	q.down = true
	q.mu.Unlock()
	_, err = client.Export(t.Context(), otlpRequest(t))
	if status.Code(err) != codes.Unavailable || len(status.Convert(err).Details()) != 1 {
		t.Fatalf("queue down: %v, want UNAVAILABLE with RetryInfo", err)
	}
}

// blocking is a publisher that holds every publish until released.
type blocking struct {
	entered chan struct{}
	release chan struct{}
}

func (b blocking) Publish(ctx context.Context, _ []byte, _ string) error {
	b.entered <- struct{}{}
	select {
	case <-b.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestInFlightBudget: while requests hold MaxInFlightBytes of bodies, the
// next is told to retry (429 with Retry-After; OTLP the same) instead of
// being read into memory; once they finish, requests are taken again.
func TestInFlightBudget(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.MaxBytes, cfg.MaxInFlightBytes = 4096, 4096
	pub := blocking{entered: make(chan struct{}, 1), release: make(chan struct{})}
	r := New(cfg, pub, nil, nil)
	body := zipkin.EncodeJSON([]zipkin.Span{{TraceID: zipkin.TraceID{Low: 1}, ID: 1}})
	done := make(chan int)
	go func() {
		// A body of unknown length (chunked) holds the largest a body may be.
		req := httptest.NewRequest(http.MethodPost, "/api/v2/spans", io.NopCloser(bytes.NewReader(body)))
		req.ContentLength = -1
		rec := httptest.NewRecorder()
		r.ZipkinHandler().ServeHTTP(rec, req)
		done <- rec.Code
	}()
	<-pub.entered // the first request is being published, holding 4096 bytes
	if rec := post(r.ZipkinHandler(), "/api/v2/spans", "", body); rec.Code != 429 || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("while the budget is held: %d %q", rec.Code, rec.Body)
	}
	if rec := post(r.OTLPHandler(), "/v1/traces", "application/json", []byte(`{}`)); rec.Code != 429 {
		t.Fatalf("OTLP while the budget is held: %d %q", rec.Code, rec.Body)
	}
	close(pub.release)
	if code := <-done; code != 202 {
		t.Fatalf("the first request: %d", code)
	}
	if rec := post(r.ZipkinHandler(), "/api/v2/spans", "", body); rec.Code != 202 {
		t.Fatalf("after the budget was released: %d %q", rec.Code, rec.Body)
	}
}
