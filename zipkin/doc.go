// Package zipkin is zipq's model of a Zipkin v2 span and its wire formats:
// JSON v2 and proto3 list decoding and encoding, body-kind detection, ID
// normalisation and the fixed list of reasons a body can be rejected for.
//
// It is a leaf: it imports nothing from zipq, so the collector, the store and
// the HTTP API all agree on one definition of a span.
//
// Decoding is strict where zipkin-go's model is lenient: an ID that is not
// hex, a number where a string belongs, or a span without traceId/id is a
// rejection with a Reason, never a half-decoded span. Normalisation follows
// the Zipkin server (zipkin2.Span.Builder): names and service names are
// lower-cased, zero timestamps and durations mean "absent", annotations are
// sorted and de-duplicated.
package zipkin
