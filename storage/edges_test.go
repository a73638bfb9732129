package storage

import (
	"bytes"
	"slices"
	"testing"
	"time"
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

// FuzzLinksRecord: a packed member's links record that decodes is the
// only spelling of its hour and edges (re-encoding gives the same bytes,
// so a record is read back as the row it was made from); anything else
// is an error.
func FuzzLinksRecord(f *testing.F) {
	f.Add(appendLinksRecord(nil, time.Date(2026, 12, 5, 13, 0, 0, 0, time.UTC), encodeEdges([]edge{{pair: 7, calls: 3, errors: 1}})))
	f.Add(appendLinksRecord(nil, time.Unix(0, 0), nil))
	f.Add([]byte{0x80, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		hour, edges, err := decodeLinksRecord(b)
		if err != nil {
			return
		}
		if hour.Truncate(time.Hour) != hour {
			t.Fatalf("hour %v is not whole", hour)
		}
		if again := appendLinksRecord(nil, hour, encodeEdges(edges)); !bytes.Equal(again, b) {
			t.Fatalf("%x decodes to %v %+v, which encodes to %x", b, hour, edges, again)
		}
	})
}
