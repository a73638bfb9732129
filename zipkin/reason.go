package zipkin

import (
	"errors"
	"fmt"
)

// Reason is why a body was rejected. The list is fixed: it becomes a metric
// label and the x-zipq-reason header on parked messages, and replay filters
// on it.
type Reason string

// The rejection reasons.
const (
	ReasonEmpty           Reason = "empty"              // zero-length body
	ReasonTooLarge        Reason = "too_large"          // over the configured size limit
	ReasonBadEncoding     Reason = "bad_encoding"       // a content encoding that is not gzip, or gzip that does not inflate
	ReasonUnknownFormat   Reason = "unknown_format"     // neither a JSON list nor proto3
	ReasonUnsupported     Reason = "unsupported_format" // Thrift or JSON v1: recognised, not accepted
	ReasonMalformedJSON   Reason = "malformed_json"     // JSON syntax error
	ReasonWrongType       Reason = "wrong_type"         // a JSON value of the wrong type
	ReasonMalformedProto  Reason = "malformed_proto"    // proto3 that does not parse as ListOfSpans
	ReasonMalformedOTLP   Reason = "malformed_otlp"     // an OTLP ExportTraceServiceRequest that does not parse or translate
	ReasonMissingTraceID  Reason = "missing_trace_id"
	ReasonInvalidTraceID  Reason = "invalid_trace_id"
	ReasonMissingSpanID   Reason = "missing_span_id"
	ReasonInvalidSpanID   Reason = "invalid_span_id" // id or parentId
	ReasonInvalidField    Reason = "invalid_field"   // e.g. negative timestamp, unknown kind
	ReasonDeliveryLimit   Reason = "delivery_limit"  // set by the broker's dead-lettering, not by zipq
	ReasonUnknownRejected Reason = "unknown"
)

// Reasons lists every reason zipq itself assigns, for metrics pre-registration
// and validation of replay filters.
var Reasons = []Reason{
	ReasonEmpty, ReasonTooLarge, ReasonUnknownFormat, ReasonUnsupported,
	ReasonMalformedJSON, ReasonWrongType, ReasonMalformedProto, ReasonMalformedOTLP,
	ReasonMissingTraceID, ReasonInvalidTraceID, ReasonMissingSpanID,
	ReasonInvalidSpanID, ReasonInvalidField,
}

// DecodeError is a rejected body: the reason, which span (or -1 for the
// body as a whole) and the detail.
type DecodeError struct {
	Reason Reason
	Span   int
	Err    error
}

func (e *DecodeError) Error() string {
	if e.Span >= 0 {
		return fmt.Sprintf("%s: span %d: %v", e.Reason, e.Span, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Reason, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// ReasonOf extracts the rejection reason from err, or ReasonUnknownRejected.
func ReasonOf(err error) Reason {
	var de *DecodeError
	if errors.As(err, &de) {
		return de.Reason
	}
	return ReasonUnknownRejected
}

func reject(r Reason, span int, format string, args ...any) *DecodeError {
	return &DecodeError{Reason: r, Span: span, Err: fmt.Errorf(format, args...)}
}
