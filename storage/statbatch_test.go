package storage

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/zipq/zipq/zipkin"
)

// FuzzStatBatch: a tally written as a batch reads back cell for cell,
// each cell from its own section too (what the fold reads), and
// arbitrary bytes are refused as corrupt or read as cells that write and
// read back the same.
func FuzzStatBatch(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}, int64(1_700_000_040_000_000), []byte{statBatchV1, 1, 1, 'a', 0})
	f.Add([]byte{9, 9, 9, 9, 9, 9, 9, 9, 1, 0, 0, 0, 0, 0, 0, 0}, int64(0), []byte{statBatchV1, 1, 0, 1, 0, 0, 0, 0, 1, 2, 0, 0, 2, sketchV1, 0, 0})
	f.Fuzz(func(t *testing.T, raw []byte, minute int64, garbage []byte) {
		names := []string{"", "a", "checkout", "GET /api/v1/items/{id}", "é\x00"}
		tally := statTally{}
		for ; len(raw) >= 8; raw = raw[8:] {
			k := statKey{ts: minute, cell: statCell{service: names[raw[0]%5], name: names[raw[1]%5], remote: names[raw[2]%5], kind: zipkin.Kind(raw[3] % 5)}}
			a := tally[k]
			if a == nil {
				a = &statAgg{sketch: newSketch()}
				tally[k] = a
			}
			sp := &zipkin.Span{TraceID: zipkin.TraceID{High: uint64(raw[4]) << 56, Low: uint64(raw[5])}, ID: zipkin.SpanID(raw[6]) + 1,
				Duration: int64(raw[7]) * 1000}
			if raw[4]&1 != 0 {
				sp.Tags = map[string]string{"error": "true"}
			}
			a.addSpan(sp, minute-int64(raw[5])*1000)
			a.bytes += int64(raw[2])
		}
		rows := tally.batchRows()
		if len(tally) == 0 {
			if len(rows) != 0 {
				t.Fatalf("an empty tally wrote %d rows", len(rows))
			}
		} else {
			if len(rows) != 1 || rows[0].minute != minute || len(rows[0].chunks) != statChunks+1 || rows[0].chunks[statChunks] != int32(len(rows[0].cells)) {
				t.Fatalf("one minute's tally wrote %+v", rows)
			}
			got := readBatch(t, minute, rows[0].cells, nil)
			if len(got) != len(tally) {
				t.Fatalf("%d cells read back of %d", len(got), len(tally))
			}
			for k, a := range tally {
				sameAgg(t, k, got[k], a)
			}
			for c := range statChunks {
				section := rows[0].cells[rows[0].chunks[c]:rows[0].chunks[c+1]]
				for k := range readBatch(t, minute, section, nil) {
					if cellChunk(k.cell.hash()) != c {
						t.Fatalf("cell %+v in section %d, its hash in %d", k.cell, c, cellChunk(k.cell.hash()))
					}
				}
			}
			// A read that keeps one cell gets that one alone.
			for k := range tally {
				only := readBatch(t, minute, rows[0].cells, func(c statCell) bool { return c == k.cell })
				if len(only) != 1 || only[k] == nil {
					t.Fatalf("keeping %+v read %v", k.cell, only)
				}
				break
			}
		}

		var read statTally
		err := decodeStatBatch(minute, garbage, nil, func(k statKey, a *statAgg) error {
			if read == nil {
				read = statTally{}
			}
			if have := read[k]; have != nil {
				return have.merge(a)
			}
			read[k] = a
			return nil
		})
		if err != nil {
			if !errors.Is(err, errBadStatBatch) && !errors.Is(err, errBadSketch) {
				t.Fatalf("garbage refused with %v", err)
			}
			return
		}
		again := tally2(t, minute, read)
		for k, a := range read {
			sameAgg(t, k, again[k], a)
		}
	})
}

// tally2 is t written as a batch and read back.
func tally2(t *testing.T, minute int64, tally statTally) statTally {
	rows := tally.batchRows()
	out := statTally{}
	for _, r := range rows {
		for k, a := range readBatch(t, r.minute, r.cells, nil) {
			out[k] = a
		}
	}
	if len(out) != len(tally) {
		t.Fatalf("%d cells of minute %d read back as %d", len(tally), minute, len(out))
	}
	return out
}

func readBatch(t *testing.T, minute int64, b []byte, keep func(statCell) bool) statTally {
	t.Helper()
	out := statTally{}
	err := decodeStatBatch(minute, b, keep, func(k statKey, a *statAgg) error {
		if out[k] != nil {
			t.Fatalf("cell %+v read twice", k)
		}
		out[k] = a
		return nil
	})
	if err != nil {
		t.Fatalf("written batch unreadable: %v", err)
	}
	return out
}

func sameAgg(t *testing.T, k statKey, got, want *statAgg) {
	t.Helper()
	if got == nil {
		t.Fatalf("cell %+v not read back", k)
	}
	if got.calls != want.calls || got.errors != want.errors || got.durSum != want.durSum || got.bytes != want.bytes ||
		!reflect.DeepEqual(got.slow, want.slow) || !reflect.DeepEqual(got.failed, want.failed) {
		t.Fatalf("cell %+v read back as %+v, wrote %+v", k, got, want)
	}
	if !bytes.Equal(encodeSketch(nil, got.sketch), encodeSketch(nil, want.sketch)) {
		t.Fatalf("cell %+v: sketch read back differs", k)
	}
}
