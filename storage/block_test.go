package storage

import (
	"bytes"
	"math"
	"testing"
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
