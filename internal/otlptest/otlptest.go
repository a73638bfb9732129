// Package otlptest makes OTLP requests for the tests of ingest and of the
// zipq binary (a package of its own, so the many tests that use testenv do
// not link OpenTelemetry).
package otlptest

import (
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// Amplified is an OTLP/protobuf request of one resource with attrs
// attributes and spans spans: the translation copies every resource
// attribute into every span's tags, so it becomes spans × attrs tags from a
// body of a few bytes per attribute and span.
func Amplified(t testing.TB, spans, attrs int) []byte {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	for i := range attrs {
		rs.Resource().Attributes().PutStr("a"+strconv.Itoa(i), "v")
	}
	ss := rs.ScopeSpans().AppendEmpty()
	now := pcommon.NewTimestampFromTime(time.Unix(1_700_000_000, 0))
	for i := range spans {
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{1})
		sp.SetSpanID(pcommon.SpanID{byte(i >> 8), byte(i), 1})
		sp.SetStartTimestamp(now)
		sp.SetEndTimestamp(now + 1000)
	}
	pb, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return pb
}
