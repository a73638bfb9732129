package storage

import (
	"bytes"
	"slices"
	"testing"

	"github.com/zipq/zipq/zipkin"
)

// FuzzSegment: whatever canonical spans a segment holds, splitting it
// gives them back, byte for byte and in order; and splitting arbitrary
// bytes fails cleanly or yields pieces without panicking.
func FuzzSegment(f *testing.F) {
	span := zipkin.Span{TraceID: zipkin.TraceID{Low: 1}, ID: 2, Name: "get", Tags: map[string]string{"k": "v"}}
	canonical, _ := span.MarshalCanonical(nil)
	f.Add(canonical, []byte("x"), []byte{})
	enc, _, err := codec()
	if err != nil {
		f.Fatal(err)
	}
	c := &segmentCodec{enc: enc, id: currentDict}
	f.Fuzz(func(t *testing.T, a, b, garbage []byte) {
		seg := encodeSegment(&segment{id: zipkin.TraceID{Low: 1}, spans: []canonicalSpan{{bytes: a}, {bytes: b}}}, 1, c)
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
