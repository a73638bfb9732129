package spanmetrics

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/zipq/zipq/zipkin"
)

// BenchmarkSpansCounted is the cost the series add to each stored batch
// (1,000 spans over ops distinct operations), and the memory they hold
// once every operation was seen: bounded by MaxSeries however many
// operations there are.
func BenchmarkSpansCounted(b *testing.B) {
	for _, ops := range []int{100, 100_000} {
		b.Run(fmt.Sprintf("ops=%d", ops), func(b *testing.B) {
			spans := make([]*zipkin.Span, 1000)
			batches := make([][]*zipkin.Span, ops/len(spans)+1)
			for i := range batches {
				batches[i] = make([]*zipkin.Span, len(spans))
				for j := range spans {
					op := (i*len(spans) + j) % ops
					batches[i][j] = &zipkin.Span{Name: fmt.Sprintf("op %d", op), Kind: zipkin.KindServer, Duration: int64(op % 20_000_000),
						LocalEndpoint: &zipkin.Endpoint{ServiceName: fmt.Sprintf("svc%d", op%50)}}
				}
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			m := New(DefaultConfig())
			for _, batch := range batches { // every operation seen
				m.SpansCounted("t", batch)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ResetTimer()
			for i := range b.N {
				m.SpansCounted("t", batches[i%len(batches)])
			}
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB-held")
			b.ReportMetric(float64(len(m.byTenant["t"].spans)), "series")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(spans)), "ns/span")
		})
	}
}
