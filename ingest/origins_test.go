package ingest

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/zipq/zipq/traceql"
	"github.com/zipq/zipq/zipkin"
)

// randomOTLP is one trace as an OTLP exporter sends it, within what
// Zipkin's form keeps (README, "Grafana and TraceQL": lower-case names,
// microsecond times, events in time order, a status message only with a
// status, no attribute
// given twice at different levels, none of the network attributes the
// translator moves into endpoints): resources with and without a
// service name, typed resource attributes (some the zipkin translator
// knows as resource keys, some it does not), scopes with and without a
// name and with attributes, typed span attributes (old and new HTTP
// status codes among them), events with attributes.
func randomOTLP(rng *rand.Rand) ptrace.Traces {
	td := ptrace.NewTraces()
	tid := pcommon.TraceID{15: 1 + byte(rng.IntN(200))}
	put := func(m pcommon.Map, k string) {
		switch rng.IntN(5) {
		case 0:
			m.PutInt(k, rng.Int64N(1000)-500)
		case 1:
			m.PutDouble(k, float64(rng.IntN(400))/8)
		case 2:
			m.PutBool(k, rng.IntN(2) == 0)
		case 3:
			m.PutEmptySlice(k).AppendEmpty().SetInt(7)
		default:
			m.PutStr(k, fmt.Sprint("v", rng.IntN(3)))
		}
	}
	spanID := byte(0)
	for r := range 1 + rng.IntN(3) {
		rs := td.ResourceSpans().AppendEmpty()
		if rng.IntN(4) > 0 {
			rs.Resource().Attributes().PutStr("service.name", fmt.Sprint("svc", r%2))
		}
		for _, k := range []string{"host.name", "process.pid", "team", "deployment.environment", "cost"} {
			if rng.IntN(2) == 0 {
				put(rs.Resource().Attributes(), k)
			}
		}
		for range 1 + rng.IntN(2) {
			ss := rs.ScopeSpans().AppendEmpty()
			if rng.IntN(3) > 0 {
				ss.Scope().SetName(fmt.Sprint("lib", rng.IntN(2)))
				ss.Scope().SetVersion("1.2")
			}
			if rng.IntN(2) == 0 {
				put(ss.Scope().Attributes(), "scope.attr")
			}
			for range 1 + rng.IntN(3) {
				spanID++
				s := ss.Spans().AppendEmpty()
				s.SetTraceID(tid)
				s.SetSpanID(pcommon.SpanID{7: spanID})
				if p := rng.IntN(int(spanID)); p > 0 {
					s.SetParentSpanID(pcommon.SpanID{7: byte(p)})
				}
				s.SetName(fmt.Sprint("op", rng.IntN(3)))
				s.SetKind(ptrace.SpanKind(rng.IntN(6)))
				start := time.UnixMicro(1_700_000_000_000_000 + rng.Int64N(1e6))
				s.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
				s.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(rng.IntN(5000)) * time.Microsecond)))
				if c := ptrace.StatusCode(rng.IntN(3)); c != ptrace.StatusCodeUnset {
					s.Status().SetCode(c)
					if rng.IntN(2) == 0 {
						s.Status().SetMessage("boom")
					}
				}
				for _, k := range []string{"http.response.status_code", "http.status_code", "http.request.method", "retries", "ratio", "cached", "host.name", "custom", "otel.scope.name"} {
					if rng.IntN(3) == 0 && (k != "host.name" || rs.Resource().Attributes().Len() == 0) {
						put(s.Attributes(), k)
					}
				}
				for e := range rng.IntN(3) {
					ev := s.Events().AppendEmpty()
					ev.SetName(fmt.Sprint("ev", rng.IntN(2)))
					ev.SetTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(e*100+rng.IntN(100)) * time.Microsecond)))
					if rng.IntN(2) == 0 {
						ev.Attributes().PutInt("n", rng.Int64N(9))
						ev.Attributes().PutStr("s", "x")
					}
				}
			}
		}
	}
	return td
}

// spanView is what TraceQL reads of a span, without its place in the
// trace (the two models order spans differently).
type spanView struct {
	ParentID, Name, Kind, Status, StatusMessage string
	Start, End                                  int64
	Attrs, Resource, ScopeAttrs                 map[string]traceql.Value
	ScopeName, ScopeVersion                     string
	Events                                      []traceql.Event
}

func views(t *traceql.Trace) map[string]spanView {
	out := map[string]spanView{}
	for _, s := range t.Spans {
		out[s.ID] = spanView{s.ParentID, s.Name, s.Kind, s.Status, s.StatusMessage, s.Start, s.End,
			s.Attrs, s.Resource, s.ScopeAttrs, s.ScopeName, s.ScopeVersion, s.Events}
	}
	return out
}

// TestOTLPSpansKeepTheirTypesAndScopes: a trace sent as OTLP, decoded,
// stored (its spans' canonical encoding and back) and read as TraceQL's
// model is what TraceQL reads of the OTLP itself — Tempo's view: typed
// attributes, resource and scope attributes where they were sent, no
// attribute the translation made up.
func TestOTLPSpansKeepTheirTypesAndScopes(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 8))
	typed := 0
	for range 500 {
		td := randomOTLP(rng)
		body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		if err != nil {
			t.Fatal(err)
		}
		spans, rejected, err := DefaultLimits().DecodeOTLP(body, OTLPProto)
		if err != nil || rejected != 0 {
			t.Fatalf("decode: %v (%d rejected)", err, rejected)
		}
		for i := range spans {
			b, err := spans[i].MarshalCanonical(nil)
			if err == nil {
				err = zipkin.UnmarshalCanonical(b, &spans[i])
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		got, err := TraceQLTrace(spans)
		if err != nil {
			t.Fatal(err)
		}
		want := TraceQLTraces(td)[0]
		if g, w := views(got), views(want); !reflect.DeepEqual(g, w) {
			js, _ := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
			for id := range w {
				if !reflect.DeepEqual(g[id], w[id]) {
					t.Fatalf("OTLP %s\nspan %s:\n got %+v\nwant %+v", js, id, g[id], w[id])
				}
			}
			t.Fatalf("OTLP %s: spans %v, want %v", js, g, w)
		}
		for _, s := range want.Spans {
			if v, ok := s.Attrs["retries"]; ok && v.Type() == traceql.TypeInt {
				typed++
			}
		}
	}
	if typed == 0 {
		t.Fatal("no typed attribute compared")
	}
}

// TestOTLPTracesReverseTheModel: the OTLP a trace is answered with reads
// back, through TraceQLTraces, as the model it was made from — for
// Zipkin spans and for spans from OTLP.
func TestOTLPTracesReverseTheModel(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(9, 10))
	for i := range 600 {
		var spans []zipkin.Span
		if i%2 == 0 {
			spans = randomTrace(rng)
		} else {
			body, err := ptraceotlp.NewExportRequestFromTraces(randomOTLP(rng)).MarshalProto()
			if err != nil {
				t.Fatal(err)
			}
			if spans, _, err = DefaultLimits().DecodeOTLP(body, OTLPProto); err != nil {
				t.Fatal(err)
			}
		}
		model, err := TraceQLTrace(spans)
		if err != nil {
			continue // the translator refuses it too (TestTraceQLTraceAsTheTranslator)
		}
		if back := TraceQLTraces(otlpTraces(model)); len(back) != 1 || !reflect.DeepEqual(back[0], model) {
			js, _ := (&ptrace.JSONMarshaler{}).MarshalTraces(otlpTraces(model))
			t.Fatalf("spans %s\nOTLP %s", zipkin.EncodeJSON(spans), js)
		}
	}
}

// A span from OTLP stored before the translator's pin carries its scope
// in otel.scope.* with no origin recorded: TraceQL still reads it as the
// scope, not as span attributes.
func TestOTLPScopeStoredBeforeThePin(t *testing.T) {
	t.Parallel()
	s := zipkin.Span{TraceID: zipkin.TraceID{Low: 1}, ID: 2, Name: "op", FromOTLP: true, Timestamp: 1_700_000_000_000_000, Duration: 5,
		LocalEndpoint: &zipkin.Endpoint{ServiceName: "svc"}, Tags: map[string]string{"otel.scope.name": "lib", "otel.scope.version": "1.2", "k": "v"}}
	tr, err := TraceQLTrace([]zipkin.Span{s})
	if err != nil {
		t.Fatal(err)
	}
	sp := tr.Spans[0]
	_, attr := sp.Attrs["otel.scope.name"]
	if _, k := sp.Attrs["k"]; sp.ScopeName != "lib" || sp.ScopeVersion != "1.2" || attr || !k {
		t.Fatalf("scope %q %q, attributes %v: want scope lib 1.2 and only k", sp.ScopeName, sp.ScopeVersion, sp.Attrs)
	}
	// Stored since: the tag has an origin, so it is the attribute it was.
	s.SetOrigins([]zipkin.TagOrigin{{Key: "otel.scope.name", From: zipkin.FromSpan, Type: zipkin.TypeString},
		{Key: "otel.scope.version", From: zipkin.FromSpan, Type: zipkin.TypeString}})
	if tr, err = TraceQLTrace([]zipkin.Span{s}); err != nil {
		t.Fatal(err)
	}
	if _, attr := tr.Spans[0].Attrs["otel.scope.name"]; tr.Spans[0].ScopeName != "" || !attr {
		t.Fatalf("scope %q, attributes %v: want no scope and the attribute", tr.Spans[0].ScopeName, tr.Spans[0].Attrs)
	}
}
