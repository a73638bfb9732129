package storage

// The link records' encodings: trace_links.edges (encodeEdges, 16 bytes an
// edge), link_pending.edges, a linker mark (encodeNamedEdges: each edge
// as encodeEdges writes it, then its two names), and a packed trace's
// trace_links row inside its block (appendLinksRecord). FuzzNamedEdges and
// FuzzLinksRecord are beside them in edges_test.go.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// edge is one parent → child link of a trace. Stored in trace_links it is
// 16 bytes, its names replaced by their key (nameKey, dependency_links'
// key); the names are known only for edges linked just now.
type edge struct {
	pair          int64
	parent, child string
	calls, errors int64
}

const edgeSize = 16 // pair int64, calls int32, errors int32, big-endian

func encodeEdges(edges []edge) []byte {
	b := make([]byte, 0, edgeSize*len(edges))
	for _, e := range edges {
		b = binary.BigEndian.AppendUint64(b, uint64(e.pair))
		b = binary.BigEndian.AppendUint32(b, uint32(min(e.calls, math.MaxInt32)))
		b = binary.BigEndian.AppendUint32(b, uint32(min(e.errors, math.MaxInt32)))
	}
	return b
}

func decodeEdges(b []byte) ([]edge, error) {
	if len(b)%edgeSize != 0 {
		return nil, fmt.Errorf("trace links: %d bytes is not a whole number of edges", len(b))
	}
	edges := make([]edge, 0, len(b)/edgeSize)
	for ; len(b) > 0; b = b[edgeSize:] {
		edges = append(edges, edge{pair: int64(binary.BigEndian.Uint64(b)),
			calls: int64(int32(binary.BigEndian.Uint32(b[8:]))), errors: int64(int32(binary.BigEndian.Uint32(b[12:])))})
	}
	return edges, nil
}

// encodeNamedEdges is a mark's edges: each as encodeEdges writes it, then
// the parent and child names, length-prefixed (a new edge's row needs them).
func encodeNamedEdges(edges []edge) []byte {
	b := make([]byte, 0, (edgeSize+24)*len(edges))
	for _, e := range edges {
		b = append(b, encodeEdges([]edge{e})...)
		b = binary.AppendUvarint(b, uint64(len(e.parent)))
		b = append(b, e.parent...)
		b = binary.AppendUvarint(b, uint64(len(e.child)))
		b = append(b, e.child...)
	}
	return b
}

func decodeNamedEdges(b []byte) ([]edge, error) {
	edges := []edge{}
	name := func() (string, error) {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return "", errors.New("link mark: truncated name")
		}
		s := string(b[k : k+int(n)])
		b = b[k+int(n):]
		return s, nil
	}
	for len(b) > 0 {
		if len(b) < edgeSize {
			return nil, errors.New("link mark: truncated edge")
		}
		e, _ := decodeEdges(b[:edgeSize])
		b = b[edgeSize:]
		var err error
		if e[0].parent, err = name(); err != nil {
			return nil, err
		}
		if e[0].child, err = name(); err != nil {
			return nil, err
		}
		edges = append(edges, e[0])
	}
	return edges, nil
}

// appendLinksRecord appends a trace_links row as a packed member carries
// it (pack.go): its hour as a uvarint count of hours since 1970, then its
// edges as encodeEdges wrote them. The member's trace ID and tenant are
// the row's.
func appendLinksRecord(b []byte, hour time.Time, edges []byte) []byte {
	b = binary.AppendUvarint(b, uint64(hour.Unix()/3600))
	return append(b, edges...)
}

// decodeLinksRecord reads appendLinksRecord's record.
func decodeLinksRecord(b []byte) (time.Time, []edge, error) {
	h, n := binary.Uvarint(b)
	if n <= 0 || h > math.MaxInt64/3600 || n != uvarintLen(h) {
		return time.Time{}, nil, errors.New("packed links: bad hour")
	}
	edges, err := decodeEdges(b[n:])
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("packed links: %w", err)
	}
	return time.Unix(int64(h)*3600, 0).UTC(), edges, nil
}
