package ingest

import (
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/zipkin/zipkinv2"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/zipq/zipq/traceql"
	"github.com/zipq/zipq/zipkin"
)

// checkout is a Zipkin trace: frontend's server span calls payments,
// whose server span fails (a 503 tag and the error tag) after a retry
// annotation, and calls the database twice.
func checkout(t *testing.T) *traceql.Trace {
	t.Helper()
	ep := func(s string) *zipkin.Endpoint { return &zipkin.Endpoint{ServiceName: s} }
	id := zipkin.TraceID{Low: 0xabc}
	const ms = 1000
	spans := []zipkin.Span{
		{TraceID: id, ID: 1, Name: "get /checkout", Kind: zipkin.KindServer, Timestamp: 1_000_000, Duration: 50 * ms, LocalEndpoint: ep("frontend"),
			Tags: map[string]string{"http.method": "GET"}},
		{TraceID: id, ParentID: 1, ID: 2, Name: "post /charge", Kind: zipkin.KindClient, Timestamp: 1_001_000, Duration: 40 * ms,
			LocalEndpoint: ep("frontend"), RemoteEndpoint: ep("payments")},
		{TraceID: id, ParentID: 2, ID: 3, Name: "charge", Kind: zipkin.KindServer, Timestamp: 1_002_000, Duration: 38 * ms,
			LocalEndpoint: ep("payments"), Tags: map[string]string{"http.status_code": "503", "error": "card declined"},
			Annotations: []zipkin.Annotation{{Timestamp: 1_010_000, Value: "retry"}}},
		{TraceID: id, ParentID: 3, ID: 4, Name: "select", Kind: zipkin.KindClient, Timestamp: 1_003_000, Duration: 2 * ms,
			LocalEndpoint: ep("payments"), RemoteEndpoint: ep("postgres")},
		{TraceID: id, ParentID: 3, ID: 5, Name: "update", Kind: zipkin.KindClient, Timestamp: 1_006_000, Duration: 3 * ms,
			LocalEndpoint: ep("payments"), RemoteEndpoint: ep("postgres")},
	}
	tr, err := TraceQLTrace(spans)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// run is the matched spans' names, sorted, spansets joined by |.
func run(t *testing.T, tr *traceql.Trace, q string) string {
	t.Helper()
	c, err := traceql.Compile(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	var sets []string
	for _, ss := range c.Run(tr) {
		var n []string
		for _, s := range ss.Spans {
			n = append(n, s.Name)
		}
		slices.Sort(n)
		sets = append(sets, strings.Join(n, ","))
	}
	return strings.Join(sets, " | ")
}

// TestTraceQLOnZipkinSpans: the TraceQL model of Zipkin spans, and every
// operator on it.
func TestTraceQLOnZipkinSpans(t *testing.T) {
	t.Parallel()
	tr := checkout(t)
	for q, want := range map[string]string{
		`{ resource.service.name = "payments" }`: "charge,select,update",
		`{ .service.name = "frontend" }`:         "get /checkout,post /charge",
		// Zipkin tags stay strings, as in Tempo fed by the zipkin
		// receiver; the translator Tempo builds in keeps http.status_code
		// under its own name (later ones rename it).
		`{ span.http.status_code >= 500 }`:                             "",
		`{ span.http.status_code = "503" }`:                            "charge",
		`{ span.http.response.status_code = "503" }`:                   "",
		`{ .http.status_code =~ "5.." }`:                               "charge",
		`{ .http.status_code =~ "5" }`:                                 "", // anchored
		`{ status = error }`:                                           "charge",
		`{ status = unset && kind = client }`:                          "post /charge,select,update",
		`{ span.peer.service = "postgres" }`:                           "select,update",
		`{ event:name = "retry" }`:                                     "charge",
		`{ event:timeSinceStart > 7ms }`:                               "charge",
		`{ event:timeSinceStart > 9ms }`:                               "",
		`{ duration > 35ms && duration < 45ms }`:                       "charge,post /charge",
		`{ span:childCount = 2 }`:                                      "charge",
		`{ trace:rootService = "frontend" && traceDuration >= 50ms }`:  "charge,get /checkout,post /charge,select,update",
		`{ rootName = "get /checkout" && name = "select" }`:            "select",
		`{ .missing = nil && name = "select" }`:                        "select",
		`{ .missing != "x" }`:                                          "",
		`{ span.http.method != nil }`:                                  "get /checkout",
		`{ kind = server } > { kind = client }`:                        "post /charge,select,update",
		`{ kind = server } &> { kind = client }`:                       "charge,get /checkout,post /charge,select,update",
		`{ resource.service.name = "frontend" } >> { status = error }`: "charge",
		`{ status = error } << { }`:                                    "get /checkout,post /charge",
		`{ status = error } < { }`:                                     "post /charge",
		`{ name = "select" } ~ { }`:                                    "update",
		`{ name = "select" } !~ { kind = client }`:                     "post /charge,select",
		`{ } !< { resource.service.name = "payments" }`:                "select,update",
		`{ status = error } && { name = "select" }`:                    "charge,select",
		`{ status = error } && { name = "nope" }`:                      "",
		`{ status = error } || { name = "nope" }`:                      "charge",
		`{ kind = client } | count() = 3`:                              "post /charge,select,update",
		`{ kind = client } | count() > 3`:                              "",
		`{ } | avg(duration) > 26ms`:                                   "charge,get /checkout,post /charge,select,update",
		`{ } | by(resource.service.name) | count() > 2`:                "charge,select,update",
		`{ } | by(resource.service.name) | coalesce()`:                 "charge,get /checkout,post /charge,select,update",
		`{ kind = client } | by(span.peer.service)`:                    "post /charge | select,update",
		`{ duration * 2 > 70ms }`:                                      "charge,get /checkout,post /charge",
		`max(duration) > 45ms | { name = "select" }`:                   "select",
	} {
		if got := run(t, tr, q); got != want {
			t.Errorf("%s: %q, want %q", q, got, want)
		}
	}
}

// randomTrace is spans of one trace with what the translator reads:
// status, kind, scope, links, resource keys, the service-name source,
// endpoints with addresses (one IPv4-mapped) and ports, annotations carrying attributes, and values that fail it.
// (Left out: pairs of tags the translator maps to one key, like
// a tag beside an endpoint the translator maps to the same key, where
// which wins is its map's iteration order.)
func randomTrace(rng *rand.Rand) []zipkin.Span {
	pick := func(s ...string) string { return s[rng.IntN(len(s))] }
	var spans []zipkin.Span
	id := zipkin.TraceID{High: uint64(rng.IntN(2)), Low: 1 + rng.Uint64N(1<<40)}
	for j := 1; j <= 1+rng.IntN(6); j++ {
		s := zipkin.Span{TraceID: id, ID: zipkin.SpanID(j), ParentID: zipkin.SpanID(rng.IntN(j + 1)), Name: pick("a", "b", ""),
			Kind: zipkin.Kind(rng.IntN(5)), Timestamp: int64(rng.IntN(3)) * 1_700_000_000_000_000, Duration: int64(rng.IntN(5000)),
			Shared: rng.IntN(4) == 0, Debug: rng.IntN(4) == 0, Tags: map[string]string{}}
		if rng.IntN(3) > 0 {
			s.LocalEndpoint = &zipkin.Endpoint{ServiceName: pick("web", "db", ""), Port: int32(rng.IntN(3) * 30000)}
			switch rng.IntN(3) {
			case 0:
				s.LocalEndpoint.IPv4 = netip.MustParseAddr("10.0.0.7")
			case 1:
				s.LocalEndpoint.IPv6 = netip.MustParseAddr("::ffff:10.0.0.8")
			}
		}
		if rng.IntN(2) == 0 {
			s.RemoteEndpoint = &zipkin.Endpoint{ServiceName: pick("cache", ""), IPv6: netip.MustParseAddr("2001:db8::1"), Port: int32(rng.IntN(2) * 6379)}
		}
		for range rng.IntN(6) {
			k := pick("error", "otel.status_code", "otel.status_description", "span.kind", "otel.scope.name", "otel.scope.version",
				"otel.library.name", "otel.library.version", "http.status_code", "host.name", "k8s.pod.name", "service.version",
				"service.name", "faas.id", "process.pid", "telemetry.sdk.name", "otlp.service.name.source", "custom",
				"otlp.link.0", "otlp.link.1", "otlp.link.3", "otlp.link.01", "w3c.tracestate", "service.peer.name",
				"otel.zipkin.absentField.startTime", "network.local.address")
			v := pick("true", "ERROR", "Error", "STATUS_CODE_OK", "internal", "lib", "1.2", "503", "x", "host.name", "")
			if strings.HasPrefix(k, "otlp.link.") {
				v = pick(`0102030405060708090a0b0c0d0e0f10|0102030405060708||{"k":"v","n":2}|0`,
					`"0102030405060708090a0b0c0d0e0f10"|""|ts|{"a":{"b":1}}|x|{"f":1.5}|7`, "short|x", `01|02|||0`, `|||{}|-1`)
			}
			s.Tags[k] = v
		}
		for range rng.IntN(3) {
			s.Annotations = append(s.Annotations, zipkin.Annotation{Timestamp: 1_700_000_000_000_000 + int64(rng.IntN(100)),
				Value: pick("retry", `exception|{"exception.message":"boom","n":1.5,"ok":true,"z":null}|0`, "a|b", `x|{|0`, `x|{}|y`, `x|null|0`)})
		}
		spans = append(spans, s)
	}
	return spans
}

// TestTraceQLTraceAsTheTranslator: the TraceQL model built directly from
// Zipkin spans is the one built from the translator's OTLP, on random
// spans; both fail on the same ones.
func TestTraceQLTraceAsTheTranslator(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	failed := 0
	for range 3000 {
		spans := randomTrace(rng)
		direct, errDirect := TraceQLTrace(spans)
		td, errOTLP := receiverTraces(spans)
		if (errOTLP == nil) != (errDirect == nil) {
			t.Fatalf("%s: translator %v, direct %v", zipkin.EncodeJSON(spans), errOTLP, errDirect)
		}
		if errOTLP != nil {
			failed++
			continue
		}
		if via := TraceQLTraces(td); len(via) != 1 || !reflect.DeepEqual(via[0], direct) {
			got, _ := json.MarshalIndent(direct.Spans, "", " ")
			want, _ := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
			t.Fatalf("spans %s\ntranslator: %s\ndirect:     %s", zipkin.EncodeJSON(spans), want, got)
		}
	}
	if failed == 0 || failed > 2000 {
		t.Fatalf("%d of 3000 traces failed to translate: the generator should make some, not most", failed)
	}
}

// TestReceiverTracesAsFromJSON: the span models built directly give the
// receiver's translator exactly what it makes of the spans' JSON (the
// path the Collector's zipkin receiver takes).
func TestReceiverTracesAsFromJSON(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	for range 300 {
		spans := randomTrace(rng)
		viaJSON, errJSON := zipkinv2.NewJSONTracesUnmarshaler(false).UnmarshalTraces(zipkin.EncodeJSON(spans))
		direct, errDirect := receiverTraces(spans)
		if (errJSON == nil) != (errDirect == nil) {
			t.Fatalf("%s: JSON path %v, direct %v", zipkin.EncodeJSON(spans), errJSON, errDirect)
		}
		if errJSON != nil {
			continue
		}
		// As TraceQL's model (attributes as maps: the translator fills
		// them in map order, which differs run to run).
		if a, b := TraceQLTraces(viaJSON), TraceQLTraces(direct); !reflect.DeepEqual(a, b) || len(a) != 1 {
			aj, _ := (&ptrace.JSONMarshaler{}).MarshalTraces(viaJSON)
			bj, _ := (&ptrace.JSONMarshaler{}).MarshalTraces(direct)
			t.Fatalf("spans %s\nthrough JSON: %s\ndirect:       %s", zipkin.EncodeJSON(spans), aj, bj)
		}
	}
}
