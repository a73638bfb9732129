// Package traceql is the search part of Grafana Tempo's TraceQL: a parser
// (Parse) to a typed tree (this file), a printer (String, which parses back
// to the same tree), and an evaluator over one trace's spans (eval.go).
// zipq's storage nominates candidate traces; this package decides exactly.
package traceql

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Error is a query the grammar rejects (a 400 with its position) or a
// construct zipq does not answer (Unsupported).
type Error struct {
	Pos         int // byte offset in the query
	Msg         string
	Unsupported bool
}

func (e *Error) Error() string {
	if e.Unsupported {
		return fmt.Sprintf("unsupported: %s (at column %d)", e.Msg, e.Pos+1)
	}
	return fmt.Sprintf("invalid TraceQL at column %d: %s", e.Pos+1, e.Msg)
}

// Pipeline is a query: elements joined by |, each taking the spansets the
// previous one left.
type Pipeline struct{ Elements []Element }

// Element is one stage of a pipeline.
type Element interface{ element() }

// Filter is { expr }: the spans for which expr is true (every span when
// Expr is nil: {}).
type Filter struct{ Expr Field }

// SpansetOp combines two spanset expressions: && and || (logical), and
// the structural operators, which keep the right side's spans.
type SpansetOp struct {
	Op   string // && || > < >> << ~ !> !< !>> !<< !~ &> &< &>> &<< &~
	L, R Element
}

// ScalarFilter keeps the spansets whose aggregate compares true.
type ScalarFilter struct {
	Op   string // = != < <= > >=
	L, R Scalar
}

// GroupBy splits each spanset by the value of Expr.
type GroupBy struct{ Expr Field }

// Coalesce merges all spansets into one.
type Coalesce struct{}

// Select adds fields to the spans returned, filtering nothing.
type Select struct{ Fields []Field }

func (*Pipeline) element()     {}
func (*Filter) element()       {}
func (*SpansetOp) element()    {}
func (*ScalarFilter) element() {}
func (*GroupBy) element()      {}
func (*Coalesce) element()     {}
func (*Select) element()       {}

// Scalar is a side of a scalar filter: an aggregate or a static number.
type Scalar interface{ scalar() }

// Aggregate is count(), avg(f), min(f), max(f) or sum(f) over a spanset.
type Aggregate struct {
	Fn  string
	Arg Field // nil for count()
}

func (*Aggregate) scalar() {}
func (*Static) scalar()    {}

// Field is an expression evaluated on one span.
type Field interface{ field() }

// Type is a field's static type.
type Type int

// The static types; TypeAny is an attribute's (known only per span).
const (
	TypeAny Type = iota
	TypeNil
	TypeBool
	TypeInt
	TypeFloat
	TypeString
	TypeDuration
	TypeStatus
	TypeKind
)

func (t Type) String() string {
	return [...]string{"attribute", "nil", "boolean", "integer", "float", "string", "duration", "status", "kind"}[t]
}

func (t Type) numeric() bool { return t == TypeInt || t == TypeFloat || t == TypeDuration }

// Static is a literal. Status and kind values are in S.
type Static struct {
	Type Type
	S    string
	I    int64 // TypeInt, and TypeDuration in nanoseconds
	F    float64
	B    bool
}

// Attribute is scope.name; Scope "" is unscoped (.name: span, then
// resource).
type Attribute struct{ Scope, Name string }

// Intrinsic is a built-in field, by its canonical scoped name (span:name,
// trace:duration, event:name, ...).
type Intrinsic struct{ Name string }

// Binary is L op R: arithmetic, comparison or logic.
type Binary struct {
	Op   string
	L, R Field
}

// Unary is ! or - applied to X.
type Unary struct {
	Op string
	X  Field
}

func (*Static) field()    {}
func (*Attribute) field() {}
func (*Intrinsic) field() {}
func (*Binary) field()    {}
func (*Unary) field()     {}

// intrinsics maps every spelling to the canonical name and static type.
var intrinsics = map[string]struct {
	canon string
	typ   Type
}{
	"name": {"span:name", TypeString}, "span:name": {"span:name", TypeString},
	"status": {"span:status", TypeStatus}, "span:status": {"span:status", TypeStatus},
	"statusMessage": {"span:statusMessage", TypeString}, "span:statusMessage": {"span:statusMessage", TypeString},
	"kind": {"span:kind", TypeKind}, "span:kind": {"span:kind", TypeKind},
	"duration": {"span:duration", TypeDuration}, "span:duration": {"span:duration", TypeDuration},
	"childCount": {"span:childCount", TypeInt}, "span:childCount": {"span:childCount", TypeInt},
	"span:id": {"span:id", TypeString}, "span:parentID": {"span:parentID", TypeString},
	"nestedSetLeft": {"nestedSetLeft", TypeInt}, "nestedSetRight": {"nestedSetRight", TypeInt},
	"nestedSetParent": {"nestedSetParent", TypeInt},
	"traceDuration":   {"trace:duration", TypeDuration}, "trace:duration": {"trace:duration", TypeDuration},
	"rootName": {"trace:rootName", TypeString}, "trace:rootName": {"trace:rootName", TypeString},
	"rootServiceName": {"trace:rootService", TypeString}, "trace:rootService": {"trace:rootService", TypeString},
	"trace:id":   {"trace:id", TypeString},
	"event:name": {"event:name", TypeString}, "event:timeSinceStart": {"event:timeSinceStart", TypeDuration},
	"link:traceID": {"link:traceID", TypeString}, "link:spanID": {"link:spanID", TypeString},
	"instrumentation:name": {"instrumentation:name", TypeString}, "instrumentation:version": {"instrumentation:version", TypeString},
}

func intrinsicType(canon string) Type { return intrinsics[canon].typ }

var statuses = map[string]bool{"ok": true, "error": true, "unset": true}
var kinds = map[string]bool{"unspecified": true, "internal": true, "server": true, "client": true, "producer": true, "consumer": true}

// String prints the pipeline so that Parse gives the same tree back.
func (p *Pipeline) String() string {
	parts := make([]string, len(p.Elements))
	for i, e := range p.Elements {
		parts[i] = elementString(e)
	}
	return strings.Join(parts, " | ")
}

func elementString(e Element) string {
	switch e := e.(type) {
	case *Pipeline:
		return "(" + e.String() + ")"
	case *Filter:
		if e.Expr == nil {
			return "{ }"
		}
		return "{ " + fieldString(e.Expr) + " }"
	case *SpansetOp:
		return "(" + elementString(e.L) + " " + e.Op + " " + elementString(e.R) + ")"
	case *ScalarFilter:
		return scalarString(e.L) + " " + e.Op + " " + scalarString(e.R)
	case *GroupBy:
		return "by(" + fieldString(e.Expr) + ")"
	case *Coalesce:
		return "coalesce()"
	case *Select:
		fs := make([]string, len(e.Fields))
		for i, f := range e.Fields {
			fs[i] = fieldString(f)
		}
		return "select(" + strings.Join(fs, ", ") + ")"
	}
	return fmt.Sprintf("%T", e)
}

func scalarString(s Scalar) string {
	switch s := s.(type) {
	case *Aggregate:
		if s.Arg == nil {
			return s.Fn + "()"
		}
		return s.Fn + "(" + fieldString(s.Arg) + ")"
	case *Static:
		return fieldString(s)
	}
	return fmt.Sprintf("%T", s)
}

func fieldString(f Field) string {
	switch f := f.(type) {
	case *Static:
		switch f.Type {
		case TypeNil:
			return "nil"
		case TypeBool:
			return strconv.FormatBool(f.B)
		case TypeInt:
			if f.I == math.MinInt64 { // its digits alone overflow before the minus applies
				return "minInt"
			}
			return strconv.FormatInt(f.I, 10)
		case TypeFloat:
			s := strconv.FormatFloat(f.F, 'g', -1, 64)
			if !strings.ContainsAny(s, ".eEn") { // keep it a float: 2 → 2.0
				s += ".0"
			}
			return s
		case TypeString:
			return strconv.Quote(f.S)
		case TypeDuration:
			return time.Duration(f.I).String()
		default: // status, kind
			return f.S
		}
	case *Attribute:
		name := f.Name
		if !plainAttribute(name) {
			name = quoteName(name)
		}
		return f.Scope + "." + name
	case *Intrinsic:
		return f.Name
	case *Binary:
		return "(" + fieldString(f.L) + " " + f.Op + " " + fieldString(f.R) + ")"
	case *Unary:
		return f.Op + "(" + fieldString(f.X) + ")"
	}
	return fmt.Sprintf("%T", f)
}

// String is the attribute as a query writes it (quoted when its name has
// characters that would end it).
func (a *Attribute) String() string { return fieldString(a) }

// FieldString prints a field expression as TraceQL.
func FieldString(f Field) string { return strings.TrimSpace(fieldString(f)) }

// plainAttribute says whether a name can be printed unquoted.
func plainAttribute(name string) bool {
	if name == "" {
		return false
	}
	if name[0] >= '0' && name[0] <= '9' { // .5 is a number
		return false
	}
	for _, r := range name {
		if !isAttributeRune(r) || r == '\\' || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
