package traceql

import (
	"cmp"
	"math"
	"regexp"
	"slices"
	"strconv"
)

// Span is one span as TraceQL sees it: OpenTelemetry's model.
type Span struct {
	ID, ParentID  string // 16 hex digits; ParentID "" for a root
	Name          string
	Kind          string // unspecified, internal, server, client, producer, consumer
	Status        string // unset, ok, error
	StatusMessage string
	Start, End    int64 // unix nanoseconds
	Attrs         map[string]Value
	Resource      map[string]Value
	ScopeName     string
	ScopeVersion  string
	ScopeAttrs    map[string]Value
	Events        []Event
	Links         []Link
	TraceState    string // W3C tracestate; not searchable, kept for OTLP answers

	idx      int // position in its trace
	parent   *Span
	children []*Span
	// Tempo's nested set model of the tree: left and right numbers of a
	// depth-first walk from the roots, and the parent's left (-1 for a
	// root); all 0 for a span no root reaches (its parent is missing).
	nsLeft, nsRight, nsParent int64
}

// Event is a span event (a Zipkin annotation).
type Event struct {
	Name  string
	Time  int64 // unix nanoseconds
	Attrs map[string]Value
}

// Link is a span link.
type Link struct {
	TraceID, SpanID string
	TraceState      string
	Attrs           map[string]Value
}

// Trace is a trace's spans, linked to their parents.
type Trace struct {
	ID         string // 32 hex digits
	Spans      []*Span
	Root       *Span // nil when the root span is missing
	Start, End int64 // first start and last end, unix nanoseconds
}

// NewTrace links spans to their parents and children, and finds the root
// and the trace's extent.
func NewTrace(id string, spans []*Span) *Trace {
	t := &Trace{ID: id, Spans: spans}
	byID := make(map[string]*Span, len(spans))
	for i, s := range spans {
		s.idx, s.parent, s.children = i, nil, nil
		byID[s.ID] = s
		if i == 0 || s.Start < t.Start {
			t.Start = s.Start
		}
		t.End = max(t.End, s.End)
	}
	for _, s := range spans {
		s.nsLeft, s.nsRight, s.nsParent = 0, 0, 0
		if p := byID[s.ParentID]; s.ParentID != "" && p != nil && p != s {
			s.parent = p
			p.children = append(p.children, s)
		} else if s.ParentID == "" && (t.Root == nil || s.Start < t.Root.Start) {
			t.Root = s
		}
	}
	t.numberNestedSets()
	return t
}

// numberNestedSets gives each span reached from a root (a span without a
// parent ID) its nested set numbers, one counter over all roots in start
// order; a span visited once only, whatever cycles of parent IDs exist.
func (t *Trace) numberNestedSets() {
	roots := make([]*Span, 0, 1)
	for _, s := range t.Spans {
		if s.ParentID == "" {
			roots = append(roots, s)
		}
	}
	slices.SortStableFunc(roots, func(a, b *Span) int { return cmp.Compare(a.Start, b.Start) })
	n := int64(0)
	var walk func(s *Span, parent int64)
	walk = func(s *Span, parent int64) {
		n++
		s.nsLeft, s.nsParent = n, parent
		for _, c := range s.children {
			if c.nsLeft == 0 {
				walk(c, s.nsLeft)
			}
		}
		n++
		s.nsRight = n
	}
	for _, r := range roots {
		if r.nsLeft == 0 {
			walk(r, -1)
		}
	}
}

// Value is a field's value on one span; its zero value is nil.
type Value struct {
	t Type
	s string
	i int64
	f float64
	b bool
}

// Constructors of attribute values.
func Str(s string) Value     { return Value{t: TypeString, s: s} }
func Int(i int64) Value      { return Value{t: TypeInt, i: i} }
func Float(f float64) Value  { return Value{t: TypeFloat, f: f} }
func Bool(b bool) Value      { return Value{t: TypeBool, b: b} }
func duration(d int64) Value { return Value{t: TypeDuration, i: d} }

// Type is the value's type (TypeNil when absent).
func (v Value) Type() Type {
	if v.t == TypeAny {
		return TypeNil
	}
	return v.t
}

// String is the value as Tempo's search answers print it.
func (v Value) String() string {
	switch v.Type() {
	case TypeString, TypeStatus, TypeKind:
		return v.s
	case TypeInt, TypeDuration:
		return strconv.FormatInt(v.i, 10)
	case TypeFloat:
		return strconv.FormatFloat(v.f, 'g', -1, 64)
	case TypeBool:
		return strconv.FormatBool(v.b)
	}
	return "nil"
}

// Native is the value as a JSON-encodable Go value.
func (v Value) Native() any {
	switch v.Type() {
	case TypeInt, TypeDuration:
		return v.i
	case TypeFloat:
		return v.f
	case TypeBool:
		return v.b
	case TypeNil:
		return nil
	}
	return v.s
}

func value(s *Static) Value {
	switch s.Type {
	case TypeNil:
		return Value{}
	case TypeInt, TypeDuration:
		return Value{t: s.Type, i: s.I}
	case TypeFloat:
		return Value{t: TypeFloat, f: s.F}
	case TypeBool:
		return Value{t: TypeBool, b: s.B}
	}
	return Value{t: s.Type, s: s.S}
}

// Number is v as a number: ints and floats as they are, durations in
// nanoseconds; false for anything else.
func (v Value) Number() (float64, bool) { return v.number() }

func (v Value) number() (float64, bool) {
	switch v.Type() {
	case TypeInt, TypeDuration:
		return float64(v.i), true
	case TypeFloat:
		return v.f, true
	}
	return 0, false
}

// arithmetic is a op b on numbers; anything else is nil. Integers stay
// integers (but / and ^ give floats); a duration makes a duration.
func arithmetic(op string, a, b Value) Value {
	af, aok := a.number()
	bf, bok := b.number()
	if !aok || !bok {
		return Value{}
	}
	ints := a.Type() != TypeFloat && b.Type() != TypeFloat
	dur := a.Type() == TypeDuration || b.Type() == TypeDuration
	if ints && op != "/" && op != "^" {
		var r int64
		switch op {
		case "+":
			r = a.i + b.i
		case "-":
			r = a.i - b.i
		case "*":
			r = a.i * b.i
		case "%":
			if b.i == 0 {
				return Value{}
			}
			r = a.i % b.i
		}
		if dur {
			return duration(r)
		}
		return Int(r)
	}
	var r float64
	switch op {
	case "+":
		r = af + bf
	case "-":
		r = af - bf
	case "*":
		r = af * bf
	case "/":
		if bf == 0 {
			return Value{}
		}
		r = af / bf
	case "%":
		r = math.Mod(af, bf)
	case "^":
		r = math.Pow(af, bf)
	}
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return Value{}
	}
	if dur {
		return duration(int64(r))
	}
	return Float(r)
}

// compare applies a comparison; false whenever the types do not meet
// (a string attribute is never > 500: Zipkin's tags stay strings).
func compare(op string, a, b Value, re *regexp.Regexp) bool {
	if a.Type() == TypeNil || b.Type() == TypeNil {
		return false // an absent value matches nothing, != included, as in Tempo (= nil is the evaluator's)
	}
	if op == "=~" || op == "!~" {
		if a.Type() != TypeString || re == nil {
			return false
		}
		return re.MatchString(a.s) == (op == "=~")
	}
	var c int
	switch {
	case (a.Type() == TypeInt || a.Type() == TypeDuration) && (b.Type() == TypeInt || b.Type() == TypeDuration):
		c = cmp.Compare(a.i, b.i)
	case a.Type() != b.Type():
		af, aok := a.number()
		bf, bok := b.number()
		if !aok || !bok {
			return false
		}
		c = cmp.Compare(af, bf)
	case a.Type() == TypeFloat:
		c = cmp.Compare(a.f, b.f)
	case a.Type() == TypeBool:
		if op != "=" && op != "!=" {
			return false
		}
		c = cmp.Compare(btoi(a.b), btoi(b.b))
	default: // strings, status, kind
		c = cmp.Compare(a.s, b.s)
	}
	switch op {
	case "=":
		return c == 0
	case "!=":
		return c != 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	}
	return false
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
