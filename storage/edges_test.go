package storage

import (
	"bytes"
	"slices"
	"testing"
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
