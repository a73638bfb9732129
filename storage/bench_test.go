package storage_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/zipq/zipq/storage"
	"github.com/zipq/zipq/zipkin"
)

// benchSpans makes realistic spans: multi-service traces, six tags, some
// annotations and errors.
func benchSpans(n int, seed uint64) []zipkin.Span {
	now := time.Now().UnixMicro()
	out := make([]zipkin.Span, n)
	services := []string{"frontend", "checkout", "payments", "inventory", "users"}
	for i := range out {
		id := seed*uint64(n) + uint64(i) + 1
		s := zipkin.Span{
			TraceID: zipkin.TraceID{High: 0x5af7183fb1d4cf5f, Low: id / 8}, ID: zipkin.SpanID(id), ParentID: zipkin.SpanID(id - id%8),
			Kind: zipkin.KindServer, Name: "get /api/v1/items", Timestamp: now + int64(i), Duration: int64(100 + i%5000),
			LocalEndpoint:  &zipkin.Endpoint{ServiceName: services[i%5], Port: 8080},
			RemoteEndpoint: &zipkin.Endpoint{ServiceName: services[(i+1)%5]},
			Tags: map[string]string{"http.method": "GET", "http.path": "/api/v1/items", "http.status_code": "200",
				"component": "net/http", "peer.hostname": "10.0.0.12", "instance": fmt.Sprint(i % 7)},
		}
		if i%4 == 0 {
			s.Annotations = []zipkin.Annotation{{Timestamp: now + int64(i) + 5, Value: "wire.send"}}
		}
		if i%20 == 0 {
			s.Tags["error"] = "timeout"
		}
		if s.ParentID == s.ID {
			s.ParentID = 0
		}
		out[i] = s
	}
	return out
}

// BenchmarkWrite compares the idempotent path (COPY to a stage, INSERT ...
// ON CONFLICT DO NOTHING, name tables) with a raw COPY into spans, on the
// same spans, schema and indexes. Each op writes one 5,000-span batch.
func BenchmarkWrite(b *testing.B) {
	for _, path := range []string{"raw-copy", "idempotent"} {
		b.Run(path, func(b *testing.B) {
			st, _ := openStore(b, storage.Config{})
			const batch = 5000
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				spans := benchSpans(batch, uint64(i))
				b.StartTimer()
				var err error
				if path == "raw-copy" {
					err = st.CopySpans(context.Background(), spans)
				} else {
					err = st.WriteSpans(context.Background(), spans)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "spans/s")
		})
	}
}
