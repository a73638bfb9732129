package storage

import (
	"bytes"
	"errors"
	"fmt"
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

// FuzzDecompressPrefix: a prefix decode of any frame zipq writes is that
// frame's first bytes, at least as many as asked; of arbitrary bytes it
// is errCorruptSegment, or a prefix of what DecodeAll makes of them.
func FuzzDecompressPrefix(f *testing.F) {
	f.Add([]byte("span of trace 1: GET /"), uint32(3), []byte{0x28, 0xb5, 0x2f, 0xfd})
	enc, _, err := codec()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte, n uint32, garbage []byte) {
		want := int(n % uint32(len(raw)+2))
		got, err := decompressPrefix(enc.EncodeAll(raw, nil), nil, want)
		if err != nil {
			t.Fatalf("own frame: %v", err)
		}
		if len(got) < min(want, len(raw)) || !bytes.Equal(got, raw[:len(got)]) {
			t.Fatalf("%d bytes asked of %d: %d decoded, not the frame's first", want, len(raw), len(got))
		}
		got, err = decompressPrefix(garbage, nil, int(n%(1<<20)))
		if err != nil {
			if !errors.Is(err, errCorruptSegment) {
				t.Fatalf("garbage: %v, want errCorruptSegment", err)
			}
			return
		}
		if all, err := decompress(garbage, nil); err == nil && !bytes.Equal(got, all[:min(len(got), len(all))]) {
			t.Fatalf("garbage: prefix %x is not DecodeAll's %x", got, all)
		}
	})
}

// TestDecompressPrefix: a prefix decode of a frame several zstd blocks
// long is the frame's first bytes, at least as many as asked (all of them
// when asked for more), stops short of the end when asked for little, and
// a damaged frame is errCorruptSegment.
func TestDecompressPrefix(t *testing.T) {
	var raw []byte
	for i := 0; len(raw) < 400<<10; i++ {
		raw = fmt.Appendf(raw, "span %d of trace %x: GET /api/products/%d?currency=EUR\n", i, i*7919, i%977)
	}
	enc, _, err := codec()
	if err != nil {
		t.Fatal(err)
	}
	data := enc.EncodeAll(raw, nil)
	var buf []byte
	for _, n := range []int{0, 1, 1000, 128<<10 - 1, 128 << 10, 200 << 10, len(raw) - 1, len(raw), len(raw) + 10} {
		got, err := decompressPrefix(data, buf, n)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if len(got) < min(n, len(raw)) || !bytes.Equal(got, raw[:len(got)]) {
			t.Fatalf("%d bytes asked: %d decoded, not the frame's first", n, len(got))
		}
		if n <= 1000 && len(got) >= len(raw) {
			t.Fatalf("%d bytes asked: the whole frame decoded", n)
		}
		buf = got
	}
	bad := slices.Clone(data)
	bad[len(bad)/2] ^= 0xff
	if _, err := decompressPrefix(bad, nil, len(raw)); !errors.Is(err, errCorruptSegment) {
		t.Fatalf("damaged frame: %v, want errCorruptSegment", err)
	}
}
