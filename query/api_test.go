package query_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/zipq/zipq/broker"
	"github.com/zipq/zipq/ingest"
	"github.com/zipq/zipq/internal/testenv"
	"github.com/zipq/zipq/query"
	"github.com/zipq/zipq/storage"
	"github.com/zipq/zipq/zipkin"
)

// apiEnv is the API on a real schema and a real queue.
type apiEnv struct {
	st    *storage.Store
	queue string
	h     http.Handler
}

func newAPI(t *testing.T, mod func(*query.Options)) *apiEnv {
	t.Helper()
	lim := ingest.DefaultLimits()
	lim.MaxBytes = 64 << 10
	return newAPIWithLimits(t, lim, mod)
}

// zipkinIngest is POST /api/v2/spans as zipq serves it: ingest's Zipkin
// handler publishing through pub with lim.
func zipkinIngest(pub ingest.Publisher, lim ingest.Limits) http.Handler {
	cfg := ingest.DefaultConfig()
	cfg.Limits = lim
	return ingest.New(cfg, pub, nil, nil).ZipkinHandler()
}

func newAPIWithLimits(t *testing.T, lim ingest.Limits, mod func(*query.Options)) *apiEnv {
	t.Helper()
	st, err := storage.Open(context.Background(), storage.Config{URL: testenv.Schema(t), AutocompleteKeys: []string{"http.method"}}, nil)
	testenv.Must(t, err)
	t.Cleanup(st.Close)
	cc := broker.Config{URL: testenv.AMQPURL(), Queue: testenv.Queue(t), ParkedQueueType: "classic"}
	pub := broker.NewPublisher(cc)
	t.Cleanup(func() { _ = pub.Close() })
	o := query.Options{Reader: st, Ingest: zipkinIngest(pub, lim), AutocompleteKeys: st.AutocompleteKeys()}
	o.StrictTraceID = true
	if mod != nil {
		mod(&o)
	}
	return &apiEnv{st: st, queue: cc.Queue, h: query.NewRouter(o)}
}

// seed stores a JSON v2 span list and brings dependency links up to date.
func (e *apiEnv) seed(t *testing.T, body string) []zipkin.Span {
	t.Helper()
	spans, err := zipkin.DecodeJSON([]byte(body))
	testenv.Must(t, err)
	testenv.Must(t, e.st.WriteSpans(t.Context(), spans))
	for {
		n, err := e.st.Link(t.Context(), storage.LinkBatch)
		testenv.Must(t, err)
		if n == 0 {
			return spans
		}
	}
}

// get performs a request and checks the response against the Zipkin spec.
func (e *apiEnv) do(t *testing.T, req *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	checkContract(t, req, rec)
	if rec.Code == http.StatusOK && strings.HasPrefix(req.URL.Path, "/api/v2/") {
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", req.URL, ct)
		}
	}
	return rec
}

func (e *apiEnv) get(t *testing.T, target string) *httptest.ResponseRecorder {
	t.Helper()
	return e.do(t, httptest.NewRequest(http.MethodGet, target, nil))
}

var now = time.Now()

func us(ago time.Duration) string { return strconv.FormatInt(now.Add(-ago).UnixMicro(), 10) }

// A two-service trace with a 128-bit ID, its RPC reported in halves, and a
// second trace sharing its lower 64 bits.
var apiSeed = `[
{"traceId":"4e441824ec2b6a44ffdc9bb9a6453df3","id":"ffdc9bb9a6453df3","kind":"SERVER","name":"get /","timestamp":` + us(time.Minute) + `,"duration":2000,"localEndpoint":{"serviceName":"web","ipv4":"10.0.0.1"},"tags":{"http.method":"GET"}},
{"traceId":"4e441824ec2b6a44ffdc9bb9a6453df3","parentId":"ffdc9bb9a6453df3","id":"0000000000000002","kind":"CLIENT","name":"get /users","timestamp":` + us(time.Minute-time.Millisecond) + `,"duration":900,"localEndpoint":{"serviceName":"web"},"remoteEndpoint":{"serviceName":"users","port":8080},"annotations":[{"timestamp":` + us(time.Minute-time.Millisecond) + `,"value":"ws"}]},
{"traceId":"4e441824ec2b6a44ffdc9bb9a6453df3","parentId":"ffdc9bb9a6453df3","id":"0000000000000002","kind":"SERVER","name":"get /users","timestamp":` + us(time.Minute-2*time.Millisecond) + `,"duration":700,"localEndpoint":{"serviceName":"users"},"tags":{"error":"500"},"shared":true},
{"traceId":"00000000000000aaffdc9bb9a6453df3","id":"0000000000000003","kind":"SERVER","name":"other","timestamp":` + us(2*time.Minute) + `,"localEndpoint":{"serviceName":"batch"}}
]`

const traceID = "4e441824ec2b6a44ffdc9bb9a6453df3"

func decodeJSON[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("%v: %s", err, rec.Body.String())
	}
	return v
}

func TestReadAPI(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	in := e.seed(t, apiSeed)
	end := strconv.FormatInt(now.UnixMilli(), 10)
	type traces = [][]map[string]any
	cases := []struct {
		target string
		code   int
		check  func(t *testing.T, rec *httptest.ResponseRecorder)
	}{
		{"/api/v2/services", 200, wantJSON(`["batch","users","web"]`)},
		{"/api/v2/spans?serviceName=WEB", 200, wantJSON(`["get /","get /users"]`)},
		{"/api/v2/spans", 400, wantText("serviceName is required")},
		{"/api/v2/spans?serviceName=nobody", 200, wantJSON(`[]`)},
		{"/api/v2/remoteServices?serviceName=web", 200, wantJSON(`["users"]`)},
		{"/api/v2/remoteServices", 400, wantText("serviceName is required")},
		{"/api/v2/autocompleteKeys", 200, wantJSON(`["http.method"]`)},
		{"/api/v2/autocompleteValues?key=http.method", 200, wantJSON(`["GET"]`)},
		{"/api/v2/autocompleteValues?key=unknown", 200, wantJSON(`[]`)},
		{"/api/v2/autocompleteValues", 400, wantText("key is required")},
		{"/api/v2/trace/" + traceID, 200, func(t *testing.T, rec *httptest.ResponseRecorder) {
			// Byte for byte what Zipkin's JSON v2 encoder writes for the
			// same spans, in a stable order: by start, client half first.
			if want := string(zipkin.EncodeJSON(in[:3])); rec.Body.String() != want {
				t.Fatalf("got\n%s\nwant\n%s", rec.Body, want)
			}
		}},
		{"/api/v2/trace/" + strings.ToUpper(traceID), 200, wantSpans(3)},
		{"/api/v2/trace/ffdc9bb9a6453df3", 404, wantText("ffdc9bb9a6453df3 not found")},
		{"/api/v2/trace/00000000000000000000000000000abc", 404, wantText("0000000000000abc not found")},
		{"/api/v2/trace/xyz", 400, wantText("want 16 or 32 hex")},
		{"/api/v2/trace/" + traceID + "0", 400, wantText("want 16 or 32 hex")},
		{"/api/v2/trace/0000000000000000", 400, wantText("all zeros")},
		{"/api/v2/traceMany?traceIds=" + traceID + ",00000000000000aaffdc9bb9a6453df3", 200, func(t *testing.T, rec *httptest.ResponseRecorder) {
			if got := decodeJSON[traces](t, rec); len(got) != 2 || len(got[0]) != 3 || len(got[1]) != 1 {
				t.Fatalf("got %d traces", len(got))
			}
		}},
		{"/api/v2/traceMany?traceIds=" + traceID + ",0000000000000bad", 200, wantTraces(1)},
		{"/api/v2/traceMany?traceIds=" + traceID, 400, wantText("single trace")},
		{"/api/v2/traceMany?traceIds=" + traceID + "," + traceID, 400, wantText("redundant")},
		{"/api/v2/traceMany?traceIds=" + traceID + ",nothex", 400, wantText("hex")},
		{"/api/v2/traceMany", 400, wantText("traceIds parameter is empty")},
		{"/api/v2/traceMany?traceIds=" + strings.Repeat("1,", 1000) + "2", 400, wantText("at most 1000")},
		{"/api/v2/traces", 200, wantTraces(2)},
		{"/api/v2/traces?serviceName=users&spanName=get+/users&annotationQuery=error", 200, wantTraces(1)},
		{"/api/v2/traces?serviceName=web&spanName=all", 200, wantTraces(1)},
		{"/api/v2/traces?annotationQuery=error+and+http.method%3DGET", 200, wantTraces(0)},
		{"/api/v2/traces?remoteServiceName=users&minDuration=800&maxDuration=1000", 200, wantTraces(1)},
		{"/api/v2/traces?limit=1", 200, wantTraces(1)},
		{"/api/v2/traces?limit=1000000", 200, wantTraces(2)},
		{"/api/v2/traces?endTs=" + end + "&lookback=90000", 200, wantTraces(1)},
		{"/api/v2/traces?lookback=99999999999999999", 200, wantTraces(2)},
		{"/api/v2/traces?unknown=ignored&serviceName=batch", 200, wantTraces(1)},
		{"/api/v2/traces?limit=0", 400, wantText("limit must be a positive integer")},
		{"/api/v2/traces?limit=-3", 400, wantText("limit")},
		{"/api/v2/traces?limit=ten", 400, wantText("limit")},
		{"/api/v2/traces?minDuration=-1", 400, wantText("minDuration")},
		{"/api/v2/traces?minDuration=0", 400, wantText("minDuration must be a positive number")},
		{"/api/v2/traces?endTs=9223372036854775807", 400, wantText("endTs")},
		{"/api/v2/traces?endTs=9223372036854776", 400, wantText("endTs")},
		{"/api/v2/trace/%20" + traceID + "%20", 200, func(t *testing.T, rec *httptest.ResponseRecorder) {
			if got := decodeJSON[[]map[string]any](t, rec); len(got) != 3 || got[0]["traceId"] != traceID {
				t.Fatalf("a trace ID with spaces around it: %s", rec.Body)
			}
		}},
		{"/api/v2/traces?minDuration=1.5", 400, wantText("minDuration")},
		{"/api/v2/traces?maxDuration=10", 400, wantText("only valid with minDuration")},
		{"/api/v2/traces?minDuration=10&maxDuration=5", 400, wantText(">= minDuration")},
		{"/api/v2/traces?endTs=yesterday", 400, wantText("endTs")},
		{"/api/v2/traces?endTs=-1", 400, wantText("endTs")},
		{"/api/v2/traces?endTs=99999999999999999999", 400, wantText("endTs")},
		{"/api/v2/traces?lookback=0", 400, wantText("lookback")},
		{"/api/v2/traces?lookback=1h", 400, wantText("lookback")},
		{"/api/v2/traces?annotationQuery=%3Dvalue", 400, wantText("no key")},
		{"/api/v2/dependencies?endTs=" + end, 200, wantJSON(`[{"parent":"web","child":"users","callCount":1,"errorCount":1}]`)},
		{"/api/v2/dependencies?endTs=" + strconv.FormatInt(now.Add(-2*time.Hour).UnixMilli(), 10) + "&lookback=3600000", 200, wantJSON(`[]`)},
		{"/api/v2/dependencies", 400, wantText("endTs is required")},
		{"/api/v2/dependencies?endTs=now", 400, wantText("endTs")},
		{"/config.json", 200, wantJSON(`{"environment":"","queryLimit":10,"defaultLookback":900000,"searchEnabled":false,"dependency":{"enabled":false,"lowErrorRate":0,"highErrorRate":0},"logsUrl":null,"supportUrl":null,"archivePostUrl":null,"archiveUrl":null}`)},
		{"/zipkin/config.json", 200, wantJSON(`{"environment":"","queryLimit":10,"defaultLookback":900000,"searchEnabled":false,"dependency":{"enabled":false,"lowErrorRate":0,"highErrorRate":0},"logsUrl":null,"supportUrl":null,"archivePostUrl":null,"archiveUrl":null}`)},
	}
	for _, c := range cases {
		t.Run(c.target, func(t *testing.T) {
			rec := e.get(t, c.target)
			if rec.Code != c.code {
				t.Fatalf("code %d, want %d: %s", rec.Code, c.code, rec.Body)
			}
			c.check(t, rec)
		})
	}
}

func TestNonStrictTraceID(t *testing.T) {
	t.Parallel()
	e := newAPI(t, func(o *query.Options) { o.StrictTraceID = false })
	e.seed(t, apiSeed)
	for target, n := range map[string]int{
		"/api/v2/trace/ffdc9bb9a6453df3": 4, // found by its lower 64 bits
		"/api/v2/trace/" + traceID:       4, // traces differing in the high bits merged
	} {
		if rec := e.get(t, target); rec.Code != 200 {
			t.Fatalf("%s: %d", target, rec.Code)
		} else {
			wantSpans(n)(t, rec)
		}
	}
	rec := e.get(t, "/api/v2/traces")
	wantTraces(1)(t, rec)
}

func TestCORSAndConfig(t *testing.T) {
	t.Parallel()
	o := query.Options{Reader: nilReader{}}
	o.AllowedOrigins = []string{"https://ui.example"}
	o.UI = query.UIConfig{Environment: "prod", SearchEnabled: true, Dependency: query.UIDeps{Enabled: true, LowErrorRate: 0.5, HighErrorRate: 0.75}}
	h := query.NewRouter(o)
	req := httptest.NewRequest(http.MethodOptions, "/api/v2/services", nil)
	req.Header.Set("Origin", "https://ui.example")
	req.Header.Set("Access-Control-Request-Method", "GET")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "https://ui.example" {
		t.Fatalf("preflight from an allowed origin: %q (%d)", got, rec.Code)
	}
	req.Header.Set("Origin", "https://evil.example")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "" {
		t.Fatalf("other origin allowed: %q", got)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/config.json", nil))
	wantJSON(`{"environment":"prod","queryLimit":10,"defaultLookback":900000,"searchEnabled":true,"dependency":{"enabled":true,"lowErrorRate":0.5,"highErrorRate":0.75},"logsUrl":null,"supportUrl":null,"archivePostUrl":null,"archiveUrl":null}`)(t, rec)
}

// TestHostileStrings sends quotes, LIKE wildcards, backslashes, NUL,
// invalid UTF-8 and 10 KB strings through every text parameter: each is
// taken literally, finds exactly what was stored under it, and never 500s.
func TestHostileStrings(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	long := strings.Repeat("y", 10<<10)
	hostile := []string{`{"foo":"bar"}`, `o'brien`, `"; DROP TABLE spans; --`, `100%`, `a_b`, `back\slash`, "nul\x00byte", `<script>alert(1)</script>`, long}
	var b strings.Builder
	b.WriteString("[")
	for i, h := range hostile {
		if i > 0 {
			b.WriteString(",")
		}
		js, _ := json.Marshal(h)
		fmt.Fprintf(&b, `{"traceId":"%016x","id":"%016x","kind":"CLIENT","name":%s,"timestamp":%s,"duration":5,"localEndpoint":{"serviceName":%s},"remoteEndpoint":{"serviceName":%s},"tags":{"http.method":%s,%s:"v"},"annotations":[{"timestamp":%s,"value":%s}]}`,
			i+1, i+1, js, us(time.Minute), js, js, js, js, us(time.Minute), js)
	}
	b.WriteString("]")
	e.seed(t, b.String())

	for i, h := range hostile {
		q := url.QueryEscape(h)
		lower := strings.ToLower(h)
		id := fmt.Sprintf("%016x", i+1)
		name := strconv.Itoa(i)
		t.Run(name, func(t *testing.T) {
			for _, target := range []string{
				"/api/v2/traces?serviceName=" + q,
				"/api/v2/traces?spanName=" + q,
				"/api/v2/traces?remoteServiceName=" + q,
				"/api/v2/traces?annotationQuery=" + q,
				"/api/v2/traces?annotationQuery=" + url.QueryEscape(h+"=v"),
				"/api/v2/traces?annotationQuery=" + url.QueryEscape("http.method="+h),
			} {
				rec := e.get(t, target)
				if rec.Code != 200 {
					t.Fatalf("%.80s: %d %s", target, rec.Code, rec.Body)
				}
				got := decodeJSON[[][]map[string]any](t, rec)
				if len(got) != 1 || got[0][0]["traceId"] != id {
					t.Fatalf("%.80s: want only trace %s, got %d traces", target, id, len(got))
				}
			}
			for _, target := range []string{"/api/v2/spans?serviceName=" + q, "/api/v2/remoteServices?serviceName=" + q} {
				rec := e.get(t, target)
				if rec.Code != 200 {
					t.Fatalf("%.80s: %d", target, rec.Code)
				}
				want := strings.ReplaceAll(lower, "\x00", "\uFFFD")
				if got := decodeJSON[[]string](t, rec); len(got) != 1 || got[0] != want {
					t.Fatalf("%.80s: got %.80q", target, got)
				}
			}
			if rec := e.get(t, "/api/v2/autocompleteValues?key="+q); rec.Code != 200 {
				t.Fatalf("autocompleteValues: %d", rec.Code)
			}
			if rec := e.get(t, "/api/v2/trace/"+q); rec.Code != 400 && rec.Code != 404 {
				t.Fatalf("trace/%.40s: %d", q, rec.Code)
			}
		})
	}
	// Wildcards and prefixes match nothing: the text is compared exactly.
	for _, v := range []string{"%", "_", "o'", "100", `back\`, "%25", "\xff\xfe"} {
		for _, p := range []string{"serviceName", "spanName", "annotationQuery", "remoteServiceName"} {
			rec := e.get(t, "/api/v2/traces?"+p+"="+url.QueryEscape(v))
			if rec.Code != 200 || rec.Body.String() != "[]" {
				t.Fatalf("%s=%q: %d %s", p, v, rec.Code, rec.Body)
			}
		}
	}
	if got := decodeJSON[[]string](t, e.get(t, "/api/v2/services")); len(got) != len(hostile) {
		t.Fatalf("services: %d", len(got))
	}
}

// TestPostSpans: accepted bodies reach the queue as sent, with a broker
// confirm before 202; bad bodies never do.
func TestPostSpans(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	conn := testenv.Dial(t)
	ch, err := conn.Channel()
	testenv.Must(t, err)
	next := func() amqp.Delivery {
		t.Helper()
		var d amqp.Delivery
		testenv.Eventually(t, 5*time.Second, "message in "+e.queue, func() bool {
			var ok bool
			d, ok, err = ch.Get(e.queue, true)
			testenv.Must(t, err)
			return ok
		})
		return d
	}
	empty := func() {
		t.Helper()
		q, err := ch.QueueDeclarePassive(e.queue, true, false, false, false, nil)
		testenv.Must(t, err)
		if q.Messages != 0 {
			t.Fatalf("%d unexpected messages in the queue", q.Messages)
		}
	}
	post := func(body []byte, header ...string) *httptest.ResponseRecorder {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, "/api/v2/spans", bytes.NewReader(body))
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		return e.do(t, req)
	}
	jsonBody := []byte(`[{"traceId":"a","id":"b","name":"n","timestamp":` + us(0) + `,"localEndpoint":{"serviceName":"s"}}]`)
	spans, _ := zipkin.DecodeJSON(jsonBody)
	protoBody, _ := zipkin.EncodeProto(spans)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(jsonBody)
	_ = zw.Close()

	t.Run("json", func(t *testing.T) {
		if rec := post(jsonBody, "Content-Type", "application/json"); rec.Code != 202 {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		if d := next(); !bytes.Equal(d.Body, jsonBody) || d.ContentType != "application/json" || d.DeliveryMode != amqp.Persistent {
			t.Fatalf("message %q %q %d", d.Body, d.ContentType, d.DeliveryMode)
		}
	})
	t.Run("proto3", func(t *testing.T) {
		if rec := post(protoBody, "Content-Type", "application/x-protobuf"); rec.Code != 202 {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		if d := next(); !bytes.Equal(d.Body, protoBody) || d.ContentType != "application/x-protobuf" {
			t.Fatalf("message %q", d.ContentType)
		}
	})
	t.Run("gzip", func(t *testing.T) {
		if rec := post(gz.Bytes(), "Content-Type", "application/json", "Content-Encoding", "gzip"); rec.Code != 202 {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		if d := next(); !bytes.Equal(d.Body, jsonBody) {
			t.Fatalf("message %q", d.Body)
		}
	})
	t.Run("empty list", func(t *testing.T) {
		if rec := post([]byte(`[]`)); rec.Code != 202 {
			t.Fatalf("%d", rec.Code)
		}
	})
	bad := []struct {
		name   string
		body   []byte
		header []string
		code   int
		msg    string
	}{
		{"malformed json", []byte(`[{"traceId":`), []string{"Content-Type", "application/json"}, 400, "cannot decode spans"},
		{"bad id", []byte(`[{"traceId":"zz","id":"1"}]`), nil, 400, "invalid_trace_id"},
		{"json sent as protobuf", jsonBody, []string{"Content-Type", "application/x-protobuf"}, 400, "cannot decode spans"},
		{"not gzip", jsonBody, []string{"Content-Encoding", "gzip"}, 400, "gunzip"},
		{"unsupported type", jsonBody, []string{"Content-Type", "application/x-thrift"}, 415, "Content-Type"},
		{"too large", append(append([]byte(`[`), bytes.Repeat([]byte(" "), 70<<10)...), ']'), nil, 413, "exceeds"},
		{"gzip bomb", gzipOf(bytes.Repeat([]byte(" "), 10<<20)), []string{"Content-Encoding", "gzip"}, 413, "exceeds"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			rec := post(c.body, c.header...)
			if rec.Code != c.code || !strings.Contains(rec.Body.String(), c.msg) {
				t.Fatalf("%d %q, want %d %q", rec.Code, rec.Body, c.code, c.msg)
			}
		})
	}
	empty()
}

func TestPostSpansWithoutRabbitMQ(t *testing.T) {
	t.Parallel()
	pub := broker.NewPublisher(broker.Config{URL: "amqp://guest:guest@127.0.0.1:1/"})
	h := query.NewRouter(query.Options{Ingest: zipkinIngest(pub, ingest.DefaultLimits())})
	req := httptest.NewRequest(http.MethodPost, "/api/v2/spans", strings.NewReader(`[{"traceId":"a","id":"b"}]`))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 503 || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	// The cause (here the broker's address) is logged, not returned; the
	// body quotes the request id instead.
	if id := rec.Header().Get("X-Request-Id"); id == "" || strings.Contains(rec.Body.String(), "127.0.0.1") ||
		strings.Contains(rec.Body.String(), "guest") || !strings.Contains(rec.Body.String(), id) {
		t.Fatalf("a 5xx body must carry the request id and no internal detail: %q (id %q)", rec.Body, id)
	}
}

// failingReader fails every read the way a database does, with details a
// client must not see.
type failingReader struct{ query.SpanReader }

func (failingReader) ServiceNames(context.Context) ([]string, error) {
	return nil, errors.New(`failed to connect to user=zipq database=zipq host=10.1.2.3:5432: password authentication failed`)
}

func TestInternalErrorsDoNotLeakDetails(t *testing.T) {
	t.Parallel()
	h := query.NewRouter(query.Options{Reader: failingReader{}})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v2/services", nil))
	id := rec.Header().Get("X-Request-Id")
	if rec.Code != 500 || id == "" || !strings.Contains(rec.Body.String(), id) {
		t.Fatalf("%d %q (id %q)", rec.Code, rec.Body, id)
	}
	for _, secret := range []string{"zipq", "10.1.2.3", "5432", "password"} {
		if strings.Contains(rec.Body.String(), secret) {
			t.Fatalf("500 body leaks %q: %q", secret, rec.Body)
		}
	}
}

// TestPostSpansRefusesWhatTheCollectorWouldPark: the HTTP edge decodes with
// the collector's decoder, so a JSON v1 body (binaryAnnotations) is a 400
// saying why, not a 202 for spans that would be parked.
func TestPostSpansRefusesWhatTheCollectorWouldPark(t *testing.T) {
	t.Parallel()
	h := query.NewRouter(query.Options{Ingest: zipkinIngest(broker.NewPublisher(broker.Config{URL: "amqp://guest:guest@127.0.0.1:1/"}), ingest.DefaultLimits())})
	v1 := `[{"traceId":"6b221d5bc9e6496c","name":"get","id":"6b221d5bc9e6496c","timestamp":1472470996199000,` +
		`"annotations":[{"timestamp":1472470996199000,"value":"sr","endpoint":{"serviceName":"frontend"}}],` +
		`"binaryAnnotations":[{"key":"http.path","value":"/","endpoint":{"serviceName":"frontend"}}]}]`
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v2/spans", strings.NewReader(v1)))
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), string(zipkin.ReasonUnsupported)) {
		t.Fatalf("JSON v1: %d %q", rec.Code, rec.Body)
	}
}

// TestPostSpansSampled keeps or drops whole traces by ID, as the collector
// does, and always keeps debug spans.
func TestPostSpansSampled(t *testing.T) {
	t.Parallel()
	lim := ingest.DefaultLimits()
	lim.SampleRate = 0.5
	e := newAPIWithLimits(t, lim, nil)
	var b strings.Builder
	b.WriteString("[")
	want := 0
	for i := 1; i <= 200; i++ {
		id := zipkin.TraceID{Low: uint64(i) * 0x9E3779B97F4A7C15}
		debug := i%50 == 0
		if zipkin.Sampled(id, debug, 0.5) {
			want += 2
		}
		for s := 1; s <= 2; s++ {
			if b.Len() > 1 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"traceId":"%s","id":"%016x","debug":%v}`, id, s, debug)
		}
	}
	b.WriteString("]")
	req := httptest.NewRequest(http.MethodPost, "/api/v2/spans", strings.NewReader(b.String()))
	if rec := e.do(t, req); rec.Code != 202 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	ch, err := testenv.Dial(t).Channel()
	testenv.Must(t, err)
	var d amqp.Delivery
	testenv.Eventually(t, 5*time.Second, "sampled message", func() bool {
		var ok bool
		d, ok, err = ch.Get(e.queue, true)
		return err == nil && ok
	})
	spans, _, err := zipkin.Decode(d.Body) // sampled spans are re-encoded as proto3
	testenv.Must(t, err)
	if len(spans) != want || want == 0 || want == 400 {
		t.Fatalf("kept %d spans, want %d", len(spans), want)
	}
}

func gzipOf(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

func wantJSON(want string) func(*testing.T, *httptest.ResponseRecorder) {
	return func(t *testing.T, rec *httptest.ResponseRecorder) {
		t.Helper()
		var got, exp any
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("%v: %s", err, rec.Body)
		}
		if err := json.Unmarshal([]byte(want), &exp); err != nil {
			t.Fatal(err)
		}
		g, _ := json.Marshal(got)
		x, _ := json.Marshal(exp)
		if !bytes.Equal(g, x) {
			t.Fatalf("got %s\nwant %s", g, x)
		}
	}
}

func wantText(sub string) func(*testing.T, *httptest.ResponseRecorder) {
	return func(t *testing.T, rec *httptest.ResponseRecorder) {
		t.Helper()
		if !strings.Contains(rec.Body.String(), sub) || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
			t.Fatalf("body %q (%s), want it to contain %q", rec.Body, rec.Header().Get("Content-Type"), sub)
		}
	}
}

func wantTraces(n int) func(*testing.T, *httptest.ResponseRecorder) {
	return func(t *testing.T, rec *httptest.ResponseRecorder) {
		t.Helper()
		if got := decodeJSON[[][]map[string]any](t, rec); len(got) != n {
			t.Fatalf("got %d traces, want %d: %.300s", len(got), n, rec.Body)
		}
	}
}

func wantSpans(n int) func(*testing.T, *httptest.ResponseRecorder) {
	return func(t *testing.T, rec *httptest.ResponseRecorder) {
		t.Helper()
		if got := decodeJSON[[]map[string]any](t, rec); len(got) != n {
			t.Fatalf("got %d spans, want %d", len(got), n)
		}
	}
}

// nilReader answers every read with nothing, for routing-only tests.
type nilReader struct{}

func (nilReader) ServiceNames(context.Context) ([]string, error)      { return []string{}, nil }
func (nilReader) SpanNames(context.Context, string) ([]string, error) { return []string{}, nil }
func (nilReader) RemoteServiceNames(context.Context, string) ([]string, error) {
	return []string{}, nil
}
func (nilReader) AutocompleteValues(context.Context, string) ([]string, error) {
	return []string{}, nil
}
func (nilReader) FindTraces(context.Context, zipkin.QueryRequest, bool) ([][]zipkin.Span, error) {
	return nil, nil
}
func (nilReader) Traces(context.Context, []zipkin.TraceID, bool) ([][]zipkin.Span, error) {
	return nil, nil
}
func (nilReader) Dependencies(context.Context, time.Time, time.Duration) ([]zipkin.DependencyLink, error) {
	return nil, nil
}

// TestPostSpansRecoversAfterRabbitMQReturns: 503 while the broker is cut
// off, 202 again once it is back, with no restart.
func TestPostSpansRecoversAfterRabbitMQReturns(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(testenv.AMQPURL())
	testenv.Must(t, err)
	proxy := testenv.NewProxy(t, u.Host)
	u.Host = proxy.Addr()
	pub := broker.NewPublisher(broker.Config{URL: u.String(), Queue: testenv.Queue(t), ParkedQueueType: "classic"})
	t.Cleanup(func() { _ = pub.Close() })
	h := query.NewRouter(query.Options{Ingest: zipkinIngest(pub, ingest.DefaultLimits())})
	post := func() int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v2/spans", strings.NewReader(`[{"traceId":"a","id":"b"}]`)))
		return rec.Code
	}
	if code := post(); code != http.StatusAccepted {
		t.Fatalf("before the cut: %d", code)
	}
	proxy.Cut()
	testenv.Eventually(t, 10*time.Second, "503 while RabbitMQ is unreachable", func() bool { return post() == http.StatusServiceUnavailable })
	proxy.Restore()
	testenv.Eventually(t, 10*time.Second, "202 once RabbitMQ is back", func() bool { return post() == http.StatusAccepted })
}

// TestPostSpansRefusesCrossOriginSimpleRequests: CORS hides a cross-origin
// answer but does not stop a "simple" POST (text/plain, or no
// Content-Type) from reaching the server. With QUERY_ALLOWED_ORIGINS
// restricted, a browser's POST from another origin is refused, and
// text/plain is refused from anyone; clients that send no Origin (every
// Zipkin reporter) are unaffected.
func TestPostSpansRefusesCrossOriginSimpleRequests(t *testing.T) {
	t.Parallel()
	e := newAPI(t, func(o *query.Options) { o.AllowedOrigins = []string{"https://ui.example"} })
	body := `[{"traceId":"000000000000000a","id":"000000000000000b","name":"x","timestamp":1,"duration":1}]`
	for _, c := range []struct {
		name, contentType, origin string
		code                      int
	}{
		{"text/plain from a page", "text/plain", "https://evil.example", 403},
		{"no content type from a page", "", "https://evil.example", 403},
		{"text/plain without origin", "text/plain;charset=UTF-8", "", 415},
		{"allowed origin", "application/json", "https://ui.example", 202},
		{"reporter without origin", "application/json", "", 202},
	} {
		req := httptest.NewRequest(http.MethodPost, "/api/v2/spans", strings.NewReader(body))
		if c.contentType != "" {
			req.Header.Set("Content-Type", c.contentType)
		}
		if c.origin != "" {
			req.Header.Set("Origin", c.origin)
		}
		if rec := e.do(t, req); rec.Code != c.code {
			t.Errorf("%s: %d %q, want %d", c.name, rec.Code, rec.Body, c.code)
		}
	}
}

// TestAPIAnswersAreCompressed: a client that accepts gzip gets the JSON
// answers gzipped, the same bytes once gunzipped by the standard library;
// one that does not gets them plain.
func TestAPIAnswersAreCompressed(t *testing.T) {
	t.Parallel()
	e := newStatsAPI(t)
	for _, path := range []string{"/api/v2/trace/" + traceID, "/api/zipq/stats?lookback=600000&endTs=" + strconv.FormatInt(now.UnixMilli(), 10)} {
		var plain []byte
		for _, accept := range []string{"", "gzip"} {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			if accept != "" {
				req.Header.Set("Accept-Encoding", accept)
			}
			rec := httptest.NewRecorder()
			e.h.ServeHTTP(rec, req)
			if got := rec.Header().Get("Content-Encoding"); got != accept || rec.Code != 200 {
				t.Fatalf("%s, Accept-Encoding %q: %d, Content-Encoding %q", path, accept, rec.Code, got)
			}
			if accept == "" {
				plain = rec.Body.Bytes()
				continue
			}
			zr, err := gzip.NewReader(rec.Body)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(zr)
			if err != nil || !bytes.Equal(got, plain) || len(plain) < 100 {
				t.Fatalf("%s gunzipped: %v, %q; plain %q", path, err, got, plain)
			}
		}
	}
}
