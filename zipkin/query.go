package zipkin

import (
	"errors"
	"math"
	"strings"
	"time"
)

// QueryRequest is a trace search (GET /api/v2/traces). A trace matches
// when one of its spans matches every criterion set; the zero value of a
// field means "any". Names are compared lower-cased, as stored.
type QueryRequest struct {
	ServiceName       string
	RemoteServiceName string
	SpanName          string
	// AnnotationQuery terms: "key" matches a tag key or an annotation
	// value, "key=value" matches a tag. All must match the same span.
	AnnotationQuery []string
	MinDuration     int64 // microseconds, 0 = any
	MaxDuration     int64 // microseconds, 0 = any
	// MinTraceDuration and MaxTraceDuration bound the whole trace's
	// duration (its first span's start to its last span's end, as
	// TraceQL's trace:duration) rather than one span's: zipq's extension,
	// which Jaeger users have long asked for. Microseconds, 0 = any.
	MinTraceDuration int64
	MaxTraceDuration int64
	EndTs            time.Time
	Lookback         time.Duration
	Limit            int
}

// ParseAnnotationQuery splits Zipkin's annotationQuery syntax,
// "error and http.method=GET", into terms. Whitespace around each term
// and around '=' is insignificant; an empty query has no terms.
func ParseAnnotationQuery(s string) ([]string, error) {
	var terms []string
	for _, part := range splitAnd(s) {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if k, v, ok := strings.Cut(part, "="); ok {
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if k == "" {
				return nil, errors.New("annotationQuery: a term has '=' but no key: " + part)
			}
			part = k + "=" + v
		}
		terms = append(terms, part)
	}
	return terms, nil
}

// splitAnd splits on the word "and" (any case) surrounded by whitespace.
func splitAnd(s string) []string {
	var parts []string
	fields := strings.Fields(s)
	var cur []string
	for _, f := range fields {
		if strings.EqualFold(f, "and") {
			parts = append(parts, strings.Join(cur, " "))
			cur = nil
			continue
		}
		cur = append(cur, f)
	}
	return append(parts, strings.Join(cur, " "))
}

// Sampled is Zipkin's collector sampling decision (CollectorSampler): it
// depends only on the trace ID's lower 64 bits, so every span of a trace is
// kept or dropped together by every collector; debug spans are always kept.
func Sampled(id TraceID, debug bool, rate float64) bool {
	if debug || rate >= 1 {
		return true
	}
	if rate <= 0 {
		return false
	}
	boundary := uint64(rate * math.MaxInt64)
	t := int64(id.Low)
	var abs uint64
	switch {
	case t == math.MinInt64:
		abs = math.MaxInt64
	case t < 0:
		abs = uint64(-t)
	default:
		abs = uint64(t)
	}
	return abs <= boundary
}

// Sample keeps, in place, the spans of the traces Sampled keeps at rate.
func Sample(spans []Span, rate float64) []Span {
	if rate >= 1 {
		return spans
	}
	kept := spans[:0]
	for _, sp := range spans {
		if Sampled(sp.TraceID, sp.Debug, rate) {
			kept = append(kept, sp)
		}
	}
	return kept
}

// TraceDuration is the time from the earliest start to the latest end of
// spans (µs), leaving out spans with no timestamp; 0 when none has one.
func TraceDuration(spans []Span) int64 {
	var first, last int64
	for i := range spans {
		start := spans[i].StartTime()
		if start == 0 {
			continue
		}
		if first == 0 || start < first {
			first = start
		}
		last = max(last, start+spans[i].Duration)
	}
	return last - first
}
