package traceql

import (
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// randomTrace makes a trace of typed attributes over a small vocabulary,
// with resource attributes, events and missing fields, so queries meet
// every case the columns decide or leave open.
func randomTrace(rng *rand.Rand, n int) *Trace {
	pick := func(s ...string) string { return s[rng.IntN(len(s))] }
	raw := make([]byte, 16)
	for i := range raw {
		raw[i] = byte(rng.IntN(256))
	}
	var spans []*Span
	for j := range 1 + rng.IntN(6) {
		s := &Span{ID: fmt.Sprintf("%016x", n*16+j), Name: pick("get", "post", "charge", ""),
			Kind: pick("server", "client", "internal", "unspecified"), Status: pick("unset", "ok", "error"),
			StatusMessage: pick("", "", "timeout"), Start: int64(rng.IntN(1e9)), Attrs: map[string]Value{}}
		s.End = s.Start + int64(rng.IntN(300))*1e6
		if j > 0 {
			s.ParentID = fmt.Sprintf("%016x", n*16+rng.IntN(j))
		}
		for _, k := range []string{"http.path", "code", "region", "ratio", "cached"} {
			if rng.IntN(3) == 0 {
				continue
			}
			switch k {
			case "code":
				if rng.IntN(2) == 0 {
					s.Attrs[k] = Int(int64(200 + 100*rng.IntN(4)))
				} else {
					s.Attrs[k] = Str(pick("200", "503"))
				}
			case "ratio":
				s.Attrs[k] = Float(float64(rng.IntN(10)) / 4)
			case "cached":
				s.Attrs[k] = Bool(rng.IntN(2) == 0)
			default:
				s.Attrs[k] = Str(pick("/a/1", "/a/2", "/b/99", "eu", "us"))
			}
		}
		s.Resource = map[string]Value{"service.name": Str(pick("cart", "db"))}
		if rng.IntN(2) == 0 {
			s.Resource["region"] = Str(pick("eu", "us"))
		}
		if rng.IntN(3) == 0 {
			s.Events = []Event{{Name: pick("retry", "boom"), Time: s.Start}}
		}
		spans = append(spans, s)
	}
	return NewTrace(hex.EncodeToString(raw), spans)
}

func randomQuery(rng *rand.Rand) string {
	pick := func(s ...string) string { return s[rng.IntN(len(s))] }
	cond := func() string {
		switch rng.IntN(12) {
		case 0:
			return fmt.Sprintf(`span.http.path %s %q`, pick("=", "!=", "=~", "!~"), pick("/a/1", "/b/.*", ".*/9[0-9]", "/a/.*"))
		case 1:
			return fmt.Sprintf(`%s %s %s`, pick("span.code", ".code"), pick("=", "!=", ">=", "<"), pick("300", `"503"`, "200"))
		case 2:
			if rng.IntN(3) == 0 { // the constant first
				return fmt.Sprintf(`%dms %s duration`, rng.IntN(300), pick(">", "<", "<=", ">=", "!="))
			}
			return fmt.Sprintf(`duration %s %s`, pick(">", "<=", "=", "<", "!="), pick(fmt.Sprintf("%dms", rng.IntN(300)), "100000000", "1.5e8"))
		case 3:
			return fmt.Sprintf(`status %s %s`, pick("=", "!="), pick("error", "ok", "unset"))
		case 4:
			return fmt.Sprintf(`kind = %s`, pick("server", "client"))
		case 5:
			return fmt.Sprintf(`name %s %q`, pick("=", "=~"), pick("get", "ch.*", ""))
		case 6:
			return fmt.Sprintf(`%s = %q`, pick(".region", "resource.region", "span.region"), pick("eu", "us"))
		case 7:
			return pick(`span.cached`, `!span.cached`, `span.cached = true`, `.cached != nil`, `span.ratio > 1.2`, `span.ratio * 4 >= 5`)
		case 8:
			return pick(`span.code = nil`, `.http.path != nil`, `!(span.region = "eu")`, `statusMessage = "timeout"`)
		case 9:
			return fmt.Sprintf(`event:name = %q`, pick("retry", "boom"))
		case 10:
			return fmt.Sprintf(`resource.service.name = %q`, pick("cart", "db"))
		default:
			return pick(`traceDuration > 100ms`, `rootName = "get"`, `duration - 50ms > 100ms`, `span.code + 1 > 400`)
		}
	}
	filter := func() string {
		c := cond()
		for rng.IntN(2) == 0 {
			c = "(" + c + ") " + pick("&&", "||") + " " + cond()
		}
		if rng.IntN(5) == 0 {
			c = "!(" + c + ")"
		}
		return "{ " + c + " }"
	}
	q := filter()
	switch rng.IntN(5) {
	case 0:
		q += " " + pick("&&", "||", ">", ">>", "~", "!>") + " " + filter()
	case 1:
		q += fmt.Sprintf(" | count() > %d", rng.IntN(3))
	}
	return q
}

// TestPrefilterNeverDropsAMatch: over random traces cut into random
// blocks, the prefilter of a random query names every trace the query
// matches (from some block holding its spans), and it does drop traces —
// it is not a filter that keeps everything.
func TestPrefilterNeverDropsAMatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	traces := make([]*Trace, 300)
	for i := range traces {
		traces[i] = randomTrace(rng, i)
	}
	// Blocks of parts of traces, as writes cut them.
	var blocks [][]*Trace
	var cur []*Trace
	for _, tr := range traces {
		cut := rng.IntN(len(tr.Spans) + 1)
		for _, part := range [][]*Span{tr.Spans[:cut], tr.Spans[cut:]} {
			if len(part) > 0 {
				cur = append(cur, &Trace{ID: tr.ID, Spans: part})
			}
			if rng.IntN(20) == 0 {
				blocks, cur = append(blocks, cur), nil
			}
		}
	}
	blocks = append(blocks, cur)
	type enc struct {
		spans    int
		sections map[string][]byte
	}
	var encoded []enc
	for _, b := range blocks {
		names, secs, err := EncodeColumns(b)
		if err != nil {
			t.Fatal(err)
		}
		e := enc{sections: map[string][]byte{}}
		for _, tr := range b {
			e.spans += len(tr.Spans)
		}
		for i, n := range names {
			e.sections[n] = secs[i]
		}
		encoded = append(encoded, e)
	}
	prefiltered, dropped := 0, 0
	for range 600 {
		text := randomQuery(rng)
		q, err := Compile(text)
		if err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		p := q.Prefilter()
		if p == nil {
			continue
		}
		prefiltered++
		named := map[string]bool{}
		for _, e := range encoded {
			secs := make([][]byte, len(p.Columns()))
			for i, c := range p.Columns() {
				secs[i] = e.sections[c]
			}
			ids, err := p.Traces(e.spans, secs)
			if err != nil {
				t.Fatalf("%s: %v", text, err)
			}
			for _, id := range ids {
				named[hex.EncodeToString(id[:])] = true
			}
		}
		for _, tr := range traces {
			if len(q.Run(tr)) > 0 && !named[tr.ID] {
				t.Fatalf("%s (prefilter %s): trace %s matches but was not named", text, p, tr.ID)
			}
			if !named[tr.ID] {
				dropped++
			}
		}
	}
	if prefiltered < 300 || dropped < 300*len(traces)/4 {
		t.Fatalf("%d queries prefiltered, %d traces dropped: the prefilter (or the generator) no longer does anything", prefiltered, dropped)
	}
}

// TestColumnsRoundTrip: every span's fields come back from its block as
// the span has them.
func TestColumnsRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var traces []*Trace
	for i := range 50 {
		traces = append(traces, randomTrace(rng, i))
	}
	names, secs, err := EncodeColumns(traces)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, tr := range traces {
		n += len(tr.Spans)
	}
	cols := map[string]*column{}
	var ids [][16]byte
	var of []uint32
	for i, name := range names {
		if name == colTrace {
			if ids, of, err = decodeTraces(secs[i], n); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if cols[name], err = decodeColumn(name, secs[i], n, &scratch{}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	row := 0
	for ti, tr := range traces {
		for _, s := range tr.Spans {
			if hex.EncodeToString(ids[of[row]][:]) != tr.ID || int(of[row]) != ti {
				t.Fatalf("span %d: trace %x, want %s", row, ids[of[row]], tr.ID)
			}
			want := map[string]Value{"name": Str(s.Name), "status": {t: TypeStatus, s: s.Status},
				"statusMessage": Str(s.StatusMessage), "kind": {t: TypeKind, s: s.Kind}, colDuration: duration(s.End - s.Start)}
			for k, v := range s.Attrs {
				want[spanPrefix+k] = v
			}
			for name, c := range cols {
				if got := c.value(row); got != want[name] {
					t.Fatalf("span %d, %s: %v, want %v", row, name, got, want[name])
				}
			}
			row++
		}
	}
}

// FuzzSpanColumns: a section either fails to decode or decodes to values
// that, encoded again, decode to the same values; and no count in it
// makes the decoder allocate more than the section could hold.
func FuzzSpanColumns(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 6))
	names, secs, err := EncodeColumns([]*Trace{randomTrace(rng, 1), randomTrace(rng, 2)})
	if err != nil {
		f.Fatal(err)
	}
	for i := range names {
		f.Add(names[i] == colDuration, secs[i])
	}
	f.Fuzz(func(t *testing.T, isDuration bool, section []byte) {
		name := "span.x"
		if isDuration {
			name = colDuration
		}
		for _, spans := range []int{1, 2, 5, 9} {
			c, err := decodeColumn(name, section, spans, &scratch{})
			if err != nil {
				continue
			}
			var again []byte
			if c.ints != nil {
				again = binaryDurations(c.ints)
			} else {
				d := &dictBuilder{codes: make([]uint32, spans), index: map[Value]uint32{}, byStr: map[string]uint32{}}
				for i := range spans {
					if v := c.value(i); v.Type() != TypeNil {
						d.set(i, v)
					}
				}
				again = pack(d.encode(spans))
			}
			c2, err := decodeColumn(name, again, spans, &scratch{})
			if err != nil {
				t.Fatalf("re-encoded section does not decode: %v", err)
			}
			for i := range spans {
				if a, b := c.value(i), c2.value(i); a != b && !(a.t == TypeFloat && a.f != a.f && b.f != b.f) {
					t.Fatalf("span %d: %v, then %v", i, a, b)
				}
			}
		}
	})
}

func binaryDurations(ds []int64) []byte {
	tr := &Trace{ID: "00000000000000000000000000000001"}
	for _, d := range ds {
		tr.Spans = append(tr.Spans, &Span{End: d})
	}
	names, secs, _ := EncodeColumns([]*Trace{tr})
	return secs[slices.Index(names, colDuration)]
}

// BenchmarkPrefilter: the CPU a scan spends per span on a block's
// columns, without PostgreSQL: the bench's scan query over blocks of 100
// spans (as the query bench's writes, each spread over a day, leave them)
// and of 2,000 (a collector's batch of spans from the same seconds).
func BenchmarkPrefilter(b *testing.B) {
	for _, size := range []int{100, 2000} {
		b.Run(fmt.Sprintf("block=%d", size), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(7, 7))
			var traces []*Trace
			n := 0
			for i := 0; n < size; i++ {
				tr := randomTrace(rng, i)
				for _, s := range tr.Spans {
					s.Attrs["http.path"] = Str(fmt.Sprintf("/api/v1/items/%d", rng.IntN(1000)))
				}
				traces = append(traces, tr)
				n += len(tr.Spans)
			}
			names, secs, err := EncodeColumns(traces)
			if err != nil {
				b.Fatal(err)
			}
			q, err := Compile(`{ span.http.path =~ ".*/99[0-9]" && duration > 51ms }`)
			if err != nil {
				b.Fatal(err)
			}
			p := q.Prefilter()
			in := make([][]byte, len(p.Columns()))
			read := 0
			for i, c := range p.Columns() {
				in[i] = secs[slices.Index(names, c)]
				read += len(in[i])
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := p.Traces(n, in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/span")
			b.ReportMetric(float64(read)/float64(n), "B/span-read")
		})
	}
}
