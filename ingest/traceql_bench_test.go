package ingest

import (
	"testing"

	"github.com/zipq/zipq/zipkin"
)

// BenchmarkTraceQLTrace: a 10-span trace into TraceQL's model through the
// zipkin receiver's translator (ns/span: the per-span cost of a search
// that has to read traces).
func BenchmarkTraceQLTrace(b *testing.B) {
	ep := func(s string) *zipkin.Endpoint { return &zipkin.Endpoint{ServiceName: s} }
	var spans []zipkin.Span
	for i := 1; i <= 10; i++ {
		spans = append(spans, zipkin.Span{TraceID: zipkin.TraceID{Low: 9}, ID: zipkin.SpanID(i), ParentID: zipkin.SpanID(i - 1), Name: "op",
			Kind: zipkin.KindServer, Timestamp: 1_000_000, Duration: 1000, LocalEndpoint: ep("svc"), RemoteEndpoint: ep("other"),
			Tags: map[string]string{"http.method": "GET", "http.path": "/api/v1/items/7", "http.status_code": "200"}})
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := TraceQLTrace(spans); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(spans)), "ns/span")
}
