package traceql

import (
	"regexp"
	"strings"
)

// Spanset is what a pipeline leaves of a trace: spans, and the values
// grouping, aggregates and select() attached to them.
type Spanset struct {
	Spans      []*Span
	Attributes []NamedValue // by() values and aggregate results
	Selected   []Field      // select()'s fields, read off each span
}

// NamedValue is a value with the expression that made it.
type NamedValue struct {
	Name  string
	Value Value
}

// Query is a parsed query ready to run on traces.
type Query struct {
	Tree  *Pipeline
	res   map[string]*regexp.Regexp
	reads map[Field]scopes // of every expression: whether it reads events, links
}

// Compile parses q and prepares it to run.
func Compile(q string) (*Query, error) {
	tree, err := Parse(q)
	if err != nil {
		return nil, err
	}
	return New(tree), nil
}

// New prepares a parsed tree to run (its regular expressions compiled).
func New(tree *Pipeline) *Query {
	c := &Query{Tree: tree, res: map[string]*regexp.Regexp{}, reads: map[Field]scopes{}}
	walkFields(tree, func(f Field) {
		c.reads[f] = readsOf(f)
		if b, ok := f.(*Binary); ok && (b.Op == "=~" || b.Op == "!~") {
			if s, ok := b.R.(*Static); ok {
				c.res[s.S] = regexp.MustCompile(anchored(s.S)) // checked by Parse
			}
		}
	})
	return c
}

// eachField calls fn on f and every expression inside it, outermost first
// (none when f is nil).
func eachField(f Field, fn func(Field)) {
	if f == nil {
		return
	}
	fn(f)
	switch f := f.(type) {
	case *Binary:
		eachField(f.L, fn)
		eachField(f.R, fn)
	case *Unary:
		eachField(f.X, fn)
	}
}

// walkFields calls fn on every field expression of the tree.
func walkFields(e Element, fn func(Field)) {
	field := func(f Field) { eachField(f, fn) }
	switch e := e.(type) {
	case *Pipeline:
		for _, x := range e.Elements {
			walkFields(x, fn)
		}
	case *Filter:
		field(e.Expr)
	case *SpansetOp:
		walkFields(e.L, fn)
		walkFields(e.R, fn)
	case *ScalarFilter:
		for _, s := range []Scalar{e.L, e.R} {
			if a, ok := s.(*Aggregate); ok {
				field(a.Arg)
			}
		}
	case *GroupBy:
		field(e.Expr)
	case *Select:
		for _, f := range e.Fields {
			field(f)
		}
	}
}

// Fields lists the attributes and intrinsics the query reads, in order
// of appearance, once each: what a search answer shows of matched spans.
func (q *Query) Fields() []Field {
	var out []Field
	seen := map[string]bool{}
	walkFields(q.Tree, func(f Field) {
		switch f.(type) {
		case *Attribute, *Intrinsic:
			if k := fieldString(f); !seen[k] {
				seen[k] = true
				out = append(out, f)
			}
		}
	})
	return out
}

// Run evaluates the query on one trace: the spansets it leaves, none when
// the trace does not match.
func (q *Query) Run(t *Trace) []Spanset {
	return q.pipeline(q.Tree, t, []Spanset{{Spans: t.Spans}})
}

func (q *Query) pipeline(pl *Pipeline, t *Trace, in []Spanset) []Spanset {
	for _, e := range pl.Elements {
		in = q.element(e, t, in)
		if len(in) == 0 {
			return nil
		}
	}
	return in
}

func (q *Query) element(e Element, t *Trace, in []Spanset) []Spanset {
	var out []Spanset
	switch e := e.(type) {
	case *Pipeline:
		return q.pipeline(e, t, in)
	case *Filter:
		for _, ss := range in {
			var kept []*Span
			for _, s := range ss.Spans {
				if e.Expr == nil || q.matches(e.Expr, t, s) {
					kept = append(kept, s)
				}
			}
			if len(kept) > 0 {
				out = append(out, Spanset{Spans: kept, Attributes: ss.Attributes, Selected: ss.Selected})
			}
		}
	case *SpansetOp:
		for _, ss := range in {
			l := union(t, q.element(e.L, t, []Spanset{ss}))
			r := union(t, q.element(e.R, t, []Spanset{ss}))
			if spans := combine(e.Op, t, l, r); len(spans) > 0 {
				out = append(out, Spanset{Spans: spans, Attributes: ss.Attributes, Selected: ss.Selected})
			}
		}
	case *ScalarFilter:
		agg := e.L.(*Aggregate)
		want := value(e.R.(*Static))
		for _, ss := range in {
			v := q.aggregate(agg, t, ss.Spans)
			if compare(e.Op, v, want, nil) {
				attrs := append(append([]NamedValue(nil), ss.Attributes...), NamedValue{scalarString(agg), v})
				out = append(out, Spanset{Spans: ss.Spans, Attributes: attrs, Selected: ss.Selected})
			}
		}
	case *GroupBy:
		name := "by(" + fieldString(e.Expr) + ")"
		for _, ss := range in {
			var order []Value
			groups := map[Value][]*Span{}
			for _, s := range ss.Spans {
				v := q.eval(e.Expr, t, s, nil, nil)
				if v.Type() == TypeNil {
					continue
				}
				if _, ok := groups[v]; !ok {
					order = append(order, v)
				}
				groups[v] = append(groups[v], s)
			}
			for _, v := range order {
				attrs := append(append([]NamedValue(nil), ss.Attributes...), NamedValue{name, v})
				out = append(out, Spanset{Spans: groups[v], Attributes: attrs, Selected: ss.Selected})
			}
		}
	case *Coalesce:
		all := Spanset{Spans: union(t, in)}
		for _, ss := range in {
			all.Selected = append(all.Selected, ss.Selected...)
		}
		return []Spanset{all}
	case *Select:
		for _, ss := range in {
			ss.Selected = append(append([]Field(nil), ss.Selected...), e.Fields...)
			out = append(out, ss)
		}
	}
	return out
}

// union is the spans of the spansets, each once, in trace order.
func union(t *Trace, sets []Spanset) []*Span {
	if len(sets) == 1 {
		return sets[0].Spans
	}
	in := make([]bool, len(t.Spans))
	n := 0
	for _, ss := range sets {
		for _, s := range ss.Spans {
			if !in[s.idx] {
				in[s.idx] = true
				n++
			}
		}
	}
	out := make([]*Span, 0, n)
	for i, ok := range in {
		if ok {
			out = append(out, t.Spans[i])
		}
	}
	return out
}

// combine applies a spanset operator to its two sides' spans.
func combine(op string, t *Trace, l, r []*Span) []*Span {
	switch op {
	case "&&":
		if len(l) == 0 || len(r) == 0 {
			return nil
		}
		return union(t, []Spanset{{Spans: l}, {Spans: r}})
	case "||":
		return union(t, []Spanset{{Spans: l}, {Spans: r}})
	}
	inL := make([]bool, len(t.Spans))
	for _, s := range l {
		inL[s.idx] = true
	}
	base := strings.TrimLeft(op, "!&")
	// related reports whether r stands in the relation to some span of
	// the left side, and calls with on each such left span.
	related := func(s *Span, with func(*Span)) bool {
		found := false
		switch base {
		case ">": // s is a child of a left span
			if p := s.parent; p != nil && inL[p.idx] {
				found = true
				with(p)
			}
		case "<": // s is the parent of a left span
			for _, c := range s.children {
				if inL[c.idx] {
					found = true
					with(c)
				}
			}
		case ">>": // s descends from a left span
			for p, n := s.parent, 0; p != nil && n < len(t.Spans); p, n = p.parent, n+1 {
				if inL[p.idx] {
					found = true
					with(p)
				}
			}
		case "<<": // s is an ancestor of a left span
			descendants(s, len(t.Spans), func(d *Span) {
				if inL[d.idx] {
					found = true
					with(d)
				}
			})
		case "~": // s shares its parent with a left span
			if p := s.parent; p != nil {
				for _, c := range p.children {
					if c != s && inL[c.idx] {
						found = true
						with(c)
					}
				}
			}
		}
		return found
	}
	keep := make([]bool, len(t.Spans))
	for _, s := range r {
		var partners []*Span
		ok := related(s, func(p *Span) { partners = append(partners, p) })
		switch {
		case op[0] == '!':
			keep[s.idx] = keep[s.idx] || !ok
		case ok:
			keep[s.idx] = true
			if op[0] == '&' {
				for _, p := range partners {
					keep[p.idx] = true
				}
			}
		}
	}
	var out []*Span
	for i, k := range keep {
		if k {
			out = append(out, t.Spans[i])
		}
	}
	return out
}

// descendants calls fn on every span below s (at most limit of them: a
// cycle in hostile data ends there).
func descendants(s *Span, limit int, fn func(*Span)) {
	stack := append([]*Span(nil), s.children...)
	for n := 0; len(stack) > 0 && n < limit; n++ {
		d := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		fn(d)
		stack = append(stack, d.children...)
	}
}

func (q *Query) aggregate(a *Aggregate, t *Trace, spans []*Span) Value {
	if a.Fn == "count" {
		return Int(int64(len(spans)))
	}
	var acc Value
	n := 0
	for _, s := range spans {
		v := q.eval(a.Arg, t, s, nil, nil)
		if _, ok := v.number(); !ok {
			continue
		}
		n++
		switch {
		case n == 1:
			acc = v
		case a.Fn == "sum" || a.Fn == "avg":
			acc = arithmetic("+", acc, v)
		case a.Fn == "min" && compare("<", v, acc, nil), a.Fn == "max" && compare(">", v, acc, nil):
			acc = v
		}
	}
	if n == 0 {
		return Value{}
	}
	if a.Fn == "avg" {
		f, _ := acc.number()
		if acc.Type() == TypeDuration {
			return duration(int64(f / float64(n)))
		}
		return Float(f / float64(n))
	}
	return acc
}
