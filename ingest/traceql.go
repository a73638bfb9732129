package ingest

import (
	"encoding/hex"
	"maps"
	"slices"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/zipq/zipq/traceql"
	"github.com/zipq/zipq/zipkin"
)

// TraceQLModel is what the Tempo API needs of OpenTelemetry's translation
// (query.TempoModel): stored Zipkin spans as TraceQL's model, and as OTLP.
type TraceQLModel struct{}

// Trace is TraceQLTrace.
func (TraceQLModel) Trace(spans []zipkin.Span) (*traceql.Trace, error) { return TraceQLTrace(spans) }

// OTLP encodes a trace's spans as OTLP TracesData, protobuf or JSON:
// TraceQL's model of them (TraceQLTrace), so that a trace read by ID
// shows what search sees — a span sent as Zipkin as the zipkin receiver
// gives it, a span sent as OTLP with its attributes' types and scopes.
func (TraceQLModel) OTLP(spans []zipkin.Span, protobuf bool) ([]byte, error) {
	t, err := TraceQLTrace(spans)
	if err != nil {
		return nil, err
	}
	td := otlpTraces(t)
	if protobuf {
		return (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	}
	return (&ptrace.JSONMarshaler{}).MarshalTraces(td)
}

// otlpTraces is TraceQLTraces reversed: consecutive spans with equal
// resources share a ResourceSpans, and with equal scopes a ScopeSpans
// (TestOTLPTracesReverseTheModel).
func otlpTraces(t *traceql.Trace) ptrace.Traces {
	td := ptrace.NewTraces()
	var rs ptrace.ResourceSpans
	var ss ptrace.ScopeSpans
	for i, s := range t.Spans {
		var prev *traceql.Span
		if i > 0 {
			prev = t.Spans[i-1]
		}
		newResource := prev == nil || !maps.Equal(prev.Resource, s.Resource)
		if newResource {
			rs = td.ResourceSpans().AppendEmpty()
			putAttrs(rs.Resource().Attributes(), s.Resource)
		}
		if newResource || prev.ScopeName != s.ScopeName || prev.ScopeVersion != s.ScopeVersion || !maps.Equal(prev.ScopeAttrs, s.ScopeAttrs) {
			ss = rs.ScopeSpans().AppendEmpty()
			ss.Scope().SetName(s.ScopeName)
			ss.Scope().SetVersion(s.ScopeVersion)
			putAttrs(ss.Scope().Attributes(), s.ScopeAttrs)
		}
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(pcommon.TraceID(fromHex[[16]byte](t.ID)))
		sp.SetSpanID(pcommon.SpanID(fromHex[[8]byte](s.ID)))
		if s.ParentID != "" {
			sp.SetParentSpanID(pcommon.SpanID(fromHex[[8]byte](s.ParentID)))
		}
		sp.TraceState().FromRaw(s.TraceState)
		sp.SetName(s.Name)
		sp.SetKind(kinds[s.Kind])
		sp.Status().SetCode(statuses[s.Status])
		sp.Status().SetMessage(s.StatusMessage)
		sp.SetStartTimestamp(pcommon.Timestamp(s.Start))
		sp.SetEndTimestamp(pcommon.Timestamp(s.End))
		putAttrs(sp.Attributes(), s.Attrs)
		for _, e := range s.Events {
			ev := sp.Events().AppendEmpty()
			ev.SetName(e.Name)
			ev.SetTimestamp(pcommon.Timestamp(e.Time))
			putAttrs(ev.Attributes(), e.Attrs)
		}
		for _, l := range s.Links {
			ln := sp.Links().AppendEmpty()
			ln.SetTraceID(pcommon.TraceID(fromHex[[16]byte](l.TraceID)))
			ln.SetSpanID(pcommon.SpanID(fromHex[[8]byte](l.SpanID)))
			ln.TraceState().FromRaw(l.TraceState)
			putAttrs(ln.Attributes(), l.Attrs)
		}
	}
	return td
}

var (
	kinds = map[string]ptrace.SpanKind{"internal": ptrace.SpanKindInternal, "server": ptrace.SpanKindServer,
		"client": ptrace.SpanKindClient, "producer": ptrace.SpanKindProducer, "consumer": ptrace.SpanKindConsumer}
	statuses = map[string]ptrace.StatusCode{"ok": ptrace.StatusCodeOk, "error": ptrace.StatusCodeError}
)

// fromHex is an ID the model wrote in hex (hexID, spanHex); the model
// only holds IDs it wrote, of the right length.
func fromHex[T [16]byte | [8]byte](s string) (id T) {
	b, _ := hex.DecodeString(s)
	switch id := any(&id).(type) {
	case *[16]byte:
		copy(id[:], b)
	case *[8]byte:
		copy(id[:], b)
	}
	return id
}

func putAttrs(dst pcommon.Map, m map[string]traceql.Value) {
	dst.EnsureCapacity(len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		switch v := m[k].Native().(type) {
		case int64:
			dst.PutInt(k, v)
		case float64:
			dst.PutDouble(k, v)
		case bool:
			dst.PutBool(k, v)
		default:
			dst.PutStr(k, m[k].String())
		}
	}
}
