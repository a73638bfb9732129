package traceql

import (
	"regexp"
	"strings"
)

// matches says whether a filter's condition holds for span s. A condition
// reading event (or link) fields holds when it holds for one of the
// span's events (links): { event:name = "retry" && event.attempt = "3" }
// needs both on the same event.
func (q *Query) matches(f Field, t *Trace, s *Span) bool {
	r := q.reads[f]
	evs, lns := r.events, r.links
	events := []*Event{nil}
	if evs && len(s.Events) > 0 {
		events = events[:0]
		for i := range s.Events {
			events = append(events, &s.Events[i])
		}
	}
	links := []*Link{nil}
	if lns && len(s.Links) > 0 {
		links = links[:0]
		for i := range s.Links {
			links = append(links, &s.Links[i])
		}
	}
	for _, e := range events {
		for _, l := range links {
			if v := q.eval(f, t, s, e, l); v.Type() == TypeBool && v.b {
				return true
			}
		}
	}
	return false
}

// scopes says whether an expression reads event or link fields.
type scopes struct{ events, links bool }

func readsOf(f Field) (r scopes) {
	eachField(f, func(f Field) {
		switch f := f.(type) {
		case *Attribute:
			r.events = r.events || f.Scope == "event"
			r.links = r.links || f.Scope == "link"
		case *Intrinsic:
			r.events = r.events || strings.HasPrefix(f.Name, "event:")
			r.links = r.links || strings.HasPrefix(f.Name, "link:")
		}
	})
	return r
}

func isNil(f Field) bool {
	s, ok := f.(*Static)
	return ok && s.Type == TypeNil
}

// eval computes f on span s (and event e, link l when the expression
// reads them; nil otherwise).
func (q *Query) eval(f Field, t *Trace, s *Span, e *Event, l *Link) Value {
	switch f := f.(type) {
	case *Static:
		return value(f)
	case *Attribute:
		return attribute(f, s, e, l)
	case *Intrinsic:
		return intrinsic(f.Name, t, s, e, l)
	case *Unary:
		x := q.eval(f.X, t, s, e, l)
		switch {
		case f.Op == "!" && x.Type() == TypeBool:
			return Bool(!x.b)
		case f.Op == "-":
			return arithmetic("*", x, Int(-1))
		}
		return Value{}
	case *Binary:
		switch f.Op {
		case "&&", "||":
			a := q.eval(f.L, t, s, e, l)
			if f.Op == "&&" && a.Type() == TypeBool && !a.b {
				return Bool(false)
			}
			if f.Op == "||" && a.Type() == TypeBool && a.b {
				return Bool(true)
			}
			b := q.eval(f.R, t, s, e, l)
			at, bt := a.Type() == TypeBool && a.b, b.Type() == TypeBool && b.b
			if f.Op == "&&" {
				return Bool(at && bt)
			}
			return Bool(at || bt)
		case "+", "-", "*", "/", "%", "^":
			return arithmetic(f.Op, q.eval(f.L, t, s, e, l), q.eval(f.R, t, s, e, l))
		}
		a, b := q.eval(f.L, t, s, e, l), q.eval(f.R, t, s, e, l)
		if isNil(f.L) || isNil(f.R) { // x = nil: absent; x != nil: present
			absent := a.Type() == TypeNil && b.Type() == TypeNil
			return Bool(absent == (f.Op == "="))
		}
		var re *regexp.Regexp
		if r, ok := f.R.(*Static); ok && (f.Op == "=~" || f.Op == "!~") {
			re = q.res[r.S]
		}
		return Bool(compare(f.Op, a, b, re))
	}
	return Value{}
}

func attribute(a *Attribute, s *Span, e *Event, l *Link) Value {
	switch a.Scope {
	case "span":
		return s.Attrs[a.Name]
	case "resource":
		return s.Resource[a.Name]
	case "instrumentation":
		return s.ScopeAttrs[a.Name]
	case "event":
		if e == nil {
			return Value{}
		}
		return e.Attrs[a.Name]
	case "link":
		if l == nil {
			return Value{}
		}
		return l.Attrs[a.Name]
	}
	if v, ok := s.Attrs[a.Name]; ok {
		return v
	}
	return s.Resource[a.Name]
}

func intrinsic(name string, t *Trace, s *Span, e *Event, l *Link) Value {
	switch name {
	case "span:name":
		return Str(s.Name)
	case "span:status":
		return Value{t: TypeStatus, s: s.Status}
	case "span:statusMessage":
		return Str(s.StatusMessage)
	case "span:kind":
		return Value{t: TypeKind, s: s.Kind}
	case "span:duration":
		return duration(s.End - s.Start)
	case "span:childCount":
		return Int(int64(len(s.children)))
	case "nestedSetLeft":
		return Int(s.nsLeft)
	case "nestedSetRight":
		return Int(s.nsRight)
	case "nestedSetParent":
		return Int(s.nsParent)
	case "span:id":
		return Str(s.ID)
	case "span:parentID":
		if s.ParentID == "" {
			return Value{}
		}
		return Str(s.ParentID)
	case "trace:id":
		return Str(t.ID)
	case "trace:duration":
		return duration(t.End - t.Start)
	case "trace:rootName":
		if t.Root == nil {
			return Value{}
		}
		return Str(t.Root.Name)
	case "trace:rootService":
		if t.Root == nil {
			return Value{}
		}
		return t.Root.Resource["service.name"]
	case "instrumentation:name":
		return Str(s.ScopeName)
	case "instrumentation:version":
		return Str(s.ScopeVersion)
	case "event:name":
		if e == nil {
			return Value{}
		}
		return Str(e.Name)
	case "event:timeSinceStart":
		if e == nil {
			return Value{}
		}
		return duration(e.Time - s.Start)
	case "link:traceID":
		if l == nil {
			return Value{}
		}
		return Str(l.TraceID)
	case "link:spanID":
		if l == nil {
			return Value{}
		}
		return Str(l.SpanID)
	}
	return Value{}
}
