package storage

import (
	"testing"

	"github.com/zipq/zipq/zipkin"
)

// TestWalkBatch: the walk reads the matches it still misses at the share
// of read traces that matched, from 4 to Limit, so a search three short
// of 20 reads 4 traces, not 20 (each a block decode on a packed day).
func TestWalkBatch(t *testing.T) {
	for _, c := range []struct{ limit, read, matches, want int }{
		{20, 0, 0, 20},    // nothing read: Limit
		{20, 20, 17, 4},   // 3 missing at 17 of 20: 4
		{20, 20, 10, 20},  // 10 missing at half: 20
		{20, 40, 5, 20},   // 15 missing at 1 in 8: Limit
		{20, 20, 0, 20},   // none matched yet: Limit
		{20, 30, 25, 4},   // enough, not done: 4
		{1, 0, 0, 4},      // at least 4
		{100, 50, 45, 62}, // 55 missing at 9 in 10: 62
	} {
		w := &walk{q: zipkin.QueryRequest{Limit: c.limit}, read: c.read, matches: make([]match, c.matches)}
		if got := w.batch(); got != c.want {
			t.Errorf("Limit %d, %d read, %d matched: batch %d, want %d", c.limit, c.read, c.matches, got, c.want)
		}
	}
}
