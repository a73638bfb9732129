package zipkin

import (
	"errors"
	"fmt"
	"mime"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/zipkin/zipkinv2"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// OTLP export requests (opentelemetry.proto.collector.trace.v1.
// ExportTraceServiceRequest) become Zipkin spans exactly as the
// OpenTelemetry Collector's Zipkin exporter delivers them: its own
// translator (pkg/translator/zipkin) renders them as Zipkin JSON v2, which
// DecodeJSON reads like any client's. Decoding OTLP is pdata's, not ours.

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

// OTLPContentType is a message content type's OTLP encoding, if it names
// an ExportTraceServiceRequest.
func OTLPContentType(contentType string) (OTLPFormat, bool) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || params["proto"] != OTLPMessage {
		return 0, false
	}
	switch mt {
	case "application/x-protobuf", "application/protobuf":
		return OTLPProto, true
	case "application/json":
		return OTLPJSON, true
	}
	return 0, false
}

// DecodeOTLP decodes an ExportTraceServiceRequest into Zipkin spans.
// Spans the request cannot name (an all-zero trace or span ID) are left
// out and counted in rejected, for OTLP's partial success; a body that
// does not decode as a whole, or with an ID of the wrong length, is an
// error with a Reason.
func DecodeOTLP(body []byte, f OTLPFormat) (spans []Span, rejected int, err error) {
	req := ptraceotlp.NewExportRequest()
	if f == OTLPJSON {
		err = req.UnmarshalJSON(body)
	} else {
		err = req.UnmarshalProto(body)
	}
	if err != nil {
		return nil, 0, &DecodeError{Reason: ReasonMalformedOTLP, Span: -1, Err: err}
	}
	td := req.Traces()
	total := td.SpanCount()
	dropInvalid(td)
	rejected = total - td.SpanCount()
	if td.SpanCount() == 0 {
		return nil, rejected, nil
	}
	js, err := otlpToZipkin.MarshalTraces(td)
	if err != nil {
		return nil, rejected, &DecodeError{Reason: ReasonMalformedOTLP, Span: -1, Err: fmt.Errorf("translate: %w", err)}
	}
	spans, err = DecodeJSON(js)
	if err != nil {
		var de *DecodeError
		if errors.As(err, &de) {
			// What the translator gives that a Zipkin span cannot be.
			return nil, rejected, &DecodeError{Reason: ReasonMalformedOTLP, Span: de.Span, Err: err}
		}
		return nil, rejected, err
	}
	return spans, rejected, nil
}

var otlpToZipkin = zipkinv2.NewJSONTracesMarshaler()

// dropInvalid removes the spans whose trace or span ID is all zeros (the
// translator refuses them, and Zipkin cannot store them).
func dropInvalid(td ptrace.Traces) {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			sss.At(j).Spans().RemoveIf(func(s ptrace.Span) bool { return s.TraceID().IsEmpty() || s.SpanID().IsEmpty() })
		}
	}
}

// DecodeMessage decodes a span queue message by its content type: an OTLP
// ExportTraceServiceRequest when the type names one, else a Zipkin span
// list detected from the body (the content type of Zipkin clients is not
// reliable). Spans OTLP could not name are counted in rejected.
func DecodeMessage(body []byte, contentType string) (spans []Span, rejected int, err error) {
	if f, ok := OTLPContentType(contentType); ok {
		return DecodeOTLP(body, f)
	}
	spans, _, err = Decode(body)
	return spans, 0, err
}
