package storage

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/zipq/zipq/zipkin"
)

// parseMembers reads members as stored in a row with n keys, each copied
// out of eachMember (what search reads them with).
func parseMembers(b []byte, n int) ([]groupMember, error) {
	var out []groupMember
	err := eachMember(b, n, func(m *groupMember) error {
		c := *m
		c.keys = slices.Clone(m.keys)
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// parseBounds sets ms' latest starts from bounds as stored in a row of
// starts ts–tsMax, through boundReader (what search reads them with).
func parseBounds(b []byte, ts, tsMax time.Time, ms []groupMember) error {
	r := newBoundReader(b, ts, tsMax)
	for i := range ms {
		var err error
		if ms[i].tsMax, err = r.next(); err != nil {
			return err
		}
	}
	return r.end()
}

// groupTraces reads group row o's traces with their latest starts.
func groupTraces(t *testing.T, o *indexRow) []groupMember {
	t.Helper()
	ms, err := parseMembers(o.members, len(o.keys))
	if err == nil {
		err = parseBounds(o.bounds, o.ts, o.tsMax, ms)
	}
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// TestGrouper: a day's rows, grouped, nominate for any walk exactly the
// traces the rows did (the rows' predicate, as the walk's SQL applies it,
// is the oracle), each from a row whose times bound the trace's rows; and
// every group row keeps span_index's CHECK, one tenant, and its bounds.
func TestGrouper(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 22))
	start := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	vocab := make([]int32, 300)
	for i := range vocab {
		vocab[i] = int32(r.Uint32())
	}
	var rows []indexRow
	for i := range 3000 {
		id := zipkin.TraceID{Low: r.Uint64() % 1500, High: uint64(r.IntN(2))} // traces in several rows, twins
		ts := start.Add(time.Duration(r.Int64N(int64(30*time.Minute))) / time.Microsecond * time.Microsecond)
		row := indexRow{tenant: int16(r.IntN(2)), id: id, ts: ts, tsMax: ts.Add(time.Duration(r.Int64N(int64(time.Minute))) / time.Microsecond * time.Microsecond)}
		if i%7 != 0 {
			row.hasDur, row.durMin = true, 1+r.Int64N(1000)
			row.durMax = row.durMin + r.Int64N(1000)
		}
		common := vocab[:20] // services, names and tag keys every trace has a few of
		for range 1 + r.IntN(6) {
			row.keys = append(row.keys, common[r.IntN(len(common))])
		}
		for range r.IntN([]int{3, 40, 400}[r.IntN(3)]) {
			row.keys = append(row.keys, vocab[r.IntN(len(vocab))])
		}
		row.keys = sortedSet(row.keys)
		rows = append(rows, row)
	}
	slices.SortStableFunc(rows, func(a, b indexRow) int {
		if a.tenant != b.tenant {
			return int(a.tenant) - int(b.tenant)
		}
		return a.tsMax.Compare(b.tsMax)
	})
	var out []indexRow
	g := &grouper{emit: func(r indexRow) error { out = append(out, r); return nil }}
	for _, row := range rows {
		if err := g.add(row); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.flush(); err != nil {
		t.Fatal(err)
	}
	groups, traces := 0, 0
	for _, o := range out {
		if !o.tsMax.Before(o.ts.Add(indexBucket)) || o.tsMax.Before(o.ts) {
			t.Fatalf("row %v–%v breaks span_index's CHECK", o.ts, o.tsMax)
		}
		if len(o.members) == 0 {
			traces++
			continue
		}
		ms := groupTraces(t, &o)
		if !ms[0].tsMax.Equal(o.tsMax) {
			t.Fatalf("group row's newest trace starts last at %v, the row at %v", ms[0].tsMax, o.tsMax)
		}
		if len(ms) < 2 || len(ms) > groupMaxMembers || !slices.IsSorted(o.keys) || ms[0].id != o.id {
			t.Fatalf("group row of %d traces (first %v, row's %v)", len(ms), ms[0].id, o.id)
		}
		if size := 4*len(o.keys) + len(o.members) + len(o.bounds); size > 2032-120 {
			t.Fatalf("group row of %d bytes of keys, members and bounds: TOASTed", size)
		}
		groups++
		traces += len(ms)
	}
	if groups == 0 || len(out) > len(rows)/4 {
		t.Fatalf("%d rows grouped into %d (%d group rows): the grouping is not tested", len(rows), len(out), groups)
	}
	t.Logf("%d rows → %d rows (%d group rows of %d traces)", len(rows), len(out), groups, traces)

	// Each trace's latest start, over its rows, is what the rows it is
	// grouped into give it: exact, not the group's.
	latest := func(rows []indexRow) map[thinKey]time.Time {
		got := map[thinKey]time.Time{}
		note := func(k thinKey, at time.Time) { got[k] = maxTime(got[k], at) }
		for _, o := range rows {
			if len(o.members) == 0 {
				note(thinKey{o.tenant, o.id}, o.tsMax)
				continue
			}
			for _, m := range groupTraces(t, &o) {
				note(thinKey{o.tenant, m.id}, m.tsMax)
			}
		}
		return got
	}
	want, got := latest(rows), latest(out)
	for k, at := range want {
		if !got[k].Equal(at) {
			t.Fatalf("trace %v's rows start last at %v, its group rows say %v", k, at, got[k])
		}
	}

	// What an ordinary row answers to, as the walk's SQL asks it.
	rowHas := func(w *walk, o *indexRow) bool {
		for _, k := range w.keys {
			if _, ok := slices.BinarySearch(o.keys, k); !ok {
				return false
			}
		}
		for _, e := range w.either {
			if !slices.ContainsFunc(e, func(k int32) bool { _, ok := slices.BinarySearch(o.keys, k); return ok }) {
				return false
			}
		}
		return (w.q.MinDuration == 0 || o.hasDur && o.durMax >= w.q.MinDuration) &&
			(w.q.MaxDuration == 0 || o.hasDur && o.durMin <= w.q.MaxDuration)
	}
	type span struct{ ts, tsMax time.Time }
	nominated := func(w *walk, rows []indexRow) map[thinKey]span {
		got := map[thinKey]span{}
		note := func(k thinKey, o *indexRow) {
			s, ok := got[k]
			if !ok {
				s = span{o.ts, o.tsMax}
			}
			got[k] = span{minTime(s.ts, o.ts), maxTime(s.tsMax, o.tsMax)}
		}
		for i := range rows {
			o := &rows[i]
			if len(o.members) == 0 {
				if rowHas(w, o) {
					note(thinKey{o.tenant, o.id}, o)
				}
				continue
			}
			// The row's SQL condition on its union, then its members.
			union := indexRow{keys: o.keys, hasDur: o.hasDur, durMin: o.durMin, durMax: o.durMax}
			if !rowHas(w, &union) {
				continue
			}
			ms := groupTraces(t, o)
			// Where the walk's keys are in the row's, as its SQL gives them.
			var pos []int32
			for _, k := range w.wanted() {
				p, ok := slices.BinarySearch(o.keys, k)
				pos = append(pos, map[bool]int32{true: int32(p) + 1}[ok])
			}
			for i := range ms {
				if w.nominates(pos, &ms[i]) {
					note(thinKey{o.tenant, ms[i].id}, &indexRow{ts: o.ts, tsMax: ms[i].tsMax})
				}
			}
		}
		return got
	}
	for qi := range 400 {
		w := &walk{}
		for range r.IntN(3) {
			w.keys = append(w.keys, vocab[r.IntN(len(vocab)/(1+qi%3))])
		}
		if qi%4 == 0 {
			w.either = [][]int32{{vocab[r.IntN(len(vocab))], vocab[r.IntN(len(vocab))]}}
		}
		if qi%5 == 0 {
			w.q.MinDuration = r.Int64N(1500)
		}
		if qi%6 == 0 {
			w.q.MaxDuration = r.Int64N(1500)
		}
		want, got := nominated(w, rows), nominated(w, out)
		if len(got) != len(want) {
			t.Fatalf("query %d (%+v): %d traces nominated by group rows, %d by the rows", qi, w, len(got), len(want))
		}
		for k, s := range want {
			g, ok := got[k]
			if !ok || g.ts.After(s.ts) || g.tsMax.Before(s.tsMax) {
				t.Fatalf("query %d: trace %v's rows span %v–%v, nominated by %v–%v (%v)", qi, k, s.ts, s.tsMax, g.ts, g.tsMax, ok)
			}
		}
	}
}

// FuzzIndexGroup: span_index.members of n keys parses only to what writes
// it back byte for byte, with every key position below n; and what
// appendMembers writes parses back to itself.
func FuzzIndexGroup(f *testing.F) {
	ms := []groupMember{
		{id: zipkin.TraceID{Low: 1, High: 2}, hasDur: true, durMin: 3, durMax: 900, keys: []uint32{0, 1, 7}},
		{id: zipkin.TraceID{Low: math.MaxUint64}, keys: []uint32{5}},
		{hasDur: true, durMax: math.MaxInt64, keys: []uint32{}},
	}
	f.Add(uint16(8), appendMembers(nil, ms))
	f.Add(uint16(7), appendMembers(nil, ms))
	f.Add(uint16(0), []byte{})
	f.Add(uint16(300), appendMembers(nil, []groupMember{{keys: []uint32{0, 200, 299}}}))
	f.Fuzz(func(t *testing.T, n uint16, b []byte) {
		ms, err := parseMembers(b, int(n))
		if err != nil {
			return
		}
		for _, m := range ms {
			if m.hasDur && (m.durMin < 0 || m.durMax < m.durMin) || !slices.IsSorted(m.keys) || len(slices.Compact(slices.Clone(m.keys))) != len(m.keys) {
				t.Fatalf("%x parses to %+v", b, m)
			}
			if len(m.keys) > 0 && m.keys[len(m.keys)-1] >= uint32(n) {
				t.Fatalf("%x parses to a key position %d of %d", b, m.keys[len(m.keys)-1], n)
			}
		}
		if again := appendMembers(nil, ms); !bytes.Equal(again, b) {
			t.Fatalf("%x parses to %+v, which writes %x", b, ms, again)
		}
		again, err := parseMembers(appendMembers(nil, ms), int(n))
		if err != nil || len(again) != len(ms) {
			t.Fatalf("%+v written reads back as %+v, %v", ms, again, err)
		}
	})
}

// FuzzIndexGroupBounds: span_index.bounds of a group row of n traces and
// starts ts–ts+room parses only to latest starts newest first within the
// row's, which write it back byte for byte; empty gives each the row's.
func FuzzIndexGroupBounds(f *testing.F) {
	ts := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	ms := []groupMember{{tsMax: ts.Add(time.Minute - 1)}, {tsMax: ts.Add(30 * time.Second)}, {tsMax: ts.Add(30 * time.Second)}, {tsMax: ts}}
	f.Add(uint32(60e6-1), uint8(4), appendBounds(nil, ts.Add(time.Minute-1), ms))
	f.Add(uint32(60e6-2), uint8(4), appendBounds(nil, ts.Add(time.Minute-1), ms))
	f.Add(uint32(0), uint8(3), []byte{})
	f.Add(uint32(5), uint8(2), []byte{0, 5})
	f.Fuzz(func(t *testing.T, room uint32, n uint8, b []byte) {
		tsMax := ts.Add(time.Duration(room) * time.Microsecond)
		ms := make([]groupMember, n)
		if err := parseBounds(b, ts, tsMax, ms); err != nil {
			return
		}
		prev := tsMax
		for _, m := range ms {
			if m.tsMax.After(prev) || m.tsMax.Before(ts) || len(b) == 0 && !m.tsMax.Equal(tsMax) {
				t.Fatalf("%x in a row of %v–%v parses to %v after %v", b, ts, tsMax, m.tsMax, prev)
			}
			prev = m.tsMax
		}
		if again := appendBounds(nil, tsMax, ms); len(b) > 0 && !bytes.Equal(again, b) {
			t.Fatalf("%x parses to bounds that write %x", b, again)
		}
	})
}
