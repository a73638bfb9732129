package zipkin_test

import (
	"os"
	"testing"

	"github.com/zipq/zipq/zipkin"
)

// benchBody is 100 realistic spans as JSON v2 (six tags, an annotation on
// a quarter, remote endpoints on clients): the collector's decode input,
// shared with ingest's edge benchmarks.
func benchBody() []byte {
	b, err := os.ReadFile("testdata/bench100.json")
	if err != nil {
		panic(err)
	}
	return b
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
