package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// span_strips.points: one service's totals for each minute of an hour,
// with the quantiles a Services page asks for already read from the
// minute's sketch, so that a day of 50 services at one-minute steps is
// 1,200 rows and no sketch decoded per point instead of 72,000 rows and
// a sketch each (docs/BENCHMARKS.md, "The Services page's read").
//
// v1: a version byte, the number of points (uvarint), then per point in
// minute order: the minute (one byte, 0–59), calls and errors (uvarints),
// the duration sum (zigzag varint, µs), the bytes (uvarint, statAgg.bytes),
// one float32 per stripQuantiles (little
// endian: the sketch's answer is within SketchAccuracy of the truth, far
// coarser than a float32's 6e-8), and a byte of flags saying which of the
// slowest and the slowest failed exemplar follow, each as trace id high,
// low and span id (8 bytes each), duration and start (zigzag varints, µs;
// the start after the hour).
const stripV1 = 1

// stripQuantiles are the quantiles a strip keeps per minute: the
// Services page's, the API's default and the usual others. A read that
// asks for any other is answered from the sketches.
var stripQuantiles = [...]float64{0.5, 0.75, 0.9, 0.95, 0.99, 0.999}

// stripPoint is one minute of a strip.
type stripPoint struct {
	minute                uint8
	calls, errors, durSum int64
	bytes                 int64
	quantiles             [len(stripQuantiles)]float32
	slow, failed          *exemplar
}

var errBadStrip = errors.New("stored strip is corrupt")

// encodeStrip appends points (in minute order) to b; exemplar times are
// kept relative to hour (µs).
func encodeStrip(b []byte, hour int64, points []stripPoint) []byte {
	b = append(b, stripV1)
	b = binary.AppendUvarint(b, uint64(len(points)))
	for _, p := range points {
		b = append(b, p.minute)
		b = binary.AppendUvarint(b, uint64(p.calls))
		b = binary.AppendUvarint(b, uint64(p.errors))
		b = binary.AppendVarint(b, p.durSum)
		b = binary.AppendUvarint(b, uint64(p.bytes))
		for _, q := range p.quantiles {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(q))
		}
		b = appendExemplars(b, hour, p.slow, p.failed)
	}
	return b
}

// decodeStrip reads a stored strip of the hour starting at hour (µs),
// the points' exemplars in one slab. Counts beyond int64, minutes out of
// order and trailing bytes are refused, so what it accepts encodes back
// to bytes that read the same.
func decodeStrip(b []byte, hour int64) ([]stripPoint, error) {
	if len(b) == 0 || b[0] != stripV1 {
		return nil, fmt.Errorf("%w: version %v", errBadStrip, b[:min(len(b), 1)])
	}
	d := fieldReader{b: b[1:], bad: errBadStrip}
	n := d.uvarint()
	if d.err == nil && n > 60 {
		d.fail("%d points in an hour", n)
	}
	points := make([]stripPoint, 0, min(n, 60))
	exemplars := make([]exemplar, 0, 2*min(n, 60)) // never grown: the points keep pointers into it
	for i := uint64(0); i < n && d.err == nil; i++ {
		minute := d.byte()
		if minute >= 60 || i > 0 && minute <= points[i-1].minute {
			d.fail("minute %d after %d points", minute, i)
		}
		p := stripPoint{minute: minute}
		p.calls, p.errors, p.durSum, p.bytes = d.count(), d.count(), d.varint(), d.count()
		for j := range p.quantiles {
			p.quantiles[j] = math.Float32frombits(d.uint32())
		}
		d.exemplars(hour, func(i int, x exemplar) {
			exemplars = append(exemplars, x)
			*[...]**exemplar{&p.slow, &p.failed}[i] = &exemplars[len(exemplars)-1]
		})
		points = append(points, p)
	}
	if d.err == nil && len(d.b) > 0 {
		d.fail("%d bytes after the points", len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	return points, nil
}
