package traceql

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
)

// MaxQueryBytes bounds a query's length: the parser is recursive, and a
// query longer than this is not a search anyone types.
const MaxQueryBytes = 64 << 10

// maxTreeDepth bounds the tree's depth, and maxDepth the parser's
// recursion (parentheses, braces, unary operators), so a hostile query
// cannot exhaust the stack; a tree within maxTreeDepth prints with at most
// two recursions a level, so its printed form parses again.
const (
	maxTreeDepth = 100
	maxDepth     = 4 * maxTreeDepth
)

// Parse reads a TraceQL search query into its tree and checks its types.
// Every error is an *Error: invalid (with the position and the reason) or
// unsupported (naming the construct).
func Parse(q string) (*Pipeline, error) {
	toks, err := lexQuery(q)
	if err != nil {
		return nil, err
	}
	for i, t := range toks[:len(toks)-1] {
		if t.kind == tIdent && metricsFunctions[t.text] && toks[i+1].kind == tLParen {
			return nil, &Error{Pos: t.pos, Unsupported: true, Msg: fmt.Sprintf("TraceQL metrics (%s()) in a search: query /api/metrics/query_range", t.text)}
		}
	}
	return parseSearch(toks, "the end of the query")
}

// lexQuery is q's tokens, q within MaxQueryBytes.
func lexQuery(q string) ([]token, error) {
	if len(q) > MaxQueryBytes {
		return nil, &Error{Pos: MaxQueryBytes, Msg: fmt.Sprintf("query is %d bytes, the limit is %d", len(q), MaxQueryBytes)}
	}
	return lex(q)
}

// parseSearch reads toks (ending in tEOF) as one search pipeline; what
// follows it is unexpected, where after was wanted.
func parseSearch(toks []token, after string) (*Pipeline, error) {
	p := &parser{toks: toks}
	pl, err := p.pipeline(true)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.unexpected(t, after)
	}
	if len(pl.Elements) == 1 {
		if _, ok := pl.Elements[0].(*Pipeline); ok {
			pl = pl.Elements[0].(*Pipeline)
		}
	}
	if d := depth(pl); d > maxTreeDepth {
		return nil, &Error{Pos: 0, Msg: fmt.Sprintf("the query nests %d deep, the limit is %d", d, maxTreeDepth)}
	}
	return pl, nil
}

// depth is the depth of a tree: elements and field expressions.
func depth(e Element) int {
	var field func(Field) int
	field = func(f Field) int {
		switch f := f.(type) {
		case *Binary:
			return 1 + max(field(f.L), field(f.R))
		case *Unary:
			return 1 + field(f.X)
		}
		return 1
	}
	switch e := e.(type) {
	case *Pipeline:
		d := 0
		for _, x := range e.Elements {
			d = max(d, depth(x))
		}
		return 1 + d
	case *Filter:
		if e.Expr == nil {
			return 1
		}
		return 1 + field(e.Expr)
	case *SpansetOp:
		return 1 + max(depth(e.L), depth(e.R))
	case *ScalarFilter:
		if a, ok := e.L.(*Aggregate); ok && a.Arg != nil {
			return 2 + field(a.Arg)
		}
	case *GroupBy:
		return 1 + field(e.Expr)
	case *Select:
		d := 0
		for _, f := range e.Fields {
			d = max(d, field(f))
		}
		return 1 + d
	}
	return 1
}

type parser struct {
	toks  []token
	i     int
	depth int
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token { t := p.toks[p.i]; p.i = min(p.i+1, len(p.toks)-1); return t }

func (p *parser) isOp(ops ...string) bool {
	t := p.peek()
	return t.kind == tOp && slices.Contains(ops, t.text)
}

func (p *parser) unexpected(t token, want string) *Error {
	got := fmt.Sprintf("unexpected %q", t.text)
	if t.kind == tEOF {
		got = "the query ends"
	}
	return &Error{Pos: t.pos, Msg: fmt.Sprintf("%s, want %s", got, want)}
}

func (p *parser) expect(k tokKind, want string) (token, error) {
	t := p.peek()
	if t.kind != k {
		return t, p.unexpected(t, want)
	}
	return p.next(), nil
}

func (p *parser) enter(t token) error {
	p.depth++
	if p.depth > maxDepth {
		return &Error{Pos: t.pos, Msg: fmt.Sprintf("nested more than %d deep", maxDepth)}
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

// metricsFunctions are TraceQL metrics; search does not answer them.
var metricsFunctions = map[string]bool{"rate": true, "count_over_time": true, "min_over_time": true, "max_over_time": true,
	"avg_over_time": true, "sum_over_time": true, "quantile_over_time": true, "histogram_over_time": true, "compare": true,
	"topk": true, "bottomk": true}

var aggregates = map[string]bool{"count": true, "avg": true, "min": true, "max": true, "sum": true}

// pipeline reads elements joined by |.
func (p *parser) pipeline(first bool) (*Pipeline, error) {
	pl := &Pipeline{}
	for {
		e, err := p.element(first && len(pl.Elements) == 0)
		if err != nil {
			return nil, err
		}
		pl.Elements = append(pl.Elements, e)
		if p.peek().kind != tPipe {
			return pl, nil
		}
		p.next()
	}
}

func (p *parser) element(first bool) (Element, error) {
	t := p.peek()
	switch {
	case t.kind == tLBrace || t.kind == tLParen:
		return p.spansetExpr()
	case t.kind == tIdent && metricsFunctions[t.text]:
		return nil, &Error{Pos: t.pos, Unsupported: true, Msg: fmt.Sprintf("TraceQL metrics (%s()) in a search: query /api/metrics/query_range", t.text)}
	case t.kind == tIdent && aggregates[t.text]:
		return p.scalarFilter()
	case t.kind == tIdent && t.text == "by":
		p.next()
		args, err := p.fieldArgs(t, 1)
		if err != nil {
			return nil, err
		}
		if !referencesSpan(args[0]) {
			return nil, &Error{Pos: t.pos, Msg: "by() must group by a span's field, not a constant"}
		}
		return &GroupBy{Expr: args[0]}, nil
	case t.kind == tIdent && t.text == "select":
		p.next()
		args, err := p.fieldArgs(t, -1)
		if err != nil {
			return nil, err
		}
		for _, a := range args {
			switch a.(type) {
			case *Attribute, *Intrinsic:
			default:
				return nil, &Error{Pos: t.pos, Msg: "select() takes attributes and intrinsics"}
			}
		}
		return &Select{Fields: args}, nil
	case t.kind == tIdent && t.text == "coalesce":
		if first {
			return nil, &Error{Pos: t.pos, Msg: "a pipeline cannot start with coalesce()"}
		}
		p.next()
		if _, err := p.expect(tLParen, "("); err != nil {
			return nil, err
		}
		if _, err := p.expect(tRParen, ")"); err != nil {
			return nil, err
		}
		return &Coalesce{}, nil
	}
	return nil, p.unexpected(t, "a spanset filter { ... }, an aggregate such as count() > 1, by(), select() or coalesce()")
}

// fieldArgs reads ( field, ... ): n of them, or at least one when n < 0.
func (p *parser) fieldArgs(fn token, n int) ([]Field, error) {
	if _, err := p.expect(tLParen, "( after "+fn.text); err != nil {
		return nil, err
	}
	var args []Field
	for {
		if p.peek().kind == tRParen && len(args) == 0 {
			return nil, p.unexpected(p.peek(), "an argument of "+fn.text+"()")
		}
		f, err := p.field()
		if err != nil {
			return nil, err
		}
		if _, err := check(f, p.peek().pos); err != nil {
			return nil, err
		}
		args = append(args, f)
		if p.peek().kind != tComma {
			break
		}
		p.next()
	}
	if n > 0 && len(args) != n {
		return nil, &Error{Pos: fn.pos, Msg: fmt.Sprintf("%s() takes %d argument(s), got %d", fn.text, n, len(args))}
	}
	if _, err := p.expect(tRParen, ") closing "+fn.text+"("); err != nil {
		return nil, err
	}
	return args, nil
}

var logicalOps = []string{"&&", "||"}
var structuralOps = []string{">", "<", ">>", "<<", "~", "!>", "!<", "!>>", "!<<", "!~", "&>", "&<", "&>>", "&<<", "&~"}

// spansetExpr: spanset terms joined by && and || (one precedence, left
// to right, as in Tempo's grammar), each term spanset primaries joined by
// structural operators (binding tighter).
func (p *parser) spansetExpr() (Element, error) {
	return leftAssoc(p, logicalOps, p.spansetTerm, joinSpansets)
}

func (p *parser) spansetTerm() (Element, error) {
	return leftAssoc(p, structuralOps, p.spansetPrimary, joinSpansets)
}

func joinSpansets(op string, l, r Element) Element { return &SpansetOp{Op: op, L: l, R: r} }
func joinFields(op string, l, r Field) Field       { return &Binary{Op: op, L: l, R: r} }

// leftAssoc reads operands joined by any of ops, left to right.
func leftAssoc[T any](p *parser, ops []string, operand func() (T, error), join func(op string, l, r T) T) (T, error) {
	l, err := operand()
	if err != nil {
		return l, err
	}
	for p.isOp(ops...) {
		op := p.next().text
		r, err := operand()
		if err != nil {
			return r, err
		}
		l = join(op, l, r)
	}
	return l, nil
}

func (p *parser) spansetPrimary() (Element, error) {
	t := p.peek()
	if err := p.enter(t); err != nil {
		return nil, err
	}
	defer p.leave()
	switch t.kind {
	case tLBrace:
		p.next()
		if p.peek().kind == tRBrace {
			p.next()
			return &Filter{}, nil
		}
		f, err := p.field()
		if err != nil {
			return nil, err
		}
		end, err := p.expect(tRBrace, "} closing the spanset filter")
		if err != nil {
			return nil, err
		}
		typ, err := check(f, t.pos)
		if err != nil {
			return nil, err
		}
		if typ != TypeBool && typ != TypeAny {
			return nil, &Error{Pos: t.pos, Msg: fmt.Sprintf("a spanset filter must be a condition, this one is a %s (%s)", typ, strings.TrimSpace(fieldString(f)))}
		}
		_ = end
		return &Filter{Expr: f}, nil
	case tLParen:
		p.next()
		pl, err := p.pipeline(true)
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tRParen, ") closing the parenthesis"); err != nil {
			return nil, err
		}
		if len(pl.Elements) == 1 {
			switch pl.Elements[0].(type) {
			case *Filter, *SpansetOp, *Pipeline:
				return pl.Elements[0], nil
			}
			return nil, &Error{Pos: t.pos, Msg: "only spanset expressions and pipelines can be combined with spanset operators"}
		}
		return pl, nil
	}
	return nil, p.unexpected(t, "{ or (")
}

// scalarFilter: aggregate op number, or number op aggregate is not
// allowed (the constant goes on the right, as in Tempo).
func (p *parser) scalarFilter() (Element, error) {
	start := p.peek()
	l, err := p.scalarExpr()
	if err != nil {
		return nil, err
	}
	if !p.isOp("=", "!=", "<", "<=", ">", ">=") {
		return nil, p.unexpected(p.peek(), "a comparison (= != < <= > >=) after "+scalarString(l))
	}
	op := p.next().text
	r, err := p.scalarExpr()
	if err != nil {
		return nil, err
	}
	if p.isOp("+", "-", "*", "/", "%", "^") || p.isOp("&&", "||") {
		return nil, p.unexpected(p.peek(), "| or the end of the query after a scalar filter")
	}
	la, lAgg := l.(*Aggregate)
	_, rAgg := r.(*Aggregate)
	switch {
	case !lAgg:
		return nil, &Error{Pos: start.pos, Msg: "a scalar filter starts with an aggregate"}
	case rAgg:
		return nil, &Error{Pos: start.pos, Unsupported: true, Msg: "comparing two aggregates"}
	}
	if la.Arg != nil && !referencesSpan(la.Arg) {
		return nil, &Error{Pos: start.pos, Msg: fmt.Sprintf("%s() must aggregate a span's field, not a constant", la.Fn)}
	}
	return &ScalarFilter{Op: op, L: l, R: r}, nil
}

// scalarExpr reads an aggregate, or a number folded from constant
// arithmetic (1 - 3, 10 * 1024); other arithmetic over aggregates is
// not supported.
func (p *parser) scalarExpr() (Scalar, error) {
	t := p.peek()
	if t.kind == tIdent && aggregates[t.text] {
		p.next()
		if t.text == "count" {
			if _, err := p.expect(tLParen, "( after count"); err != nil {
				return nil, err
			}
			if _, err := p.expect(tRParen, ") (count takes no argument)"); err != nil {
				return nil, err
			}
			return p.noScalarArithmetic(&Aggregate{Fn: "count"})
		}
		args, err := p.fieldArgs(t, 1)
		if err != nil {
			return nil, err
		}
		typ, _ := check(args[0], t.pos)
		if !typ.numeric() && typ != TypeAny {
			return nil, &Error{Pos: t.pos, Msg: fmt.Sprintf("%s() needs a number, %s is a %s", t.text, fieldString(args[0]), typ)}
		}
		if a, ok := args[0].(*Attribute); ok && a.Scope == "parent" {
			return nil, &Error{Pos: t.pos, Unsupported: true, Msg: "the parent scope"}
		}
		return p.noScalarArithmetic(&Aggregate{Fn: t.text, Arg: args[0]})
	}
	f, err := p.arith()
	if err != nil {
		return nil, err
	}
	s, err := fold(f, t.pos)
	if err != nil {
		return nil, err
	}
	if !s.Type.numeric() {
		return nil, &Error{Pos: t.pos, Msg: fmt.Sprintf("a scalar filter compares numbers, not a %s", s.Type)}
	}
	return s, nil
}

// noScalarArithmetic refuses arithmetic after an aggregate: unsupported
// when a comparison follows (Tempo plans it), invalid otherwise (a scalar
// filter must compare).
func (p *parser) noScalarArithmetic(a *Aggregate) (Scalar, error) {
	t := p.peek()
	if !p.isOp("+", "-", "*", "/", "%", "^") {
		return a, nil
	}
	for _, u := range p.toks[p.i:] {
		if u.kind == tPipe || u.kind == tEOF {
			break
		}
		if u.kind == tOp && slices.Contains(comparisonOps[:6], u.text) {
			return nil, &Error{Pos: t.pos, Unsupported: true, Msg: "arithmetic on aggregates"}
		}
	}
	return nil, &Error{Pos: t.pos, Msg: "a scalar filter compares an aggregate with a number: " + scalarString(a) + " " + t.text + " ... has no comparison"}
}

// fold evaluates constant arithmetic to a number.
func fold(f Field, pos int) (*Static, error) {
	switch f := f.(type) {
	case *Static:
		return f, nil
	case *Unary:
		x, err := fold(f.X, pos)
		if err != nil {
			return nil, err
		}
		if f.Op != "-" || !x.Type.numeric() {
			return nil, &Error{Pos: pos, Msg: "not a number: " + fieldString(f)}
		}
		return negate(x), nil
	case *Binary:
		l, err := fold(f.L, pos)
		if err != nil {
			return nil, err
		}
		r, err := fold(f.R, pos)
		if err != nil {
			return nil, err
		}
		v := arithmetic(f.Op, value(l), value(r))
		switch {
		case v.t == TypeInt, v.t == TypeDuration:
			return &Static{Type: v.t, I: v.i}, nil
		case v.t == TypeFloat && !math.IsInf(v.f, 0) && !math.IsNaN(v.f):
			return &Static{Type: TypeFloat, F: v.f}, nil
		}
		return nil, &Error{Pos: pos, Msg: "not a number: " + fieldString(f)}
	}
	return nil, &Error{Pos: pos, Msg: "a scalar filter compares an aggregate with a number, not " + fieldString(f)}
}

func negate(s *Static) *Static {
	n := *s
	n.I, n.F = -s.I, -s.F
	return &n
}

// Field expressions, loosest first: && || (one level, left to right, as
// in Tempo's grammar); comparisons; + -; * / %; ^ (right); unary ! -.
func (p *parser) field() (Field, error) { return leftAssoc(p, logicalOps, p.comparison, joinFields) }

var comparisonOps = []string{"=", "!=", "<", "<=", ">", ">=", "=~", "!~"}

func (p *parser) comparison() (Field, error) { return leftAssoc(p, comparisonOps, p.arith, joinFields) }
func (p *parser) arith() (Field, error)      { return leftAssoc(p, []string{"+", "-"}, p.term, joinFields) }
func (p *parser) term() (Field, error) {
	return leftAssoc(p, []string{"*", "/", "%"}, p.power, joinFields)
}

func (p *parser) power() (Field, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	if p.isOp("^") {
		p.next()
		r, err := p.power()
		if err != nil {
			return nil, err
		}
		return &Binary{Op: "^", L: l, R: r}, nil
	}
	return l, nil
}

func (p *parser) unary() (Field, error) {
	t := p.peek()
	if err := p.enter(t); err != nil {
		return nil, err
	}
	defer p.leave()
	if p.isOp("!", "-") {
		p.next()
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		// -5 is the number -5, so that printing and parsing agree.
		if s, ok := x.(*Static); ok && t.text == "-" && s.Type.numeric() {
			return negate(s), nil
		}
		return &Unary{Op: t.text, X: x}, nil
	}
	return p.primary()
}

func (p *parser) primary() (Field, error) {
	t := p.next()
	switch t.kind {
	case tLParen:
		f, err := p.field()
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tRParen, ") closing the parenthesis"); err != nil {
			return nil, err
		}
		return f, nil
	case tString:
		return &Static{Type: TypeString, S: t.text}, nil
	case tInt:
		return &Static{Type: TypeInt, I: t.i}, nil
	case tFloat:
		return &Static{Type: TypeFloat, F: t.f}, nil
	case tDuration:
		return &Static{Type: TypeDuration, I: t.i}, nil
	case tAttribute:
		if t.scope == "parent" {
			return nil, &Error{Pos: t.pos, Unsupported: true, Msg: "the parent scope (parent." + t.text + ")"}
		}
		return &Attribute{Scope: t.scope, Name: t.text}, nil
	case tScoped:
		in, ok := intrinsics[t.scope+":"+t.text]
		if !ok {
			return nil, &Error{Pos: t.pos, Msg: fmt.Sprintf("unknown intrinsic %s:%s", t.scope, t.text)}
		}
		return &Intrinsic{Name: in.canon}, nil
	case tIdent:
		switch {
		case t.text == "true" || t.text == "false":
			return &Static{Type: TypeBool, B: t.text == "true"}, nil
		case t.text == "nil":
			return &Static{Type: TypeNil}, nil
		case t.text == "minInt":
			return &Static{Type: TypeInt, I: math.MinInt64}, nil
		case t.text == "maxInt":
			return &Static{Type: TypeInt, I: math.MaxInt64}, nil
		case statuses[t.text]:
			return &Static{Type: TypeStatus, S: t.text}, nil
		case kinds[t.text]:
			return &Static{Type: TypeKind, S: t.text}, nil
		case t.text == "parent":
			return nil, &Error{Pos: t.pos, Unsupported: true, Msg: "the parent intrinsic"}
		}
		if in, ok := intrinsics[t.text]; ok {
			return &Intrinsic{Name: in.canon}, nil
		}
		return nil, &Error{Pos: t.pos, Msg: fmt.Sprintf("unknown name %q: attributes start with a dot or a scope (.%s, span.%s, resource.%s)", t.text, t.text, t.text, t.text)}
	}
	return nil, p.unexpected(t, "a value, an attribute or an intrinsic")
}

// referencesSpan says whether f reads anything of a span.
func referencesSpan(f Field) (found bool) {
	eachField(f, func(f Field) {
		switch f.(type) {
		case *Attribute, *Intrinsic:
			found = true
		}
	})
	return found
}

// check computes f's static type, rejecting what can never be true the
// way Tempo's validation does (1 = "foo", status > ok, !"x", ...), and
// compiles regular expressions once here so a bad one is a 400.
func check(f Field, pos int) (Type, error) {
	bad := func(format string, args ...any) (Type, error) {
		return 0, &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)}
	}
	switch f := f.(type) {
	case *Static:
		return f.Type, nil
	case *Attribute:
		return TypeAny, nil
	case *Intrinsic:
		return intrinsicType(f.Name), nil
	case *Unary:
		x, err := check(f.X, pos)
		if err != nil {
			return 0, err
		}
		switch {
		case f.Op == "!" && (x == TypeBool || x == TypeAny):
			return TypeBool, nil
		case f.Op == "-" && (x.numeric() || x == TypeAny):
			return x, nil
		}
		return bad("%s cannot apply to a %s (%s)", f.Op, x, fieldString(f.X))
	case *Binary:
		l, err := check(f.L, pos)
		if err != nil {
			return 0, err
		}
		r, err := check(f.R, pos)
		if err != nil {
			return 0, err
		}
		switch f.Op {
		case "&&", "||":
			if (l == TypeBool || l == TypeAny) && (r == TypeBool || r == TypeAny) {
				return TypeBool, nil
			}
			return bad("%s joins conditions, not a %s and a %s", f.Op, l, r)
		case "+", "-", "*", "/", "%", "^":
			if (l.numeric() || l == TypeAny) && (r.numeric() || r == TypeAny) {
				switch {
				case l == TypeAny || r == TypeAny:
					return TypeAny, nil
				case l == TypeDuration || r == TypeDuration:
					return TypeDuration, nil
				case l == TypeFloat || r == TypeFloat || f.Op == "/" || f.Op == "^":
					return TypeFloat, nil
				}
				return TypeInt, nil
			}
			return bad("%s takes numbers, not a %s and a %s", f.Op, l, r)
		case "=~", "!~":
			if (l != TypeString && l != TypeAny) || r != TypeString {
				return bad("%s matches a string against a regular expression in quotes", f.Op)
			}
			if s, ok := f.R.(*Static); ok {
				if _, err := regexp.Compile(anchored(s.S)); err != nil {
					return bad("invalid regular expression %q: %v", s.S, err)
				}
			} else {
				return bad("%s needs a regular expression in quotes on its right", f.Op)
			}
			return TypeBool, nil
		default: // = != < <= > >=
			if err := checkComparable(f, l, r); err != nil {
				return bad("%s", err)
			}
			return TypeBool, nil
		}
	}
	return bad("unexpected expression")
}

func checkComparable(f *Binary, l, r Type) error {
	if l == TypeNil || r == TypeNil {
		other, otherType := f.R, r
		if l != TypeNil {
			other, otherType = f.L, l
		}
		// Tempo refuses resource.service.name = nil (every resource has
		// one) but takes != nil, which Grafana's Traces Drilldown sends.
		if a, ok := other.(*Attribute); ok && a.Scope == "resource" && a.Name == "service.name" && f.Op == "=" {
			return fmt.Errorf("resource.service.name is never nil")
		}
		if otherType == TypeStatus || otherType == TypeKind || otherType == TypeBool {
			return fmt.Errorf("a %s (%s) is never nil", otherType, fieldString(other))
		}
		if f.Op != "=" && f.Op != "!=" {
			return fmt.Errorf("nil compares with = and != only")
		}
		return nil
	}
	ordered := f.Op != "=" && f.Op != "!="
	switch {
	case l == TypeAny || r == TypeAny:
		if ordered && (l == TypeStatus || r == TypeStatus || l == TypeKind || r == TypeKind || l == TypeBool || r == TypeBool) {
			return fmt.Errorf("%s compares numbers or strings, not a status, kind or boolean", f.Op)
		}
		return nil
	case l.numeric() && r.numeric():
		return nil
	case l != r:
		return fmt.Errorf("cannot compare a %s (%s) with a %s (%s)", l, fieldString(f.L), r, fieldString(f.R))
	case ordered && (l == TypeStatus || l == TypeKind || l == TypeBool):
		return fmt.Errorf("%s compares numbers or strings, not a %s", f.Op, l)
	}
	return nil
}

// anchored is a TraceQL regular expression as Go compiles it: matched
// whole, as Tempo (and PromQL) do.
func anchored(re string) string { return "^(?:" + re + ")$" }
