package storage

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/zipq/zipq/zipkin"
)

// FuzzBlockRef: a reference reads back as written, and bytes that read as
// a reference are exactly the one its fields write (nothing ignored,
// nothing trailing); anything else is refused as corrupt.
func FuzzBlockRef(f *testing.F) {
	f.Add(appendRef(nil, -5, 42, 0, 100))
	f.Add(appendRef(nil, math.MaxInt64, math.MinInt64, math.MaxInt32, math.MaxInt32))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		low, uid, off, n, err := parseRef(data)
		if err != nil {
			return
		}
		if again := appendRef(nil, low, uid, off, n); !bytes.Equal(again, data) {
			t.Fatalf("%x reads as (%d, %d, %d, %d), which writes %x", data, low, uid, off, n, again)
		}
		if !isBlockRef(data) {
			t.Fatalf("%x read as a reference but is not one", data)
		}
		l2, u2, o2, n2, err := parseRef(appendRef(nil, low^1, uid+1, off/2, n/2))
		if err != nil || l2 != low^1 || u2 != uid+1 || o2 != off/2 || n2 != n/2 {
			t.Fatalf("round trip: %d %d %d %d, %v", l2, u2, o2, n2, err)
		}
	})
}

// FuzzBlockDir: a block directory that parses writes back to the same
// bytes (one directory, one spelling), its entries lie end to end from
// offset 0, and each is dated within the block's day; a directory short
// of an entry or with bytes to spare is refused.
func FuzzBlockDir(f *testing.F) {
	start := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	var dir []byte
	for i, e := range []dirEntry{{ts: start.Add(time.Hour), spans: 3, len: 700}, {id: zipkin.TraceID{High: math.MaxUint64}, ts: start.Add(day - time.Microsecond), spans: 1, len: 1}} {
		e.id.Low = uint64(i)
		dir = appendDirEntry(dir, e, start)
	}
	f.Add(uint8(2), dir)
	f.Add(uint8(1), dir)
	f.Add(uint8(0), []byte{})
	f.Add(uint8(1), appendDirEntry(nil, dirEntry{ts: start, len: 9}, start)) // unlisted
	f.Fuzz(func(t *testing.T, n uint8, dir []byte) {
		lows := make([]int64, n)
		for i := range lows {
			lows[i] = int64(i) * 7919
		}
		entries, err := parseDir(lows, dir, start)
		if err != nil {
			return
		}
		var again []byte
		off := 0
		for i, e := range entries {
			if e.id.Low != uint64(lows[i]) || e.off != off || e.ts.Before(start) || !e.ts.Before(start.Add(day)) || e.spans < 0 || e.len < 1 {
				t.Fatalf("entry %d: %+v (offset %d expected)", i, e, off)
			}
			off += e.len
			again = appendDirEntry(again, e, start)
		}
		if !bytes.Equal(again, dir) {
			t.Fatalf("%x parses to %+v, which writes %x", dir, entries, again)
		}
		if n > 0 {
			if _, err := parseDir(lows[:n-1], dir, start); err == nil {
				t.Fatalf("%x read with an entry short", dir)
			}
		}
		if _, err := parseDir(lows, append(slices.Clip(dir), 0), start); err == nil {
			t.Fatalf("%x read with a byte to spare", dir)
		}
	})
}

// TestUvarintLen: uvarintLen counts what binary.AppendUvarint writes, at
// every length's edges.
func TestUvarintLen(t *testing.T) {
	for shift := range 64 {
		for _, v := range []uint64{1<<shift - 1, 1 << shift, 1<<shift + 1} {
			if got, want := uvarintLen(v), len(binary.AppendUvarint(nil, v)); got != want {
				t.Fatalf("uvarintLen(%d) = %d, want %d", v, got, want)
			}
		}
	}
	if got := uvarintLen(math.MaxUint64); got != 10 {
		t.Fatalf("uvarintLen(MaxUint64) = %d, want 10", got)
	}
}
