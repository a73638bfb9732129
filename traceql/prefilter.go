package traceql

import (
	"fmt"
	"regexp"
	"slices"
)

// A Prefilter decides, from a block's span columns (columns.go), which of
// its traces may be answers: every answer has a span satisfying one filter
// the whole query requires, so a trace none of whose spans in any block
// may satisfy it is no answer. A span is decided the way eval decides it,
// on the fields the columns hold; where the filter reads a field they do
// not (a resource attribute, an event, the trace's root), or an unscoped
// attribute the span lacks (it may be the resource's), the span "may"
// satisfy it. A trace that may match is then read whole and decided
// exactly, so the prefilter only has to never say no wrongly:
// TestPrefilterNeverDropsAMatch holds it to that against eval.
type Prefilter struct {
	q       *Query
	expr    Field
	columns []string // "trace" first
	// memo holds each comparison's outcome on values already decided: a
	// dictionary repeats from block to block (paths, names), and a
	// regular expression costs far more than a map lookup.
	memo map[*Binary]map[string]uint8 // by the value's encoding
	// scratch[i] is the memory section i+1 decodes into.
	scratch []scratch
}

// memoLimit bounds the values remembered per comparison.
const memoLimit = 1 << 16

// Prefilter is the query's prefilter; nil when no filter the query
// requires reads a field the columns hold (nothing would be saved).
func (q *Query) Prefilter() *Prefilter {
	for _, f := range required(q.Tree) {
		cols := []string{colTrace}
		eachField(f.Expr, func(x Field) {
			if c := columnOf(x); c != "" && !slices.Contains(cols, c) {
				cols = append(cols, c)
			}
		})
		if len(cols) > 1 {
			return &Prefilter{q: q, expr: f.Expr, columns: cols, memo: map[*Binary]map[string]uint8{}}
		}
	}
	return nil
}

// Columns are the sections the prefilter reads, "trace" first.
func (p *Prefilter) Columns() []string { return p.columns }

// String is the filter it decides by.
func (p *Prefilter) String() string { return "{ " + FieldString(p.expr) + " }" }

// Outcomes of a span: the filter's expression is true, false (or not a
// boolean: no match either), or may be either.
const (
	no    uint8 = iota // false
	yes                // true
	none               // known, not a boolean (nil, a number...)
	maybe              // reads a field the columns do not hold
)

// block is a decoded block: its spans' columns, by field.
type block struct {
	n    int
	cols map[string]*column // nil: the block has no such section (no span has it)
}

// Traces reads a block of spans spans from the sections Columns names (a
// nil section: the block has none) and returns the IDs of the traces that
// may match, each once.
func (p *Prefilter) Traces(spans int, sections [][]byte) ([][16]byte, error) {
	if len(sections) != len(p.columns) || sections[0] == nil {
		return nil, fmt.Errorf("%w: want sections %v", errColumns, p.columns)
	}
	if p.scratch == nil {
		p.scratch = make([]scratch, len(p.columns)-1)
	}
	b := &block{n: spans, cols: map[string]*column{}}
	for i, name := range p.columns[1:] {
		if sec := sections[i+1]; sec != nil {
			c, err := decodeColumn(name, sec, spans, &p.scratch[i])
			if err != nil {
				return nil, err
			}
			b.cols[name] = c
		}
	}
	out := p.vec(p.expr, b)
	// The traces are read only for a block with a candidate: a scan that
	// rules out a block whole reads none of its IDs.
	if !slices.ContainsFunc(out, func(o uint8) bool { return o == yes || o == maybe }) {
		return nil, nil
	}
	ids, of, err := decodeTraces(sections[0], spans)
	if err != nil {
		return nil, err
	}
	seen := make([]bool, len(ids))
	var res [][16]byte
	for i, o := range out {
		if (o == yes || o == maybe) && !seen[of[i]] {
			seen[of[i]] = true
			res = append(res, ids[of[i]])
		}
	}
	return res, nil
}

// vec decides f for every span of b.
func (p *Prefilter) vec(f Field, b *block) []uint8 {
	switch f := f.(type) {
	case *Binary:
		switch f.Op {
		case "&&", "||":
			l, r := p.vec(f.L, b), p.vec(f.R, b)
			for i := range l {
				l[i] = logic(f.Op, l[i], r[i])
			}
			return l
		case "=", "!=", "<", "<=", ">", ">=", "=~", "!~":
			if out, ok := p.leaf(f, b); ok {
				return out
			}
		}
	case *Unary:
		if f.Op == "!" {
			x := p.vec(f.X, b)
			for i, o := range x {
				switch o {
				case yes:
					x[i] = no
				case no:
					x[i] = yes
				}
			}
			return x
		}
	}
	out := make([]uint8, b.n)
	for i := range out {
		v, ok := p.eval(f, b, i)
		out[i] = outcome(v, ok)
	}
	return out
}

func outcome(v Value, known bool) uint8 {
	switch {
	case !known:
		return maybe
	case v.Type() != TypeBool:
		return none
	case v.b:
		return yes
	}
	return no
}

// logic is eval's && and || on outcomes: always a boolean once known.
func logic(op string, a, b uint8) uint8 {
	if op == "&&" {
		switch {
		case a == yes && b == yes:
			return yes
		case a == no || a == none || b == no || b == none:
			return no
		}
		return maybe
	}
	switch {
	case a == yes || b == yes:
		return yes
	case a == maybe || b == maybe:
		return maybe
	}
	return no
}

// leaf decides a comparison of a dictionary column with a constant once
// per distinct value (a regular expression runs once per path, not once
// per span), or of the duration column span by span.
func (p *Prefilter) leaf(f *Binary, b *block) ([]uint8, bool) {
	field, static, swapped := f.L, f.R, false
	if _, ok := field.(*Static); ok {
		field, static, swapped = f.R, f.L, true
	}
	s, ok := static.(*Static)
	name := columnOf(field)
	if !ok || name == "" {
		return nil, false
	}
	if a, ok := field.(*Attribute); ok && a.Scope == "" {
		return nil, false // a span without it may have the resource's: eval decides
	}
	c := b.cols[name]
	decide := func(v Value) uint8 {
		l, r := v, value(s)
		if swapped {
			l, r = r, l
		}
		return outcome(p.compare(f, l, r), true)
	}
	out := make([]uint8, b.n)
	switch {
	case c == nil:
		o := decide(Value{})
		for i := range out {
			out[i] = o
		}
	case c.ints != nil:
		if cmp, ok := intComparison(f.Op, s, swapped); ok {
			for i, d := range c.ints {
				out[i] = no
				if cmp(d) {
					out[i] = yes
				}
			}
			break
		}
		for i, d := range c.ints {
			out[i] = decide(duration(d))
		}
	default:
		memo := p.memo[f]
		if memo == nil {
			memo = map[string]uint8{}
			p.memo[f] = memo
		}
		table := make([]uint8, c.entries()+1)
		table[0] = decide(Value{})
		for i := range c.entries() {
			e := c.bytes(i)
			o, ok := memo[string(e)]
			if !ok {
				o = decide(c.entry(i))
				if len(memo) < memoLimit {
					memo[string(e)] = o
				}
			}
			table[i+1] = o
		}
		for i, code := range c.codes {
			out[i] = table[code]
		}
	}
	return out, true
}

// compare is eval's comparison of a and b, the values of f's sides.
func (p *Prefilter) compare(f *Binary, a, b Value) Value {
	if isNil(f.L) || isNil(f.R) {
		absent := a.Type() == TypeNil && b.Type() == TypeNil
		return Bool(absent == (f.Op == "="))
	}
	var re *regexp.Regexp
	if r, ok := f.R.(*Static); ok && (f.Op == "=~" || f.Op == "!~") {
		re = p.q.res[r.S]
	}
	return Bool(compare(f.Op, a, b, re))
}

// eval is Query.eval on span i of b, and whether the columns decide it.
func (p *Prefilter) eval(f Field, b *block, i int) (Value, bool) {
	switch f := f.(type) {
	case *Static:
		return value(f), true
	case *Attribute, *Intrinsic:
		name := columnOf(f)
		if name == "" {
			return Value{}, false
		}
		c := b.cols[name]
		var v Value
		if c != nil {
			v = c.value(i)
		}
		if a, ok := f.(*Attribute); ok && a.Scope == "" && v.Type() == TypeNil {
			return Value{}, false // may be the resource's
		}
		return v, true
	case *Unary:
		x, ok := p.eval(f.X, b, i)
		if !ok {
			return Value{}, false
		}
		switch {
		case f.Op == "!" && x.Type() == TypeBool:
			return Bool(!x.b), true
		case f.Op == "-":
			return arithmetic("*", x, Int(-1)), true
		}
		return Value{}, true
	case *Binary:
		switch f.Op {
		case "&&", "||":
			o := logic(f.Op, outcome(p.eval(f.L, b, i)), outcome(p.eval(f.R, b, i)))
			if o == maybe {
				return Value{}, false
			}
			return Bool(o == yes), true
		case "+", "-", "*", "/", "%", "^":
			l, lok := p.eval(f.L, b, i)
			r, rok := p.eval(f.R, b, i)
			if !lok || !rok {
				return Value{}, false
			}
			return arithmetic(f.Op, l, r), true
		}
		l, lok := p.eval(f.L, b, i)
		r, rok := p.eval(f.R, b, i)
		if !lok || !rok {
			return Value{}, false
		}
		return p.compare(f, l, r), true
	}
	return Value{}, false
}

// intComparison is compare's comparison of a duration with an integer or
// duration constant k, as a function of the duration: a scan's duration
// test costs a comparison a span, not a Value.
func intComparison(op string, k *Static, swapped bool) (func(int64) bool, bool) {
	if k.Type != TypeInt && k.Type != TypeDuration {
		return nil, false
	}
	if swapped { // k op d is d op' k
		switch op {
		case "<":
			op = ">"
		case "<=":
			op = ">="
		case ">":
			op = "<"
		case ">=":
			op = "<="
		}
	}
	v := k.I
	switch op {
	case "=":
		return func(d int64) bool { return d == v }, true
	case "!=":
		return func(d int64) bool { return d != v }, true
	case "<":
		return func(d int64) bool { return d < v }, true
	case "<=":
		return func(d int64) bool { return d <= v }, true
	case ">":
		return func(d int64) bool { return d > v }, true
	case ">=":
		return func(d int64) bool { return d >= v }, true
	}
	return nil, false
}
