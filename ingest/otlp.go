package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/zipkin/zipkinv2"
	zipkinmodel "github.com/openzipkin/zipkin-go/model"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/zipq/zipq/zipkin"
)

// OTLP export requests (opentelemetry.proto.collector.trace.v1.
// ExportTraceServiceRequest) become Zipkin spans exactly as the
// OpenTelemetry Collector's Zipkin exporter delivers them: its own
// translator (pkg/translator/zipkin) makes zipkin-go span models, which
// the exporter serializes as Zipkin JSON v2. fromModel takes a model
// straight to a Span with the same result as that JSON read by DecodeJSON
// (the fuzzer checks it against that path) at a fraction of the cost.
// Decoding OTLP is pdata's, not ours.

// OTLPMessage is the fully qualified name of the message OTLP bodies
// hold; on the queue it is the proto parameter of the content type.
const OTLPMessage = "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest"

// Content types of OTLP messages on the span queue.
var (
	ContentTypeOTLPProto = mime.FormatMediaType("application/x-protobuf", map[string]string{"proto": OTLPMessage})
	ContentTypeOTLPJSON  = mime.FormatMediaType("application/json", map[string]string{"proto": OTLPMessage})
)

// OTLPFormat says how an OTLP request is encoded.
type OTLPFormat int

// The encodings of OTLP/HTTP.
const (
	OTLPProto OTLPFormat = iota
	OTLPJSON
)

// OTLPMediaType is the OTLP encoding a media type (no parameters) names:
// OTLP/HTTP's request types.
func OTLPMediaType(mediaType string) (OTLPFormat, bool) {
	switch mediaType {
	case "application/x-protobuf", "application/protobuf":
		return OTLPProto, true
	case "application/json":
		return OTLPJSON, true
	}
	return 0, false
}

// ContentType is the span-queue content type of a request encoded as f.
func (f OTLPFormat) ContentType() string {
	if f == OTLPJSON {
		return ContentTypeOTLPJSON
	}
	return ContentTypeOTLPProto
}

// OTLPContentType is a message content type's OTLP encoding, if it names
// an ExportTraceServiceRequest. It runs for every message the collector
// takes, so a type that cannot name one is turned away before parsing.
func OTLPContentType(contentType string) (OTLPFormat, bool) {
	if !strings.Contains(contentType, OTLPMessage) {
		return 0, false
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || params["proto"] != OTLPMessage {
		return 0, false
	}
	return OTLPMediaType(mt)
}

// DecodeOTLP decodes an ExportTraceServiceRequest into Zipkin spans.
// Spans the request cannot name (an all-zero trace or span ID) are left
// out and counted in rejected, for OTLP's partial success; a body that
// does not decode as a whole, or with an ID of the wrong length, is an
// error with a Reason.
func (l Limits) DecodeOTLP(body []byte, f OTLPFormat) (spans []zipkin.Span, rejected int, err error) {
	if n := otlpSpanCount(body, f); n > zipkin.MaxSpansPerMessage {
		return nil, 0, &zipkin.DecodeError{Reason: zipkin.ReasonTooLarge, Span: -1,
			Err: fmt.Errorf("%w: %d spans in one request, limit %d: export smaller batches", ErrTooLarge, n, zipkin.MaxSpansPerMessage)}
	}
	req := ptraceotlp.NewExportRequest()
	if f == OTLPJSON {
		err = req.UnmarshalJSON(body)
	} else {
		err = req.UnmarshalProto(body)
	}
	if err != nil {
		return nil, 0, &zipkin.DecodeError{Reason: zipkin.ReasonMalformedOTLP, Span: -1, Err: err}
	}
	td := req.Traces()
	total := td.SpanCount()
	dropInvalid(td)
	rejected = total - td.SpanCount()
	if td.SpanCount() == 0 {
		return nil, rejected, nil
	}
	if tags, size := expansion(td); tags > l.MaxExpandedTags || size > l.MaxExpandedBytes {
		return nil, 0, &zipkin.DecodeError{Reason: zipkin.ReasonTooLarge, Span: -1, Err: fmt.Errorf(
			"%w: translated, its %d spans would carry %d tags (%d bytes; limits %d tags, %d bytes): each resource and scope attribute is copied into every span of it",
			ErrTooLarge, td.SpanCount(), tags, size, l.MaxExpandedTags, l.MaxExpandedBytes)}
	}
	models, err := zipkinv2.FromTranslator{}.FromTraces(td)
	if err != nil {
		return nil, rejected, &zipkin.DecodeError{Reason: zipkin.ReasonMalformedOTLP, Span: -1, Err: fmt.Errorf("translate: %w", err)}
	}
	spans = make([]zipkin.Span, 0, len(models))
	for i, m := range models {
		sp, err := fromModel(m)
		if err != nil {
			return nil, rejected, &zipkin.DecodeError{Reason: zipkin.ReasonMalformedOTLP, Span: i, Err: err}
		}
		spans = append(spans, sp)
	}
	recordOrigins(td, spans)
	return spans, rejected, nil
}

// fromModel is what zipkin-go's JSON encoding of m, read by DecodeJSON,
// gives: times rounded to microseconds (a positive duration under one is
// one), names lower-cased, empty endpoints dropped, addresses kept only
// when of their field's family; a start before 1970-01-01T00:00:01Z or an
// end before the start is refused, as zipkin-go refuses to encode it.
func fromModel(m *zipkinmodel.SpanModel) (zipkin.Span, error) {
	s := zipkin.Span{TraceID: zipkin.TraceID{High: m.TraceID.High, Low: m.TraceID.Low}, ID: zipkin.SpanID(m.ID), Name: validUTF8(m.Name),
		Debug: m.Debug, Shared: m.Shared, Tags: m.Tags}
	for k, v := range m.Tags {
		if vk, vv := validUTF8(k), validUTF8(v); vk != k || vv != v {
			delete(s.Tags, k)
			s.Tags[vk] = vv
		}
	}
	if m.ParentID != nil {
		s.ParentID = zipkin.SpanID(*m.ParentID)
	}
	if m.Kind != zipkinmodel.Undetermined { // the zero Kind: no kind
		kind, ok := zipkin.ParseKind(string(m.Kind))
		if !ok {
			return s, fmt.Errorf("kind %q", m.Kind)
		}
		s.Kind = kind
	}
	if !m.Timestamp.IsZero() {
		if m.Timestamp.Unix() < 1 {
			return s, errors.New("start time before the epoch")
		}
		s.Timestamp = m.Timestamp.Round(time.Microsecond).UnixNano() / 1e3
	}
	switch d := m.Duration; {
	case d < 0:
		return s, errors.New("end time before start time")
	case d > 0 && d < time.Microsecond:
		s.Duration = 1
	case d > 0:
		s.Duration = int64((d + 500*time.Nanosecond) / time.Microsecond)
	}
	s.LocalEndpoint, s.RemoteEndpoint = endpointFromModel(m.LocalEndpoint), endpointFromModel(m.RemoteEndpoint)
	if len(m.Annotations) > 0 {
		s.Annotations = make([]zipkin.Annotation, len(m.Annotations))
		for i, a := range m.Annotations {
			ts := a.Timestamp.Round(time.Microsecond).UnixNano() / 1e3
			if ts <= 0 {
				return s, fmt.Errorf("event %d: time before the epoch", i)
			}
			s.Annotations[i] = zipkin.Annotation{Timestamp: ts, Value: validUTF8(a.Value)}
		}
	}
	s.Normalize()
	return s, nil
}

func endpointFromModel(e *zipkinmodel.Endpoint) *zipkin.Endpoint {
	if e.Empty() {
		return nil
	}
	ip := func(a net.IP, v4 bool) netip.Addr {
		if len(a) == 0 {
			return netip.Addr{}
		}
		return zipkin.ParseIP(a.String(), v4) // as its JSON text would be read
	}
	return &zipkin.Endpoint{ServiceName: validUTF8(e.ServiceName), IPv4: ip(e.IPv4, true), IPv6: ip(e.IPv6, false), Port: int32(e.Port)}
}

// dropInvalid removes the spans Zipkin cannot store, so that their
// neighbours are stored and they are counted in OTLP's partial success
// rather than failing the whole export: an all-zero trace or span ID (the
// translator refuses them), and times that are not a moment (fromModel
// refuses them): a start or end at or past 2^63 ns (negative once a
// time.Time), a start before 1970-01-01T00:00:01Z, an end before the start
// (an unset end, zero, is no duration: kept), an event before 500 ns
// (zero once rounded to Zipkin's microseconds) or at or past 2^63 ns.
func dropInvalid(td ptrace.Traces) {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			sss.At(j).Spans().RemoveIf(unstorable)
		}
	}
}

func unstorable(s ptrace.Span) bool {
	const never = uint64(1) << 63
	start, end := uint64(s.StartTimestamp()), uint64(s.EndTimestamp())
	if s.TraceID().IsEmpty() || s.SpanID().IsEmpty() || start >= never || end >= never ||
		start != 0 && start < 1e9 || end != 0 && end < start {
		return true
	}
	events := s.Events()
	for k := 0; k < events.Len(); k++ {
		if ts := uint64(events.At(k).Timestamp()); ts < 500 || ts >= never {
			return true
		}
	}
	return false
}

// validUTF8 replaces each byte of s that is not UTF-8 with U+FFFD, as
// encoding/json does when it writes a string.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteString("\uFFFD")
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// expansion is how many tags, and about how many bytes of tag keys and
// values, a request's spans carry once translated: each span's own
// attributes and events, plus its resource's and scope's attributes, which
// the translator copies into every span. Counted on the decoded request,
// before any of it is copied.
func expansion(td ptrace.Traces) (tags, size int) {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		resTags, resSize := attrSize(rs.Resource().Attributes())
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			scTags, scSize := attrSize(ss.Scope().Attributes())
			scSize += len(ss.Scope().Name()) + len(ss.Scope().Version())
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				n, b := attrSize(sp.Attributes())
				events := sp.Events()
				for e := 0; e < events.Len(); e++ {
					en, eb := attrSize(events.At(e).Attributes())
					n, b = n+1+en, b+len(events.At(e).Name())+eb
				}
				tags += resTags + scTags + n
				size += resSize + scSize + b
			}
		}
	}
	return tags, size
}

// attrSize counts attributes and the bytes of their keys and values (a
// nested map or list by its contents; a number or bool as 8 bytes).
func attrSize(m pcommon.Map) (n, size int) {
	m.Range(func(k string, v pcommon.Value) bool {
		n++
		size += len(k) + valueSize(v)
		return true
	})
	return n, size
}

func valueSize(v pcommon.Value) int {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return len(v.Str())
	case pcommon.ValueTypeBytes:
		return v.Bytes().Len() * 4 / 3
	case pcommon.ValueTypeMap:
		_, size := attrSize(v.Map())
		return size
	case pcommon.ValueTypeSlice:
		size, s := 0, v.Slice()
		for i := 0; i < s.Len(); i++ {
			size += valueSize(s.At(i)) + 1
		}
		return size
	}
	return 8
}

// otlpSpanCount counts a request's spans before it is decoded (decoding
// costs hundreds of bytes per span, however empty): exactly for protobuf
// (resource_spans 1 → scope_spans 2 → spans 2), and for JSON as the
// number of "spanId" keys, an upper bound (links have one too). A
// malformed protobuf counts 0: pdata refuses it.
func otlpSpanCount(body []byte, f OTLPFormat) int {
	if f == OTLPJSON {
		return bytes.Count(body, []byte(`"spanId"`))
	}
	n := zipkin.ProtoFieldCount(body, 1, func(rs []byte) int {
		return zipkin.ProtoFieldCount(rs, 2, func(ss []byte) int { return zipkin.ProtoFieldCount(ss, 2, nil) })
	})
	return max(n, 0)
}
