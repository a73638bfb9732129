package storage

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
)

// FuzzSketch: a stored sketch reads back with the count and quantiles it
// was written with, merging two stored sketches is adding their values,
// and arbitrary bytes are refused as errBadSketch or read as some sketch,
// never a panic.
func FuzzSketch(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0}, []byte{255, 255, 0, 0, 0, 0, 0, 0}, []byte{sketchV1, 2, 3})
	f.Fuzz(func(t *testing.T, a, b, garbage []byte) {
		values := func(raw []byte) []float64 {
			var out []float64
			for len(raw) >= 4 {
				out = append(out, float64(binary.LittleEndian.Uint32(raw)%3_600_000_000))
				raw = raw[4:]
			}
			return out
		}
		all, one, two := newSketch(), newSketch(), newSketch()
		for _, v := range values(a) {
			_ = one.Add(v)
			_ = all.Add(v)
		}
		for _, v := range values(b) {
			_ = two.Add(v)
			_ = all.Add(v)
		}
		got := newSketch()
		if err := mergeSketch(got, encodeSketch(nil, one)); err != nil {
			t.Fatal(err)
		}
		if err := mergeSketch(got, encodeSketch(nil, two)); err != nil {
			t.Fatal(err)
		}
		if got.GetCount() != all.GetCount() {
			t.Fatalf("count %v, want %v", got.GetCount(), all.GetCount())
		}
		if !all.IsEmpty() {
			for _, q := range []float64{0, 0.5, 0.99, 1} {
				x, _ := got.GetValueAtQuantile(q)
				y, _ := all.GetValueAtQuantile(q)
				if math.Abs(x-y) > 1e-9*math.Max(1, y) {
					t.Fatalf("p%v %v, want %v", q, x, y)
				}
			}
		}
		if err := mergeSketch(newSketch(), garbage); err != nil && !errors.Is(err, errBadSketch) {
			t.Fatalf("garbage: %v, want errBadSketch", err)
		}
	})
}
