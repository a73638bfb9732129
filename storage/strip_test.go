package storage

import (
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/zipq/zipq/zipkin"
)

// FuzzStrip: points written read back as they were (float32 quantiles
// bit for bit, NaN included), and arbitrary bytes are refused as
// errBadStrip or read as points that write and read back the same.
func FuzzStrip(f *testing.F) {
	f.Add([]byte{0, 5, 1, 0, 9, 200, 3, 7}, int64(1_700_000_000_000_000), []byte{stripV1, 1, 0, 1, 0, 2})
	f.Add([]byte{59, 255, 255, 255, 255, 0, 1}, int64(0), []byte{stripV1, 0})
	f.Fuzz(func(t *testing.T, raw []byte, hour int64, garbage []byte) {
		var points []stripPoint
		next := 0
		for len(raw) >= 7 && next < 60 {
			p := stripPoint{minute: uint8(next + int(raw[0])%(60-next)), calls: int64(binary.LittleEndian.Uint16(raw[1:])),
				errors: int64(raw[3]), durSum: int64(int32(binary.LittleEndian.Uint32(raw[3:]))), bytes: int64(raw[5]) << 20}
			for i := range p.quantiles {
				p.quantiles[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[i%4:]))
			}
			e := &exemplar{trace: zipkin.TraceID{High: uint64(raw[4]), Low: uint64(raw[5])}, span: zipkin.SpanID(raw[6]),
				us: int64(raw[2]) - 100, at: hour + int64(raw[1])*1e6}
			if raw[6]&1 != 0 {
				p.slow = e
			}
			if raw[6]&2 != 0 {
				p.failed = e
			}
			points = append(points, p)
			next = int(p.minute) + 1
			raw = raw[7:]
		}
		got, err := decodeStrip(encodeStrip(nil, hour, points), hour)
		if err != nil {
			t.Fatal(err)
		}
		if !sameStrip(got, points) {
			t.Fatalf("read back %+v, wrote %+v", got, points)
		}
		read, err := decodeStrip(garbage, hour)
		if err != nil {
			if !errors.Is(err, errBadStrip) {
				t.Fatalf("garbage: %v, want errBadStrip", err)
			}
			return
		}
		again, err := decodeStrip(encodeStrip(nil, hour, read), hour)
		if err != nil || !sameStrip(again, read) {
			t.Fatalf("garbage read as %+v, written and read back as %+v, %v", read, again, err)
		}
	})
}

// sameStrip compares points with quantiles bit for bit (NaN is none).
func sameStrip(a, b []stripPoint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		for j := range x.quantiles {
			if math.Float32bits(x.quantiles[j]) != math.Float32bits(y.quantiles[j]) {
				return false
			}
		}
		x.quantiles, y.quantiles = [len(stripQuantiles)]float32{}, [len(stripQuantiles)]float32{}
		if !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return len(a) > 0 || len(b) == 0
}
