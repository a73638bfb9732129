package ingest

import (
	"testing"

	"github.com/zipq/zipq/traceql"
	"github.com/zipq/zipq/zipkin"
)

// BenchmarkTraceQLTrace: a 10-span trace into TraceQL's model (ns/span:
// the per-span cost of a search that has to read traces), built directly
// and, as the same-run baseline, through the translator's OTLP.
func BenchmarkTraceQLTrace(b *testing.B) {
	ep := func(s string) *zipkin.Endpoint { return &zipkin.Endpoint{ServiceName: s} }
	var spans []zipkin.Span
	for i := 1; i <= 10; i++ {
		spans = append(spans, zipkin.Span{TraceID: zipkin.TraceID{Low: 9}, ID: zipkin.SpanID(i), ParentID: zipkin.SpanID(i - 1), Name: "op",
			Kind: zipkin.KindServer, Timestamp: 1_000_000, Duration: 1000, LocalEndpoint: ep("svc"), RemoteEndpoint: ep("other"),
			Tags: map[string]string{"http.method": "GET", "http.path": "/api/v1/items/7", "http.status_code": "200"}})
	}
	for _, c := range []struct {
		name  string
		model func([]zipkin.Span) (*traceql.Trace, error)
	}{
		{"direct", TraceQLTrace},
		{"translator", func(spans []zipkin.Span) (*traceql.Trace, error) {
			td, err := receiverTraces(spans)
			return TraceQLTraces(td)[0], err
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.model(spans); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(spans)), "ns/span")
		})
	}
}
