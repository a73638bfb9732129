package main

import (
	"bytes"
	"compress/gzip"
	"context"
	be "encoding/binary"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelzipkin "go.opentelemetry.io/otel/exporters/zipkin" //nolint:staticcheck // deprecated upstream, still a client users run: the comparison the issue asks for
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/zipq/zipq/internal/testenv"
)

// otlpZipq runs zipq serve with OTLP on ports of the test's own.
func otlpZipq(t *testing.T, env ...string) (p *proc, httpAddr, grpcAddr string) {
	t.Helper()
	f := newFixture(t)
	httpAddr, grpcAddr = freeAddr(t), freeAddr(t)
	p = startZipq(t, append(append(f.env, "ZIPQ_OTLP_HTTP_ADDR="+httpAddr, "ZIPQ_OTLP_GRPC_ADDR="+grpcAddr), env...), "serve")
	return p, httpAddr, grpcAddr
}

// seqIDs gives trace IDs from a counter, so one test can record the same
// trace shape twice under different IDs.
type seqIDs struct{ n atomic.Uint64 }

func (g *seqIDs) NewIDs(context.Context) (trace.TraceID, trace.SpanID) {
	var tid trace.TraceID
	be.BigEndian.PutUint64(tid[:8], 0xabc)
	be.BigEndian.PutUint64(tid[8:], g.n.Add(1)<<32)
	return tid, g.NewSpanID(context.Background(), tid)
}

func (g *seqIDs) NewSpanID(context.Context, trace.TraceID) trace.SpanID {
	var sid trace.SpanID
	be.BigEndian.PutUint64(sid[:], g.n.Add(1))
	return sid
}

// recordCheckout records web → payments with the OpenTelemetry SDK, one
// tracer provider (one process) per service, each exporting through its
// own exporter: events, an error, attributes of every type and a link.
func recordCheckout(t *testing.T, ids *seqIDs, web, payments sdktrace.SpanExporter) trace.TraceID {
	t.Helper()
	provider := func(service string, exp sdktrace.SpanExporter) *sdktrace.TracerProvider {
		return sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithIDGenerator(ids),
			sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))))
	}
	w, p := provider("otel-web", web), provider("otel-payments", payments)
	ctx := context.Background()
	ctx, root := w.Tracer("checkout").Start(ctx, "POST /checkout", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", "POST"), attribute.Bool("b", true), attribute.Int("i", 42),
			attribute.Float64("f", 1.5), attribute.StringSlice("ss", []string{"a", "b"}), attribute.IntSlice("is", []int{1, 2}),
			attribute.BoolSlice("bs", []bool{true}), attribute.Float64Slice("fs", []float64{0.5})),
		trace.WithLinks(trace.Link{SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled})}))
	root.AddEvent("cart loaded")
	_, call := w.Tracer("checkout").Start(ctx, "charge", trace.WithSpanKind(trace.SpanKindClient))
	remote := trace.ContextWithRemoteSpanContext(context.Background(), call.SpanContext())
	_, serve := p.Tracer("payments").Start(remote, "charge", trace.WithSpanKind(trace.SpanKindServer))
	serve.AddEvent("card declined", trace.WithAttributes(attribute.String("reason", "insufficient funds")))
	serve.SetStatus(codes.Error, "declined")
	serve.End()
	call.End()
	root.End()
	testenv.Must(t, w.Shutdown(ctx))
	testenv.Must(t, p.Shutdown(ctx))
	return root.SpanContext().TraceID()
}

// readTrace waits for want spans of a trace through the Zipkin API.
func readTrace(t *testing.T, addr string, id trace.TraceID, want int) []map[string]any {
	t.Helper()
	var spans []map[string]any
	testenv.Eventually(t, 30*time.Second, fmt.Sprintf("%d spans of %s", want, id), func() bool {
		spans = nil
		return getJSON(t, "http://"+addr+"/api/v2/trace/"+id.String(), &spans) == 200 && len(spans) == want
	})
	return spans
}

func byName(spans []map[string]any, kind string) map[string]any {
	for _, s := range spans {
		if s["kind"] == kind {
			return s
		}
	}
	return nil
}

// TestOTLPEndToEnd: OpenTelemetry's own Go SDK exporters — OTLP/HTTP
// (protobuf) for one service, OTLP/gRPC for the other — send a
// two-service trace through RabbitMQ and PostgreSQL; it reads back through
// the Zipkin API as the Collector's translator defines it, with services,
// names and a dependency link. The same trace sent by the SDK's Zipkin
// exporter reads back the same, up to what the README lists as lost.
func TestOTLPEndToEnd(t *testing.T) {
	t.Parallel()
	p, httpAddr, grpcAddr := otlpZipq(t)
	ctx := context.Background()
	httpExp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(httpAddr), otlptracehttp.WithInsecure())
	testenv.Must(t, err)
	grpcExp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(grpcAddr), otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithCompressor("gzip"))
	testenv.Must(t, err)
	ids := &seqIDs{}
	viaOTLP := recordCheckout(t, ids, httpExp, grpcExp)
	spans := readTrace(t, p.addr, viaOTLP, 3)

	root, server := byName(spans, "SERVER"), (map[string]any)(nil)
	for _, s := range spans {
		if s["kind"] == "SERVER" && s["localEndpoint"].(map[string]any)["serviceName"] == "otel-payments" {
			server = s
		}
		if s["kind"] == "SERVER" && s["localEndpoint"].(map[string]any)["serviceName"] == "otel-web" {
			root = s
		}
	}
	if root == nil || server == nil {
		t.Fatalf("spans: %v", spans)
	}
	tags := root["tags"].(map[string]any)
	for k, want := range map[string]string{"b": "true", "i": "42", "f": "1.5", "ss": `["a","b"]`, "is": "[1,2]", "bs": "[true]",
		"fs": "[0.5]", "http.request.method": "POST", "otel.library.name": "checkout"} {
		if tags[k] != want {
			t.Errorf("tag %s = %v, want %s", k, tags[k], want)
		}
	}
	if l, _ := tags["otlp.link.0"].(string); !strings.HasPrefix(l, "01000000000000000000000000000000|0200000000000000|") {
		t.Errorf("link tag %q", l)
	}
	stags := server["tags"].(map[string]any)
	if stags["error"] != "true" || stags["otel.status_code"] != "STATUS_CODE_ERROR" || stags["otel.status_description"] != "declined" {
		t.Errorf("error status: %v", stags)
	}
	if a := server["annotations"].([]any); len(a) != 1 || !strings.HasPrefix(a[0].(map[string]any)["value"].(string), `card declined|{"reason":"insufficient funds"}`) {
		t.Errorf("annotations %v", a)
	}
	var services []string
	getJSON(t, "http://"+p.addr+"/api/v2/services", &services)
	if !strings.Contains(strings.Join(services, ","), "otel-payments") || !strings.Contains(strings.Join(services, ","), "otel-web") {
		t.Errorf("services %v", services)
	}
	testenv.Eventually(t, 20*time.Second, "dependency otel-web → otel-payments", func() bool {
		var links []map[string]any
		getJSON(t, fmt.Sprintf("http://%s/api/v2/dependencies?endTs=%d", p.addr, time.Now().Add(time.Hour).UnixMilli()), &links)
		for _, l := range links {
			if l["parent"] == "otel-web" && l["child"] == "otel-payments" {
				return true
			}
		}
		return false
	})

	// The same shape through the SDK's Zipkin exporter.
	zexp := func() sdktrace.SpanExporter {
		e, err := otelzipkin.New("http://" + p.addr + "/api/v2/spans")
		testenv.Must(t, err)
		return e
	}
	viaZipkin := recordCheckout(t, ids, zexp(), zexp())
	other := readTrace(t, p.addr, viaZipkin, 3)
	key := func(s map[string]any) string {
		return s["kind"].(string) + "/" + s["localEndpoint"].(map[string]any)["serviceName"].(string)
	}
	zipkinSpans := map[string]map[string]any{}
	for _, s := range other {
		zipkinSpans[key(s)] = s
	}
	// Where the Collector's translator and the SDK's Zipkin exporter
	// differ (README, "OTLP ingest"): tags only one of them writes, or
	// writes differently, and event annotations with attributes.
	differ := map[string]bool{"otel.status_code": true, "error": true, "otlp.link.0": true,
		"otel.scope.name": true, "otel.library.name": true, "otel.scope.version": true, "otel.library.version": true,
		"service.name": true, "otel.status_description": true}
	for _, s := range spans {
		z := zipkinSpans[key(s)]
		if z == nil {
			t.Fatalf("%s missing from the Zipkin exporter's trace", key(s))
		}
		for _, f := range []string{"name", "remoteEndpoint"} { // durations are the two runs' own
			if fmt.Sprint(s[f]) != fmt.Sprint(z[f]) {
				t.Errorf("%s: %s %v via OTLP, %v via Zipkin", key(s), f, s[f], z[f])
			}
		}
		if (s["parentId"] == nil) != (z["parentId"] == nil) {
			t.Errorf("%s: parent differs", key(s))
		}
		st, zt := s["tags"].(map[string]any), z["tags"].(map[string]any)
		for k := range st {
			if !differ[k] && fmt.Sprint(st[k]) != fmt.Sprint(zt[k]) {
				t.Errorf("%s: tag %s = %v via OTLP, %v via Zipkin", key(s), k, st[k], zt[k])
			}
		}
		for k := range zt {
			if _, ok := st[k]; !ok && !differ[k] {
				t.Errorf("%s: tag %s only via Zipkin (%v)", key(s), k, zt[k])
			}
		}
		sa, _ := s["annotations"].([]any)
		za, _ := z["annotations"].([]any)
		if len(sa) != len(za) {
			t.Errorf("%s: %d annotations via OTLP, %d via Zipkin", key(s), len(sa), len(za))
		}
	}
}

// TestOTLPBrokerDownRetriesThenStoresOnce: with RabbitMQ unreachable the
// SDK's OTLP/HTTP and OTLP/gRPC exporters get retryable answers (503,
// UNAVAILABLE with RetryInfo) and retry; once the broker is back every
// span is stored exactly once.
func TestOTLPBrokerDownRetriesThenStoresOnce(t *testing.T) {
	t.Parallel()
	proxy := testenv.NewProxy(t, "127.0.0.1:5672")
	uri := strings.Replace(testenv.AMQPURL(), "127.0.0.1:5672", proxy.Addr(), 1)
	f := newFixture(t)
	httpAddr, grpcAddr := freeAddr(t), freeAddr(t)
	p := startZipq(t, append(f.env, "RABBIT_URI="+uri, "ZIPQ_OTLP_HTTP_ADDR="+httpAddr, "ZIPQ_OTLP_GRPC_ADDR="+grpcAddr), "serve")
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpoint(httpAddr), otlptracehttp.WithInsecure(),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: true, InitialInterval: 200 * time.Millisecond,
			MaxInterval: time.Second, MaxElapsedTime: time.Minute}))
	testenv.Must(t, err)
	gexp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(grpcAddr), otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: true, InitialInterval: 200 * time.Millisecond,
			MaxInterval: time.Second, MaxElapsedTime: time.Minute}))
	testenv.Must(t, err)
	ids := &seqIDs{}
	for _, e := range []sdktrace.SpanExporter{exp, gexp} { // OTLP/HTTP, then OTLP/gRPC
		proxy.Cut()
		go func() { time.Sleep(2 * time.Second); proxy.Restore() }()
		start := time.Now()
		id := recordCheckout(t, ids, e, e) // Shutdown returns once exported
		if time.Since(start) < 2*time.Second {
			t.Fatal("exported while the broker was unreachable")
		}
		readTrace(t, p.addr, id, 3)
	}
	if d, _ := f.stored(t); d != 6 {
		t.Fatalf("%d distinct spans; want 6", d)
	}
	// A publish whose confirm the cut lost is retried by the exporter and
	// may be stored twice, cut into another segment; the compactor folds
	// it into one (what readers see was exactly once all along).
	testenv.Eventually(t, 30*time.Second, "6 spans stored, each once", func() bool {
		d, phys := f.stored(t)
		return d == 6 && phys == 6
	})
	resp, err := http.Get("http://" + p.addr + "/metrics")
	testenv.Must(t, err)
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`zipq_otlp_requests_total{protocol="http",result="unavailable"}`, `zipq_otlp_requests_total{protocol="grpc",result="unavailable"}`,
		`zipq_otlp_spans_total{outcome="accepted",protocol="http"} 3`, `zipq_otlp_spans_total{outcome="accepted",protocol="grpc"} 3`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// otlpBody is an export request of n spans of one trace, with attrs
// attributes each; zeroID gives the first span an all-zero span ID.
func otlpBody(t *testing.T, trace uint64, n, attrs int, zeroID bool) []byte {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "otlp-raw")
	ss := rs.ScopeSpans().AppendEmpty()
	var tid pcommon.TraceID
	be.BigEndian.PutUint64(tid[8:], trace)
	now := time.Now()
	for i := range n {
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(tid)
		if !zeroID || i != 0 {
			sp.SetSpanID(pcommon.SpanID{0, 0, 0, 0, 0, 0, 1, byte(i + 1)})
		}
		sp.SetName("op")
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
		for a := range attrs {
			sp.Attributes().PutStr(fmt.Sprintf("k%d", a), "v")
		}
	}
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	testenv.Must(t, err)
	return b
}

// TestOTLPBadInput: malformed, mistyped, oversized and hostile requests
// get OTLP's answers, nothing of them is stored in part, and the server
// keeps serving; spans with an all-zero ID are a partial success.
func TestOTLPBadInput(t *testing.T) {
	t.Parallel()
	p, httpAddr, grpcAddr := otlpZipq(t, "COLLECTOR_MAX_MESSAGE_BYTES=1048576")
	post := func(body []byte, contentType string, gz bool) (int, []byte) {
		req, err := http.NewRequest(http.MethodPost, "http://"+httpAddr+"/v1/traces", bytes.NewReader(body))
		testenv.Must(t, err)
		req.Header.Set("Content-Type", contentType)
		if gz {
			req.Header.Set("Content-Encoding", "gzip")
		}
		resp, err := http.DefaultClient.Do(req)
		testenv.Must(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	good := otlpBody(t, 1, 3, 1, false)
	zeros := make([]byte, 50<<20)
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	_, _ = zw.Write(zeros)
	_ = zw.Close()
	for _, c := range []struct {
		name        string
		body        []byte
		contentType string
		gz          bool
		code        int
	}{
		{"truncated protobuf", good[:len(good)-5], "application/x-protobuf", false, 400},
		{"zipkin json as OTLP json", []byte(`[{"traceId":"1","id":"1"}]`), "application/json", false, 400},
		{"wrong content type", good, "text/plain", false, 415},
		{"trace id of the wrong length", []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102","spanId":"0102030405060708","name":"x"}]}]}]}`), "application/json", false, 400},
		{"50 MB body", zeros, "application/x-protobuf", false, 413},
		{"gzip bomb", bomb.Bytes(), "application/x-protobuf", true, 413},
	} {
		if code, body := post(c.body, c.contentType, c.gz); code != c.code {
			t.Errorf("%s: %d %q, want %d", c.name, code, body, c.code)
		}
	}
	// All-zero span ID: the other spans are stored, the answer says one
	// was rejected.
	code, body := post(otlpBody(t, 2, 3, 1, true), "application/x-protobuf", false)
	resp := ptraceotlp.NewExportResponse()
	testenv.Must(t, resp.UnmarshalProto(body))
	if code != 200 || resp.PartialSuccess().RejectedSpans() != 1 {
		t.Fatalf("zero id: %d, rejected %d", code, resp.PartialSuccess().RejectedSpans())
	}
	// OTLP's JSON encoding: answered in JSON, stored.
	jsReq := ptraceotlp.NewExportRequest()
	testenv.Must(t, jsReq.UnmarshalProto(otlpBody(t, 5, 2, 1, false)))
	js, err := jsReq.MarshalJSON()
	testenv.Must(t, err)
	if code, body := post(js, "application/json", false); code != 200 || !strings.HasPrefix(string(body), "{") {
		t.Fatalf("OTLP JSON: %d %q", code, body)
	}
	// 10,000 attributes on one span: legal OTLP, stored whole.
	if code, body := post(otlpBody(t, 3, 1, 10000, false), "application/x-protobuf", false); code != 200 {
		t.Fatalf("10,000 attributes: %d %q", code, body)
	}
	// gRPC: garbage is INVALID_ARGUMENT, a message over the limit
	// RESOURCE_EXHAUSTED.
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	testenv.Must(t, err)
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)
	garbage := ptraceotlp.NewExportRequest()
	_, err = client.Export(context.Background(), garbage)
	if err != nil {
		t.Fatalf("an empty request is valid: %v", err)
	}
	if err := conn.Invoke(context.Background(), "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
		&rawMsg{b: []byte{0xff, 0xff, 0xff}}, &rawMsg{}, grpc.ForceCodec(testRawCodec{})); status.Code(err) != grpccodes.InvalidArgument {
		t.Errorf("garbage over gRPC: %v, want InvalidArgument", err)
	}
	big := otlpBody(t, 4, 2000, 100, false)
	req := ptraceotlp.NewExportRequest()
	testenv.Must(t, req.UnmarshalProto(big))
	if _, err := client.Export(context.Background(), req); status.Code(err) != grpccodes.ResourceExhausted {
		t.Errorf("%d-byte message over gRPC: %v, want ResourceExhausted", len(big), err)
	}

	traces := func(id string) int {
		var spans []any
		getJSON(t, "http://"+p.addr+"/api/v2/trace/"+id, &spans)
		return len(spans)
	}
	testenv.Eventually(t, 30*time.Second, "the valid spans stored", func() bool {
		return traces("0000000000000002") == 2 && traces("0000000000000003") == 1 && traces("0000000000000005") == 2
	})
	if n := traces("0000000000000004"); n != 0 {
		t.Fatalf("%d spans of the refused gRPC message stored", n)
	}
	var services []string
	if getJSON(t, "http://"+p.addr+"/api/v2/services", &services) != 200 {
		t.Fatal("the server stopped serving")
	}
}

type rawMsg struct{ b []byte }

type testRawCodec struct{}

func (testRawCodec) Marshal(v any) ([]byte, error)      { return v.(*rawMsg).b, nil }
func (testRawCodec) Unmarshal(data []byte, v any) error { v.(*rawMsg).b = data; return nil }
func (testRawCodec) Name() string                       { return "proto" }

// TestOTLPQueueFormatOTLP: with ZIPQ_OTLP_QUEUE_FORMAT=otlp the edge
// publishes requests as they came and the collector translates them; the
// spans read back the same.
func TestOTLPQueueFormatOTLP(t *testing.T) {
	t.Parallel()
	p, httpAddr, _ := otlpZipq(t, "ZIPQ_OTLP_QUEUE_FORMAT=otlp")
	resp, err := http.Post("http://"+httpAddr+"/v1/traces", "application/x-protobuf", bytes.NewReader(otlpBody(t, 6, 3, 2, true)))
	testenv.Must(t, err)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%d", resp.StatusCode)
	}
	var spans []map[string]any
	testenv.Eventually(t, 30*time.Second, "2 spans stored (the zero-id one left out)", func() bool {
		spans = nil
		return getJSON(t, "http://"+p.addr+"/api/v2/trace/0000000000000006", &spans) == 200 && len(spans) == 2
	})
	if ep := spans[0]["localEndpoint"].(map[string]any); ep["serviceName"] != "otlp-raw" || spans[0]["tags"].(map[string]any)["k1"] != "v" {
		t.Fatalf("span %v", spans[0])
	}
}
