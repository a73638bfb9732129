package ingest

import (
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/zipkin/zipkinv2"
	zipkinmodel "github.com/openzipkin/zipkin-go/model"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/zipq/zipq/traceql"
	"github.com/zipq/zipq/zipkin"
)

// The oracles of TraceQLTrace: the zipkin receiver's translation itself,
// and TraceQL's reading of OTLP.

// TraceQLTraces is OTLP spans as TraceQL's traces — what Tempo reads of them, one per trace ID, in
// the order first seen. (Here, not in traceql: OpenTelemetry's packages
// stay behind ingest.)
func TraceQLTraces(td ptrace.Traces) []*traceql.Trace {
	var order []string
	byTrace := map[string][]*traceql.Span{}
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		rs := rss.At(i)
		res := attrs(rs.Resource().Attributes())
		sss := rs.ScopeSpans()
		for j := range sss.Len() {
			ss := sss.At(j)
			scope := ss.Scope()
			scopeAttrs := attrs(scope.Attributes())
			spans := ss.Spans()
			for k := range spans.Len() {
				s := spans.At(k)
				tid := hexID(s.TraceID())
				sp := &traceql.Span{
					ID: hexID(s.SpanID()), Name: s.Name(),
					Kind: kindName(s.Kind()), Status: statusName(s.Status().Code()), StatusMessage: s.Status().Message(),
					Start: int64(s.StartTimestamp()), End: int64(s.EndTimestamp()),
					Attrs: attrs(s.Attributes()), Resource: res,
					ScopeName: scope.Name(), ScopeVersion: scope.Version(), ScopeAttrs: scopeAttrs,
					TraceState: s.TraceState().AsRaw(),
				}
				if p := s.ParentSpanID(); !p.IsEmpty() {
					sp.ParentID = hexID(p)
				}
				evs := s.Events()
				for e := range evs.Len() {
					ev := evs.At(e)
					sp.Events = append(sp.Events, traceql.Event{Name: ev.Name(), Time: int64(ev.Timestamp()), Attrs: attrs(ev.Attributes())})
				}
				lns := s.Links()
				for l := range lns.Len() {
					ln := lns.At(l)
					sp.Links = append(sp.Links, traceql.Link{TraceID: hexID(ln.TraceID()), SpanID: hexID(ln.SpanID()),
						TraceState: ln.TraceState().AsRaw(), Attrs: attrs(ln.Attributes())})
				}
				if _, ok := byTrace[tid]; !ok {
					order = append(order, tid)
				}
				byTrace[tid] = append(byTrace[tid], sp)
			}
		}
	}
	out := make([]*traceql.Trace, 0, len(order))
	for _, id := range order {
		out = append(out, traceql.NewTrace(id, byTrace[id]))
	}
	return out
}

func hexID[T pcommon.TraceID | pcommon.SpanID](id T) string {
	switch id := any(id).(type) {
	case pcommon.TraceID:
		return hex.EncodeToString(id[:])
	case pcommon.SpanID:
		return hex.EncodeToString(id[:])
	}
	return ""
}

func attrs(m pcommon.Map) map[string]traceql.Value {
	if m.Len() == 0 {
		return nil
	}
	out := make(map[string]traceql.Value, m.Len())
	for k, v := range m.All() {
		switch v.Type() {
		case pcommon.ValueTypeStr:
			out[k] = traceql.Str(v.Str())
		case pcommon.ValueTypeInt:
			out[k] = traceql.Int(v.Int())
		case pcommon.ValueTypeDouble:
			out[k] = traceql.Float(v.Double())
		case pcommon.ValueTypeBool:
			out[k] = traceql.Bool(v.Bool())
		default: // arrays, maps, bytes: compared as their JSON text
			out[k] = traceql.Str(v.AsString())
		}
	}
	return out
}

func kindName(k ptrace.SpanKind) string {
	switch k {
	case ptrace.SpanKindInternal:
		return "internal"
	case ptrace.SpanKindServer:
		return "server"
	case ptrace.SpanKindClient:
		return "client"
	case ptrace.SpanKindProducer:
		return "producer"
	case ptrace.SpanKindConsumer:
		return "consumer"
	}
	return "unspecified"
}

func statusName(c ptrace.StatusCode) string {
	return strings.ToLower(strings.TrimPrefix(c.String(), "STATUS_CODE_"))
}

// receiverTraces is what the Collector's zipkin receiver makes of spans
// posted as JSON: its JSON decoding gives zipkin-go's span models, which
// its translator turns into OTLP. The models are built here directly, as
// that decoding would give them (microsecond times, absent endpoints nil),
// which skips encoding and parsing JSON (TestReceiverTracesAsFromJSON).
func receiverTraces(spans []zipkin.Span) (ptrace.Traces, error) {
	models := make([]*zipkinmodel.SpanModel, len(spans))
	for i := range spans {
		models[i] = toModel(&spans[i])
	}
	td, err := zipkinv2.ToTranslator{}.ToTraces(models)
	if err != nil {
		return td, fmt.Errorf("translate zipkin spans: %w", err)
	}
	return td, nil
}

// toModel is s as zipkin-go's JSON decoding of its JSON gives it.
func toModel(s *zipkin.Span) *zipkinmodel.SpanModel {
	m := &zipkinmodel.SpanModel{
		SpanContext: zipkinmodel.SpanContext{TraceID: zipkinmodel.TraceID{High: s.TraceID.High, Low: s.TraceID.Low},
			ID: zipkinmodel.ID(s.ID), Debug: s.Debug},
		Name: s.Name, Kind: zipkinmodel.Kind(s.Kind.String()), Duration: time.Duration(s.Duration) * time.Microsecond,
		Shared: s.Shared, LocalEndpoint: toModelEndpoint(s.LocalEndpoint), RemoteEndpoint: toModelEndpoint(s.RemoteEndpoint),
		Tags: s.Tags,
	}
	if s.ParentID != 0 {
		p := zipkinmodel.ID(s.ParentID)
		m.ParentID = &p
	}
	if s.Timestamp > 0 {
		m.Timestamp = time.UnixMicro(s.Timestamp)
	}
	for _, a := range s.Annotations {
		m.Annotations = append(m.Annotations, zipkinmodel.Annotation{Timestamp: time.UnixMicro(a.Timestamp), Value: a.Value})
	}
	return m
}

func toModelEndpoint(e *zipkin.Endpoint) *zipkinmodel.Endpoint {
	if e == nil || e.ServiceName == "" && !e.IPv4.IsValid() && !e.IPv6.IsValid() && e.Port == 0 {
		return nil
	}
	m := &zipkinmodel.Endpoint{ServiceName: e.ServiceName, Port: uint16(e.Port)}
	if e.IPv4.IsValid() {
		m.IPv4 = net.IP(e.IPv4.AsSlice())
	}
	if e.IPv6.IsValid() {
		m.IPv6 = net.IP(e.IPv6.AsSlice())
	}
	return m
}
