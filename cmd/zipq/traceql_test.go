package main

import (
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/zipq/zipq/ingest"
	"github.com/zipq/zipq/internal/testenv"
	"github.com/zipq/zipq/traceql"
	"github.com/zipq/zipq/zipkin"
)

// genTraces makes n random traces over a small vocabulary (so queries
// find things): a root server span and a tree of client/server/internal
// spans below it across 5 services, with status-code tags, error tags and
// annotations, all started in the last few minutes.
func genTraces(rng *rand.Rand, n int, now time.Time) [][]zipkin.Span {
	services := []string{"frontend", "cart", "payments", "db", "queue"}
	names := []string{"get /", "post /cart", "charge", "select", "publish"}
	codes := []string{"200", "201", "404", "500", "503"}
	out := make([][]zipkin.Span, n)
	for i := range out {
		id := zipkin.TraceID{Low: uint64(i+1)<<8 | 0x77}
		start := now.Add(-time.Duration(rng.IntN(300)) * time.Second).UnixMicro()
		count := 1 + rng.IntN(8)
		for j := 1; j <= count; j++ {
			s := zipkin.Span{TraceID: id, ID: zipkin.SpanID(j), Name: names[rng.IntN(len(names))],
				Timestamp: start + int64(j*1000), Duration: int64(1+rng.IntN(200)) * 1000,
				LocalEndpoint: &zipkin.Endpoint{ServiceName: services[rng.IntN(len(services))]},
				Kind:          []zipkin.Kind{zipkin.KindServer, zipkin.KindClient, zipkin.KindUnspecified}[rng.IntN(3)],
				Tags: map[string]string{"http.status_code": codes[rng.IntN(len(codes))],
					"region": []string{"eu", "us", "ap"}[rng.IntN(3)]}}
			if j > 1 {
				p := zipkin.SpanID(1 + rng.IntN(j-1))
				s.ParentID = p
			} else {
				s.Kind = zipkin.KindServer
			}
			if rng.IntN(5) == 0 {
				s.Tags["error"] = "boom"
			}
			if rng.IntN(4) == 0 {
				s.Annotations = []zipkin.Annotation{{Timestamp: s.Timestamp + 500, Value: "retry"}}
			}
			if s.Kind == zipkin.KindClient && rng.IntN(2) == 0 {
				s.RemoteEndpoint = &zipkin.Endpoint{ServiceName: services[rng.IntN(len(services))]}
			}
			out[i] = append(out[i], s)
		}
	}
	return out
}

// genQuery makes a random TraceQL search query over genTraces' vocabulary.
func genQuery(rng *rand.Rand) string {
	pick := func(s ...string) string { return s[rng.IntN(len(s))] }
	cond := func() string {
		switch rng.IntN(11) {
		case 9:
			return fmt.Sprintf(`span.region = %q && resource.service.name = %q`, pick("eu", "us"), pick("cart", "db"))
		case 10:
			return fmt.Sprintf(`%s = %q`, pick(".region", "span.region", "resource.region"), pick("eu", "us", "nowhere"))
		case 0:
			return fmt.Sprintf(`resource.service.name = %q`, pick("frontend", "cart", "payments", "db", "queue", "nobody"))
		case 1:
			return fmt.Sprintf(`name %s %q`, pick("=", "!="), pick("get /", "charge", "select", "publish"))
		case 2:
			return fmt.Sprintf(`status %s %s`, pick("=", "!="), pick("error", "unset", "ok"))
		case 3:
			return fmt.Sprintf(`kind = %s`, pick("server", "client", "unspecified"))
		case 4:
			return fmt.Sprintf(`duration %s %dms`, pick(">", "<", ">=", "<="), rng.IntN(200))
		case 5:
			return fmt.Sprintf(`span.http.status_code %s %q`, pick("=", "!=", "=~", ">="), pick("503", "5..", "200", "4.*"))
		case 6:
			return `event:name = "retry"`
		case 7:
			return fmt.Sprintf(`span.peer.service = %q`, pick("db", "queue", "cart"))
		default:
			return fmt.Sprintf(`traceDuration > %dms`, rng.IntN(250))
		}
	}
	filter := func() string {
		c := cond()
		for rng.IntN(3) == 0 {
			c += " " + pick("&&", "||") + " " + cond()
		}
		return "{ " + c + " }"
	}
	q := filter()
	switch rng.IntN(6) {
	case 0:
		q += " " + pick("&&", "||", ">", ">>", "<", "<<", "~", "!>", "!<", "&>", "&>>") + " " + filter()
	case 1:
		q += fmt.Sprintf(" | count() %s %d", pick(">", "=", "<"), rng.IntN(4))
	case 2:
		q += " | by(resource.service.name) | count() > 1"
	case 3:
		q += fmt.Sprintf(" | avg(duration) > %dms", rng.IntN(150))
	}
	return q
}

// TestTraceQLSearchEqualsBruteForce: for random queries over random
// traces stored through zipq, /api/search answers exactly the traces (and
// matched spans) a brute-force evaluation of every sent trace gives —
// whatever the index nominated — in Tempo's response shape.
func TestTraceQLSearchEqualsBruteForce(t *testing.T) {
	t.Parallel()
	f, base := serveQuickly(t)
	rng := rand.New(rand.NewPCG(7, 11))
	now := time.Now()
	traces := genTraces(rng, 60, now)
	total := 0
	for _, tr := range traces {
		postSpans(t, base, string(zipkin.EncodeJSON(tr)))
		total += len(tr)
	}
	testenv.StoredAtLeast(t, f.dsn, total, 60*time.Second)
	models := make([]*traceql.Trace, len(traces))
	for i, tr := range traces {
		m, err := ingest.TraceQLTrace(tr)
		testenv.Must(t, err)
		models[i] = m
	}
	window := fmt.Sprintf("&start=%d&end=%d", now.Add(-time.Hour).Unix(), now.Add(time.Minute).Unix())
	someMatch, noMatch := 0, 0
	defer func() {
		// Not vacuous: queries that find traces and queries that do not.
		if !t.Failed() && (someMatch < 30 || noMatch < 10) {
			t.Fatalf("%d queries matched traces, %d none: the generator no longer exercises the search", someMatch, noMatch)
		}
	}()
	for range 120 {
		q := genQuery(rng)
		c, err := traceql.Compile(q)
		if err != nil {
			t.Fatalf("generated %q: %v", q, err)
		}
		want := map[string][]string{}
		for _, m := range models {
			var ids []string
			for _, ss := range c.Run(m) {
				for _, s := range ss.Spans {
					ids = append(ids, s.ID)
				}
			}
			if len(ids) > 0 {
				slices.Sort(ids)
				want[m.ID[16:]] = slices.Compact(ids) // zipq names a 64-bit trace ID by 16 digits
			}
		}
		var got struct {
			Traces []struct {
				TraceID           string `json:"traceID"`
				RootServiceName   string `json:"rootServiceName"`
				StartTimeUnixNano string `json:"startTimeUnixNano"`
				DurationMs        *int64 `json:"durationMs"`
				SpanSets          []struct {
					Spans []struct {
						SpanID            string `json:"spanID"`
						StartTimeUnixNano string `json:"startTimeUnixNano"`
						DurationNanos     string `json:"durationNanos"`
					} `json:"spans"`
					Matched int `json:"matched"`
				} `json:"spanSets"`
			} `json:"traces"`
		}
		if code := getJSON(t, base+"/api/search?limit=1000&spss=1000&q="+url.QueryEscape(q)+window, &got); code != http.StatusOK {
			t.Fatalf("%s: %d", q, code)
		}
		if len(want) > 0 {
			someMatch++
		} else {
			noMatch++
		}
		gotIDs := map[string][]string{}
		for _, tr := range got.Traces {
			if tr.StartTimeUnixNano == "" || tr.DurationMs == nil || tr.RootServiceName == "" {
				t.Fatalf("%s: trace %s lacks Tempo's fields", q, tr.TraceID)
			}
			var ids []string
			for _, ss := range tr.SpanSets {
				if ss.Matched != len(ss.Spans) {
					t.Fatalf("%s: matched %d, %d spans with spss=1000", q, ss.Matched, len(ss.Spans))
				}
				for _, s := range ss.Spans {
					if s.StartTimeUnixNano == "" || s.DurationNanos == "" {
						t.Fatalf("%s: span %s lacks Tempo's fields", q, s.SpanID)
					}
					ids = append(ids, s.SpanID)
				}
			}
			slices.Sort(ids)
			gotIDs[tr.TraceID] = slices.Compact(ids)
		}
		if len(gotIDs) != len(want) {
			t.Fatalf("%s: %d traces, brute force %d (got %v, want %v)", q, len(gotIDs), len(want), slices.Sorted(maps.Keys(gotIDs)), slices.Sorted(maps.Keys(want)))
		}
		for id, spans := range want {
			if !slices.Equal(gotIDs[id], spans) {
				t.Fatalf("%s: trace %s matched spans %v, brute force %v", q, id, gotIDs[id], spans)
			}
		}
	}
}

// serveQuickly starts zipq serve storing batches every 50 ms, and returns
// its fixture and base URL.
func serveQuickly(t *testing.T) (fixture, string) {
	f := newFixture(t)
	p := startZipq(t, append(f.env, "COLLECTOR_BATCH_INTERVAL=50ms"), "serve")
	return f, "http://" + p.addr
}

// TestTempoAPIShapes: what Grafana's Tempo data source asks, answered in
// the shapes of Tempo's API documentation — the health check, build info,
// trace by ID as OTLP protobuf (v1, and v2 wrapped) and JSON, errors as
// 400 with the position, tag names and typed values.
func TestTempoAPIShapes(t *testing.T) {
	t.Parallel()
	f, base := serveQuickly(t)
	tr := genTraces(rand.New(rand.NewPCG(1, 2)), 1, time.Now())[0]
	postSpans(t, base, string(zipkin.EncodeJSON(tr)))
	testenv.StoredAtLeast(t, f.dsn, len(tr), 30*time.Second)
	get := func(path, accept string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		testenv.Must(t, err)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		testenv.Must(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		testenv.Must(t, err)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/api/echo", ""); code != 200 || body != "echo" {
		t.Fatalf("/api/echo: %d %q", code, body)
	}
	if code, body := get("/api/status/buildinfo", ""); code != 200 || !strings.Contains(body, `"version":"`+"2.1.0"+`"`) {
		t.Fatalf("buildinfo: %d %s", code, body)
	}
	id := tr[0].TraceID.String()
	code, body := get("/api/traces/"+id, "application/protobuf")
	if code != 200 {
		t.Fatalf("trace by id (protobuf): %d %s", code, body)
	}
	td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces([]byte(body))
	if err != nil || td.SpanCount() != len(tr) {
		t.Fatalf("trace by id (protobuf): %d spans, %v; want %d", td.SpanCount(), err, len(tr))
	}
	if code, body := get("/api/traces/"+id+"?start=1&end=2", ""); code != 200 || !strings.HasPrefix(body, `{"batches":[`) {
		t.Fatalf("trace by id v1 JSON (a time range never narrows it): %d %.80s", code, body)
	}
	if code, body := get("/api/v2/traces/"+id, ""); code != 200 || !strings.HasPrefix(body, `{"trace":{"resourceSpans":[`) {
		t.Fatalf("trace by id v2 JSON: %d %.80s", code, body)
	}
	if code, _ := get("/api/traces/00000000000000000000000000000fff", ""); code != 404 {
		t.Fatalf("unknown trace: %d, want 404", code)
	}
	for path, want := range map[string]string{
		"/api/search?q=" + url.QueryEscape(`{ .a = }`):              "column 8",
		"/api/search?q=" + url.QueryEscape(`{ status > ok }`):       "compares numbers or strings",
		"/api/search?q=" + url.QueryEscape(`{ parent.a = 1 }`):      "unsupported: the parent scope",
		"/api/search?q=" + url.QueryEscape(`{} | rate()`):           "unsupported: TraceQL metrics",
		"/api/search?q={}&limit=-1":                                 "limit",
		"/api/search?q={}&start=9&end=1":                            "after end",
		"/api/v2/search/tags?scope=nope":                            "scope",
		"/api/traces/xyz":                                           "traceId",
		"/api/v2/search/tag/" + url.PathEscape("span.") + "/values": "tag",
	} {
		if code, body := get(path, ""); code != http.StatusBadRequest || !strings.Contains(body, want) {
			t.Errorf("%s: %d %q, want 400 saying %q", path, code, body, want)
		}
	}
	// Index hints are used: a tag value no span has nominates no trace.
	for _, q := range []string{`{ span.region = "nowhere" }`, `{ name = "nowhere" && span.region = "eu" }`, `{ resource.service.name = "nobody" }`} {
		if code, body := get("/api/search?q="+url.QueryEscape(q), ""); code != 200 || !strings.Contains(body, `"inspectedTraces":0`) {
			t.Errorf("%s: %d %s, want no trace read", q, code, body)
		}
	}
	if code, body := get("/api/v2/search/tags?scope=span", ""); code != 200 || !strings.Contains(body, `{"scopes":[{"name":"span","tags":[`) || !strings.Contains(body, `"http.status_code"`) {
		t.Fatalf("tags v2: %d %s", code, body)
	}
	if code, body := get("/api/v2/search/tag/resource.service.name/values", ""); code != 200 ||
		!strings.Contains(body, `{"type":"string","value":"`+tr[0].LocalServiceName()+`"}`) {
		t.Fatalf("tag values v2: %d %s", code, body)
	}
	if code, body := get("/api/search/tag/service.name/values", ""); code != 200 || !strings.Contains(body, `"tagValues":["`) {
		t.Fatalf("tag values v1: %d %s", code, body)
	}
}

// TestTraceQLOnOTLPSpans: spans sent as OTLP keep their attributes' types
// and scopes for TraceQL, as in Tempo, whichever side translates them
// (the edge, or the collector with ZIPQ_OTLP_QUEUE_FORMAT=otlp): an int
// status code compares as a number, a resource attribute the zipkin
// translator does not know is still the resource's, a scope attribute the
// scope's, and the http.status_code the translation adds is not there.
func TestTraceQLOnOTLPSpans(t *testing.T) {
	t.Parallel()
	for i, format := range []string{"zipkin", "otlp"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			p, httpAddr, _ := otlpZipq(t, "ZIPQ_OTLP_QUEUE_FORMAT="+format, "COLLECTOR_BATCH_INTERVAL=50ms")
			base := "http://" + p.addr
			now := time.Now().UnixNano()
			body := fmt.Sprintf(`{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"payments"}},
				{"key":"team","value":{"stringValue":"billing"}},{"key":"replicas","value":{"intValue":"3"}}]},
				"scopeSpans":[{"scope":{"name":"otelhttp","attributes":[{"key":"sampled","value":{"boolValue":true}}]},
				"spans":[{"traceId":"00000000000000000000000000000a%02d","spanId":"0000000000000001","name":"charge","kind":2,
				"startTimeUnixNano":"%d","endTimeUnixNano":"%d","status":{"code":2},
				"attributes":[{"key":"http.response.status_code","value":{"intValue":"503"}},{"key":"ratio","value":{"doubleValue":0.25}}]}]}]}]}`,
				i, now-int64(time.Second), now)
			resp, err := http.Post("http://"+httpAddr+"/v1/traces", "application/json", strings.NewReader(body))
			testenv.Must(t, err)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("export: %d", resp.StatusCode)
			}
			id := fmt.Sprintf("00000000000000000000000000000a%02d", i)
			type answer struct {
				Traces []struct {
					TraceID string `json:"traceID"`
				} `json:"traces"`
			}
			search := func(q string) (got answer) {
				if code := getJSON(t, base+"/api/search?q="+url.QueryEscape(q), &got); code != http.StatusOK {
					t.Fatalf("%s: %d", q, code)
				}
				return got
			}
			testenv.Eventually(t, 30*time.Second, "the OTLP span searchable", func() bool { return len(search(`{ resource.service.name = "payments" }`).Traces) == 1 })
			// Read by ID, the trace is what search saw.
			resp, err = http.Get(base + "/api/v2/traces/" + id)
			testenv.Must(t, err)
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			testenv.Must(t, err)
			for _, want := range []string{`{"key":"http.response.status_code","value":{"intValue":"503"}}`, `{"key":"team","value":{"stringValue":"billing"}}`,
				`"scope":{"name":"otelhttp","attributes":[{"key":"sampled","value":{"boolValue":true}}]}`} {
				if !strings.Contains(string(b), want) {
					t.Errorf("trace by ID lacks %s: %s", want, b)
				}
			}
			for q, found := range map[string]bool{
				`{ span.http.response.status_code >= 500 }`:                true,
				`{ span.http.response.status_code = "503" }`:               false, // a number, not a string
				`{ span.http.status_code = 503 }`:                          false, // added by the translation
				`{ span.ratio < 0.5 && span.ratio > 0.2 }`:                 true,
				`{ resource.team = "billing" }`:                            true,
				`{ span.team = "billing" }`:                                false,
				`{ resource.replicas = 3 }`:                                true,
				`{ instrumentation.sampled = true }`:                       true,
				`{ instrumentation:name = "otelhttp" }`:                    true,
				`{ .sampled = true }`:                                      false, // scope attributes are not unscoped's
				`{ resource.service.name = "payments" && status = error }`: true,
			} {
				got := search(q)
				if (len(got.Traces) == 1 && strings.HasSuffix(id, got.Traces[0].TraceID)) != found {
					t.Errorf("%s: %+v, want found=%v", q, got.Traces, found)
				}
			}
		})
	}
}
