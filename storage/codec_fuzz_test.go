package storage

import (
	"bytes"
	"slices"
	"testing"

	"github.com/zipq/zipq/zipkin"
)

// FuzzNamedEdges: whatever a linker mark decodes to survives a round trip
// through encodeNamedEdges unchanged, and encoding is deterministic;
// anything that does not decode is an error (the linker then reads the
// trace back instead), never a panic.
func FuzzNamedEdges(f *testing.F) {
	f.Add(encodeNamedEdges([]edge{{pair: 7, parent: "web", child: "db", calls: 3, errors: 1}, {pair: -1}}))
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		edges, err := decodeNamedEdges(b)
		if err != nil {
			return
		}
		again := encodeNamedEdges(edges)
		back, err := decodeNamedEdges(again)
		if err != nil || !slices.Equal(back, edges) || !bytes.Equal(encodeNamedEdges(back), again) {
			t.Fatalf("%+v does not survive a round trip: %+v, %v", edges, back, err)
		}
	})
}

// FuzzSegment: whatever canonical spans a segment holds, splitting it
// gives them back, byte for byte and in order; and splitting arbitrary
// bytes fails cleanly or yields pieces without panicking.
func FuzzSegment(f *testing.F) {
	span := zipkin.Span{TraceID: zipkin.TraceID{Low: 1}, ID: 2, Name: "get", Tags: map[string]string{"k": "v"}}
	canonical, _ := span.MarshalCanonical(nil)
	f.Add(canonical, []byte("x"), []byte{})
	f.Fuzz(func(t *testing.T, a, b, garbage []byte) {
		seg := encodeSegment(&segment{id: zipkin.TraceID{Low: 1}, spans: []canonicalSpan{{bytes: a}, {bytes: b}}}, 1)
		var got [][]byte
		if _, err := splitSegment(seg.data, nil, func(c []byte) error { got = append(got, slices.Clone(c)); return nil }); err != nil {
			t.Fatalf("own segment unreadable: %v", err)
		}
		if len(got) != 2 || !bytes.Equal(got[0], a) || !bytes.Equal(got[1], b) {
			t.Fatalf("split %x, want %x and %x", got, a, b)
		}
		_, _ = splitSegment(garbage, nil, func([]byte) error { return nil })
	})
}
