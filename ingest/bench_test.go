package ingest

import (
	"os"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/zipkin/zipkinv2"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/zipq/zipq/zipkin"
)

// zipkinBenchBody is zipkin's benchmark message: 100 realistic spans as
// JSON v2.
func zipkinBenchBody(b *testing.B) []byte {
	body, err := os.ReadFile("../zipkin/testdata/bench100.json")
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// otlpBenchBody is the same 100 spans as an OTLP/HTTP protobuf export
// request (converted by the Collector's own Zipkin receiver translator).
func otlpBenchBody(b *testing.B) []byte {
	td, err := zipkinv2.NewJSONTracesUnmarshaler(false).UnmarshalTraces(zipkinBenchBody(b))
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
// translated, and encoded as Zipkin proto3. ns/op is per 100 spans.
func BenchmarkEdgeZipkinJSON(b *testing.B) {
	body := zipkinBenchBody(b)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, _, err := zipkin.Decode(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEdgeOTLP(b *testing.B) {
	body := otlpBenchBody(b)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		spans, _, err := DefaultLimits().DecodeOTLP(body, OTLPProto)
		if err != nil || len(spans) != 100 {
			b.Fatal(len(spans), err)
		}
		if _, err := zipkin.EncodeProto(spans); err != nil {
			b.Fatal(err)
		}
	}
}
