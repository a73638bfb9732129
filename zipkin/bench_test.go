package zipkin_test

import (
	"fmt"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/zipkin/zipkinv2"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/zipq/zipq/zipkin"
)

// benchBody is 100 realistic spans as JSON v2 (six tags, an annotation on
// a quarter, remote endpoints on clients): the collector's decode input.
func benchBody() []byte {
	spans := make([]zipkin.Span, 100)
	for i := range spans {
		s := zipkin.Span{TraceID: zipkin.TraceID{High: 0x5af7183fb1d4cf5f, Low: uint64(i/10 + 1)}, ID: zipkin.SpanID(i + 1),
			ParentID: zipkin.SpanID(i), Kind: zipkin.KindServer, Name: "get /api/v1/items", Timestamp: 1700000000000000 + int64(i),
			Duration: int64(100 + i), LocalEndpoint: &zipkin.Endpoint{ServiceName: "frontend", Port: 8080},
			Tags: map[string]string{"http.method": "GET", "http.path": "/api/v1/items/" + fmt.Sprint(i), "http.status_code": "200",
				"component": "net/http", "peer.hostname": "10.0.0.12", "instance": fmt.Sprint(i % 7)}}
		if i%2 == 1 {
			s.Kind, s.RemoteEndpoint = zipkin.KindClient, &zipkin.Endpoint{ServiceName: "checkout"}
		}
		if i%4 == 0 {
			s.Annotations = []zipkin.Annotation{{Timestamp: s.Timestamp + 5, Value: "wire.send"}}
		}
		spans[i] = s
	}
	return zipkin.EncodeJSON(spans)
}

// BenchmarkDecode is the collector's per-message decode: ns/op is per
// 100-span message.
func BenchmarkDecode(b *testing.B) {
	body := benchBody()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, _, err := zipkin.Decode(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMarshalCanonical is the store's per-span encoding.
func BenchmarkMarshalCanonical(b *testing.B) {
	spans, _, _ := zipkin.Decode(benchBody())
	var buf []byte
	for b.Loop() {
		for i := range spans {
			buf, _ = spans[i].MarshalCanonical(buf)
		}
	}
}

// otlpBenchBody is benchBody's 100 spans as an OTLP/HTTP protobuf export
// request (converted by the Collector's own Zipkin receiver translator).
func otlpBenchBody(b *testing.B) []byte {
	td, err := zipkinv2.NewJSONTracesUnmarshaler(false).UnmarshalTraces(benchBody())
	if err != nil {
		b.Fatal(err)
	}
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// BenchmarkEdgeZipkinJSON and BenchmarkEdgeOTLP are the CPU an ingest
// edge spends per 100-span request before publishing: Zipkin JSON is
// decoded to validate it and published as it came; OTLP is decoded,
// translated (through Zipkin JSON, the translator's output), and encoded
// as Zipkin proto3. ns/op is per 100 spans. The Zipkin JSON edge does
// exactly the collector's decode, so it runs BenchmarkDecode (named here
// so that -bench Edge measures both edges side by side).
func BenchmarkEdgeZipkinJSON(b *testing.B) { BenchmarkDecode(b) }

func BenchmarkEdgeOTLP(b *testing.B) {
	body := otlpBenchBody(b)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		spans, _, err := zipkin.DecodeOTLP(body, zipkin.OTLPProto)
		if err != nil || len(spans) != 100 {
			b.Fatal(len(spans), err)
		}
		if _, err := zipkin.EncodeProto(spans); err != nil {
			b.Fatal(err)
		}
	}
}
