package traceql

import (
	"slices"
	"testing"
)

// TestNestedSet: Tempo's nested set numbers of a tree (a depth-first walk
// from the roots), -1 as a root's parent, 0 for spans no root reaches; a
// cycle of parent IDs neither hangs nor numbers twice. `nestedSetParent
// < 0` is how Grafana's Traces Drilldown asks for root spans.
func TestNestedSet(t *testing.T) {
	span := func(id, parent string, start int64) *Span {
		return &Span{ID: id, ParentID: parent, Name: id, Start: start, End: start + 10}
	}
	tr := NewTrace("01", []*Span{span("a", "", 1), span("b", "a", 2), span("c", "a", 3), span("d", "b", 4),
		span("e", "missing", 5), span("x", "y", 6), span("y", "x", 7)})
	want := map[string][3]int64{
		"a": {1, 8, -1}, "b": {2, 5, 1}, "d": {3, 4, 2}, "c": {6, 7, 1},
		"e": {}, "x": {}, "y": {},
	}
	for _, s := range tr.Spans {
		if got := [3]int64{s.nsLeft, s.nsRight, s.nsParent}; got != want[s.ID] {
			t.Errorf("%s: left, right, parent %v, want %v", s.ID, got, want[s.ID])
		}
	}
	for q, ids := range map[string][]string{
		`{ nestedSetParent < 0 }`:                      {"a"},
		`{ nestedSetParent < 0 && true }`:              {"a"},
		`{ nestedSetLeft > 1 && nestedSetParent > 0 }`: {"b", "c", "d"},
		`{ nestedSetRight - nestedSetLeft = 1 }`:       {"c", "d"}, // leaves of the tree
		`{ nestedSetLeft = 0 }`:                        {"e", "x", "y"},
	} {
		c, err := Compile(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var got []string
		for _, set := range c.Run(tr) {
			for _, s := range set.Spans {
				got = append(got, s.ID)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, ids) {
			t.Errorf("%s: %v, want %v", q, got, ids)
		}
	}
}
