package traceql

import "strings"

// ParseField reads one attribute or intrinsic (span.http.method,
// .service.name, resource.service.name, name, status, event:name), as the
// tag-values API names them.
func ParseField(s string) (Field, error) {
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	f, err := p.primary()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.unexpected(t, "the end of the name")
	}
	switch f.(type) {
	case *Attribute, *Intrinsic:
		return f, nil
	}
	return nil, &Error{Pos: 0, Msg: "want an attribute (span.x, resource.x, .x) or an intrinsic (name, status, ...)"}
}

// FieldName is how search answers name a field among a span's attributes:
// an attribute by its name, an intrinsic by its short name (status, kind).
func FieldName(f Field) string {
	switch f := f.(type) {
	case *Attribute:
		return f.Name
	case *Intrinsic:
		_, short, _ := strings.Cut(f.Name, ":")
		return short
	}
	return fieldString(f)
}

// Eval computes a field on one span of t (event and link fields read the
// span's first event or link).
func (q *Query) Eval(f Field, t *Trace, s *Span) Value {
	var e *Event
	var l *Link
	if len(s.Events) > 0 {
		e = &s.Events[0]
	}
	if len(s.Links) > 0 {
		l = &s.Links[0]
	}
	return q.eval(f, t, s, e, l)
}

// Hints are equalities every answer has on one span, for an index to
// nominate candidates: the local service (resource.service.name = "x"),
// the span name (name = "x") and tags as Zipkin's annotationQuery writes
// them ("k=v", from span.k = "v"). They come from a single spanset filter
// the whole query requires, so one span carries them all.
type Hints struct {
	Service, SpanName string
	Terms             []string
}

func (h Hints) empty() bool { return h.Service == "" && h.SpanName == "" && len(h.Terms) == 0 }

// Hints finds the query's hints; zero when it has none.
func (q *Query) Hints() Hints {
	var best Hints
	for _, f := range required(q.Tree) {
		h := filterHints(f.Expr)
		if h.Service != "" && h.SpanName != "" {
			return h
		}
		if best.empty() || best.Service == "" && best.SpanName == "" && h.Service+h.SpanName != "" {
			best = h
		}
	}
	return best
}

// required lists the filters a trace must satisfy for the query to keep
// it: every filter of the root pipeline, and both sides of && and of
// the positive structural operators (not ||, not the negated ones, which
// hold when their left side matches nothing).
func required(e Element) []*Filter {
	switch e := e.(type) {
	case *Pipeline:
		var out []*Filter
		for _, x := range e.Elements {
			out = append(out, required(x)...)
		}
		return out
	case *Filter:
		if e.Expr != nil {
			return []*Filter{e}
		}
	case *SpansetOp:
		switch {
		case e.Op == "||":
			return nil
		case e.Op[0] == '!':
			return required(e.R)
		}
		return append(required(e.L), required(e.R)...)
	}
	return nil
}

// synthesized are span attributes the zipkin receiver's translator makes
// from something other than a tag of the same name (the endpoints): no
// tag term finds them.
var synthesized = map[string]bool{"peer.service": true, "net.peer.ip": true, "net.host.ip": true,
	"net.peer.port": true, "net.host.port": true, "otel.zipkin.absentField.startTime": true}

// filterHints reads the equalities ANDed at the top of a filter. A span
// attribute equal to a string is its tag's term. An unscoped or resource
// attribute other than service.name may come from another span's tag (a
// resource is built from the first span of its service), so its term is
// used alone, never with the others.
func filterHints(f Field) Hints {
	var h Hints
	var loose []string
	var walk func(Field)
	walk = func(f Field) {
		b, ok := f.(*Binary)
		if !ok {
			return
		}
		if b.Op == "&&" {
			walk(b.L)
			walk(b.R)
			return
		}
		if b.Op != "=" {
			return
		}
		field, lit := b.L, b.R
		if _, ok := field.(*Static); ok {
			field, lit = lit, field
		}
		s, ok := lit.(*Static)
		if !ok || s.Type != TypeString {
			return
		}
		switch f := field.(type) {
		case *Attribute:
			switch {
			case f.Scope == "resource" && f.Name == "service.name":
				h.Service = s.S
			case synthesized[f.Name] || f.Scope == "event" || f.Scope == "link" || f.Scope == "instrumentation":
			case f.Scope == "span":
				h.Terms = append(h.Terms, f.Name+"="+s.S)
			default:
				loose = append(loose, f.Name+"="+s.S)
			}
		case *Intrinsic:
			if f.Name == "span:name" {
				h.SpanName = s.S
			}
		}
	}
	walk(f)
	if h.empty() && len(loose) > 0 {
		h.Terms = loose[:1]
	}
	return h
}
