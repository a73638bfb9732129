package traceql

import (
	"strconv"
	"strings"
)

// Metrics is a TraceQL metrics query: a search pipeline selecting spans,
// then one metrics function over them, per group.
//
//	{ resource.service.name = "cart" } | quantile_over_time(duration, .5, .99) by (name)
type Metrics struct {
	Search *Pipeline
	// Func is rate, count_over_time, min_over_time, max_over_time,
	// avg_over_time, sum_over_time, quantile_over_time or
	// histogram_over_time.
	Func string
	// Of is the field the *_over_time functions read (nil for rate and
	// count_over_time); Quantiles are quantile_over_time's.
	Of        Field
	Quantiles []float64
	By        []Field
}

// String prints the query so that ParseMetrics gives the same tree back.
func (m *Metrics) String() string {
	var b strings.Builder
	b.WriteString(m.Search.String())
	b.WriteString(" | " + m.Func + "(")
	if m.Of != nil {
		b.WriteString(FieldString(m.Of))
	}
	for _, q := range m.Quantiles {
		b.WriteString(", " + strconv.FormatFloat(q, 'f', -1, 64))
	}
	b.WriteString(")")
	for i, f := range m.By {
		if i == 0 {
			b.WriteString(" by (")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(FieldString(f))
		if i == len(m.By)-1 {
			b.WriteString(")")
		}
	}
	return b.String()
}

// metricsOf names the functions ParseMetrics reads and how many field
// arguments each takes.
var metricsOf = map[string]int{"rate": 0, "count_over_time": 0, "min_over_time": 1, "max_over_time": 1,
	"avg_over_time": 1, "sum_over_time": 1, "quantile_over_time": 1, "histogram_over_time": 1}

// ParseMetrics reads a TraceQL metrics query. Its errors are Parse's:
// invalid, with the position, or unsupported, naming the construct
// (compare(), topk/bottomk, arithmetic between metrics). A trailing
// with(...) of query hints is read and ignored: zipq answers exactly, so
// sampling hints change nothing.
func ParseMetrics(q string) (*Metrics, error) {
	toks, err := lexQuery(q)
	if err != nil {
		return nil, err
	}
	// The metrics function follows the first | outside any bracket that
	// is followed by one; what comes after it is its second stage.
	at, nest := -1, 0
	for i, t := range toks {
		switch t.kind {
		case tLBrace, tLParen:
			nest++
		case tRBrace, tRParen:
			nest--
		case tPipe:
			if nest == 0 && at < 0 && toks[i+1].kind == tIdent && metricsFunctions[toks[i+1].text] {
				at = i
			}
		}
	}
	if at < 0 {
		return nil, &Error{Pos: 0, Msg: "a metrics query is a search, then | and a metrics function such as rate(), count_over_time() or quantile_over_time(duration, .99)"}
	}
	pl, err := parseSearch(append(toks[:at:at], token{kind: tEOF, pos: toks[at].pos}), "| and a metrics function")
	if err != nil {
		return nil, err
	}
	m := &Metrics{Search: pl}
	p := &parser{toks: toks[at+1:]}
	fn := p.next()
	nargs, ok := metricsOf[fn.text]
	if !ok {
		return nil, &Error{Pos: fn.pos, Unsupported: true, Msg: fn.text + "()"}
	}
	m.Func = fn.text
	if _, err := p.expect(tLParen, "( after "+fn.text); err != nil {
		return nil, err
	}
	if nargs == 1 {
		if m.Of, err = p.metricsField(fn); err != nil {
			return nil, err
		}
	}
	if fn.text == "quantile_over_time" {
		for p.peek().kind == tComma {
			p.next()
			t := p.next()
			v := t.f
			if t.kind == tInt {
				v = float64(t.i)
			}
			if (t.kind != tInt && t.kind != tFloat) || v < 0 || v > 1 {
				return nil, &Error{Pos: t.pos, Msg: "quantile_over_time takes quantiles in [0, 1] after the field, such as .5, .99"}
			}
			m.Quantiles = append(m.Quantiles, v)
		}
		if len(m.Quantiles) == 0 {
			return nil, &Error{Pos: fn.pos, Msg: "quantile_over_time(field, q, ...) needs at least one quantile"}
		}
	}
	if _, err := p.expect(tRParen, ") closing "+fn.text+"("); err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind == tIdent && t.text == "by" {
		p.next()
		if m.By, err = p.fieldArgs(t, -1); err != nil {
			return nil, err
		}
		for _, f := range m.By {
			if !referencesSpan(f) {
				return nil, &Error{Pos: t.pos, Msg: "by() must group by a span's field, not a constant"}
			}
		}
	}
	if t := p.peek(); t.kind == tIdent && t.text == "with" {
		if err := p.hints(); err != nil {
			return nil, err
		}
	}
	switch t := p.peek(); t.kind {
	case tEOF:
		return m, nil
	case tPipe:
		next := p.toks[min(p.i+1, len(p.toks)-1)]
		return nil, &Error{Pos: next.pos, Unsupported: true, Msg: "a second stage after a metrics function (" + strings.TrimSpace(next.text) + ")"}
	case tOp:
		return nil, &Error{Pos: t.pos, Unsupported: true, Msg: "arithmetic or comparison on a metrics function's result"}
	default:
		return nil, p.unexpected(t, "by(...), with(...) or the end of the query")
	}
}

// metricsField reads the field an *_over_time function aggregates: an
// attribute or a numeric intrinsic.
func (p *parser) metricsField(fn token) (Field, error) {
	f, err := p.primary()
	if err != nil {
		return nil, err
	}
	switch f := f.(type) {
	case *Attribute:
		return f, nil
	case *Intrinsic:
		if t := intrinsicType(f.Name); t.numeric() {
			return f, nil
		}
	}
	return nil, &Error{Pos: fn.pos, Msg: fn.text + "() aggregates an attribute or a numeric intrinsic such as duration"}
}

// hints reads with(name = value, ...).
func (p *parser) hints() error {
	p.next()
	if _, err := p.expect(tLParen, "( after with"); err != nil {
		return err
	}
	for {
		if _, err := p.expect(tIdent, "a hint's name"); err != nil {
			return err
		}
		if t := p.next(); t.kind != tOp || t.text != "=" {
			return p.unexpected(t, "= after the hint's name")
		}
		switch t := p.next(); t.kind {
		case tIdent, tInt, tFloat, tString, tDuration:
		default:
			return p.unexpected(t, "the hint's value")
		}
		if p.peek().kind != tComma {
			break
		}
		p.next()
	}
	_, err := p.expect(tRParen, ") closing with(")
	return err
}
