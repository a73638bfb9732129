package traceql

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// The parser's cases, by what Tempo's grammar and validation make of them
// (its pkg/traceql/test_examples.yaml groups its own the same way).
var (
	validQueries = []string{
		`{ }`, `{}`, `{ true }`, `{ !true }`, `{ true && false }`, `{ true || false }`,
		`{ 1 = 2 }`, `{ 1 != 2 }`, `{ 1 > 2 }`, `{ 1 >= 2 }`, `{ 1 < 2 }`, `{ 1 <= 2 }`, `{ -1 = 2 }`,
		`{ "a" =~ "a.*" }`, `{ "a" !~ "b" }`, `{ .a }`, `{ !.a }`, `{ .a && false }`, `{ .a = 2 }`, `{ -.a = 2 }`,
		`{ .a =~ "x" }`, `{ resource.a != 3 }`, `{ span.a != 3 }`, `{ !("test" != .c || ((true && .b) || 3 < .a)) }`,
		`{ status = ok }`, `{ status = unset }`, `{ status != error }`, `{ statusMessage =~ ".*" }`,
		`{ kind = internal }`, `{ kind = client }`, `{ traceDuration > 1s }`, `{ rootServiceName = "foo" }`,
		`{ rootName != "foo" }`, `{ duration > 250ms }`, `{ 1 < 1h }`, `{ 1 <= 1.1 }`, `{ event.foo = "bar" }`,
		`{ link.foo = "bar" }`, `{ instrumentation.foo = "bar" }`, `{ span.foo != 3.0 }`,
		`{ ."foo bar" = "v" }`, `{ span."foo bar" = "v" }`, `{ span.attribute."with space" = "v" }`, `{ ."a\"b" = "v" }`,
		`{ trace:duration > 2s }`, `{ trace:rootName = "a" }`, `{ trace:rootService = "a" }`, `{ trace:id = "ab" }`,
		`{ span:duration > 2s }`, `{ span:status = error }`, `{ span:kind = client }`, `{ span:id = "0000000000000001" }`,
		`{ span:parentID = "01" }`, `{ event:name = "exception" }`, `{ event:timeSinceStart > 1ms }`,
		`{ link:traceID = "01" }`, `{ link:spanID = "01" }`, `{ instrumentation:name = "grpc" }`, `{ instrumentation:version = "1" }`,
		`{ span:childCount > 0 }`, `{ nestedSetLeft > 3 }`, `{ nestedSetParent < 0 }`, `{ nestedSetRight = 2 }`, `{ 1 + 1 = 2 }`, `{ .a * 2 ^ 2 = 8 }`, `{ duration > 1s * 2 }`, `{ .http.status >= "200" }`,
		`{ span.http.request_content_length > 10 * 1024 * 1024 }`, `{ .a = nil }`, `{ .a != nil }`, `{ nil = nil }`, `{ name != nil }`,
		`{ span.value != minInt && span.value != maxInt }`, "{ name = `raw\\string` }",
		`{ true } && { true }`, `{ true } || { true }`, `{ true } >> { true }`, `{ true } << { true }`, `{ true } > { true }`,
		`{ true } < { true }`, `{ true } ~ { true }`, `{ true } !> { true }`, `{ true } !< { true }`, `{ true } !~ { true }`,
		`{ true } !>> { true }`, `{ true } !<< { true }`, `{ true } &> { true }`, `{ true } &< { true }`, `{ true } &~ { true }`,
		`{ true } &>> { true }`, `{ true } &<< { true }`, `({ true } | count() > 1 | { false }) >> ({ true } | count() > 1)`,
		`{ .a } && { .b } > { .c } || { .d }`,
		`avg(.field) > 1`, `max(duration) >= 1s`, `max(duration) > 1`, `{ true } | min(duration) = 1h`, `{ true } | sum(span.a) = 1`,
		`{ true } | max(1 + .a) = 1`, `max(duration) > 3s | { status = error || .http.status = 500 }`, `avg(.field) > 1 - 3`,
		`min(span:childCount) < 2 / 6`, `select(.a)`, `{} | select(.a, .b, span:name)`, `{ true } | { .a }`, `{ true } | count() = 1`,
		`count() = 1 | { true }`, `({ true } | count() > 1) && ({ true } | count() > 1)`, `{ true } | coalesce()`,
		`{ true } | by(.a)`, `{ true } | by(1 + .a) | coalesce()`, `by(.a) | { true }`, `{ status = error } | by(resource.service.name) | count() > 1`,
	}
	invalidQueries = []string{
		`true`, `[ true ]`, `( true )`, `{ . }`, `{ < }`, `{ .a < }`, `{ .a < 3`, `{ (.a < 3 }`, `{ attribute = 4 }`,
		`{ .attribute == 4 }`, `{ span. }`, `{ true } + { true }`, `{ true } = { true }`, `{ true } <= { true }`,
		`max(name) = "foo"`, `avg("foo") = "bar"`, `max(status) = ok`, `max(kind) = consumer`, `max(duration) < ok`,
		`avg(.field) + 1`, `min(span:childCount) && 2`, `select(.a`, `select()`, `select(1 + "string")`,
		`coalesce() | { true }`, `count() > 3 && { true }`, `{ true } | count()`, `{ true } | notAnAggregate() = 1`,
		`{ true } | count = 1`, `{ true } | max() = 1`, `{ true } | by()`, `({ true }) + (count()) = 1`, `({ true }) && (count())`,
		`2 * 3`, `3 = 2`, `{ trace:status = error }`, `{ trace:name = "a" }`, `{ trace:rootServiceName = "a" }`, `{ span:rootName = "b" }`,
		`{ status }`, `{ kind }`, `{ ok }`, `{ 1.1 }`, `{ 1h }`, `{ "foo" }`, `{ 1 + 1 }`, `{ 1 + "foo" = 1 }`, `{ 1 - true = 1 }`,
		`{ 1 = "foo" }`, `{ 1 != true }`, `{ 1 > ok }`, `{ 1 = name }`, `{ 1 =~ 2 }`, `{ 1 && "foo" }`, `{ true || 1.1 }`,
		`{ status > ok }`, `{ kind < consumer }`, `{ traceDuration > "test" }`, `{ rootServiceName = 1 }`, `{ span:status = nil }`,
		`{ resource.service.name = nil }`, `{ span.foo =~ "[" }`, `{ -true }`, `{ -"foo" = "bar" }`, `{ !"foo" = "bar" }`,
		`{ !1 = 1 }`, `sum(3) = 2`, `min(2h) < 1s`, `{ true } | by(1)`, `{ true } | by("foo")`, `{ "unterminated }`,
		`{ .a = 1 } extra`, `{ duration > 5parsecs }`,
	}
	unsupportedQueries = []string{
		`min(.field) < max(duration)`, `{ parent.a != 3 }`, `{ parent }`, `{ true } | max(parent.a) = 1`,
		`{ true } | count() + count() = 1`, `{} | rate()`, `{} | count_over_time() by (name)`,
	}
)

func TestParseCases(t *testing.T) {
	for _, q := range validQueries {
		if _, err := Parse(q); err != nil {
			t.Errorf("Parse(%q): %v, want it to parse", q, err)
		}
	}
	for _, q := range invalidQueries {
		_, err := Parse(q)
		var pe *Error
		if !errors.As(err, &pe) || pe.Unsupported {
			t.Errorf("Parse(%q): %v, want an invalid-query error", q, err)
		} else if pe.Pos < 0 || pe.Pos > len(q) {
			t.Errorf("Parse(%q): position %d out of the query", q, pe.Pos)
		}
	}
	for _, q := range unsupportedQueries {
		_, err := Parse(q)
		var pe *Error
		if !errors.As(err, &pe) || !pe.Unsupported || !strings.HasPrefix(err.Error(), "unsupported: ") {
			t.Errorf("Parse(%q): %v, want unsupported", q, err)
		}
	}
}

// TestPrecedence: && and || share one level, left to right (Tempo's
// grammar), comparisons bind tighter, then + -, then * /; structural
// operators bind tighter than && and ||.
func TestPrecedence(t *testing.T) {
	for q, want := range map[string]string{
		`{ .a || .b && .c }`:           `{ ((.a || .b) && .c) }`,
		`{ .a + 1 * 2 = 3 }`:           `{ ((.a + (1 * 2)) = 3) }`,
		`{ .a ^ 2 ^ 3 = 1 }`:           `{ ((.a ^ (2 ^ 3)) = 1) }`,
		`{ -1 = -.a }`:                 `{ (-1 = -(.a)) }`,
		`{ .a } && { .b } > { .c }`:    `({ .a } && ({ .b } > { .c }))`,
		`{ .a } > { .b } || { .c }`:    `(({ .a } > { .b }) || { .c })`,
		`({ .a } && { .b }) > { .c }`:  `(({ .a } && { .b }) > { .c })`,
		`{ duration > 1.5s }`:          `{ (span:duration > 1.5s) }`,
		`{ rootServiceName = "x" }`:    `{ (trace:rootService = "x") }`,
		`avg(.a) > 1 - 3`:              `avg(.a) > -2`,
		`{ span."a b" = 1 }`:           `{ (span."a b" = 1) }`,
		`{ .a = 2.0 }`:                 `{ (.a = 2.0) }`,
		`{ .a } | by(.b) | coalesce()`: `{ .a } | by(.b) | coalesce()`,
	} {
		p, err := Parse(q)
		if err != nil {
			t.Fatalf("Parse(%q): %v", q, err)
		}
		if got := p.String(); got != want {
			t.Errorf("Parse(%q).String() = %s, want %s", q, got, want)
		}
	}
}

// reparse checks the printer's property: String parses back to the same
// tree.
func reparse(t *testing.T, q string) {
	p, err := Parse(q)
	if err != nil {
		return
	}
	s := p.String()
	p2, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q) printed %q, which does not parse: %v", q, s, err)
	}
	if !reflect.DeepEqual(p, p2) {
		t.Fatalf("Parse(%q) printed %q, which parses to another tree (%s)", q, s, p2)
	}
}

func TestPrintParsesBack(t *testing.T) {
	for _, q := range validQueries {
		reparse(t, q)
	}
	// The deepest trees allowed, which print with a parenthesis a level.
	for _, q := range []string{
		"{ " + strings.Repeat(".a && ", maxTreeDepth-3) + ".a }",
		"{ " + strings.Repeat("!", maxTreeDepth-3) + ".a }",
		strings.Repeat("{ .a } && ", maxTreeDepth-3) + "{ .b }",
	} {
		if _, err := Parse(q); err != nil {
			t.Fatalf("%d-deep query: %v", maxTreeDepth, err)
		}
		reparse(t, q)
	}
	if _, err := Parse("{ " + strings.Repeat(".a && ", maxTreeDepth) + ".a }"); err == nil {
		t.Fatal("a query deeper than the limit parsed")
	}
}

// FuzzParse: any input parses to a tree that prints and parses back to
// the same tree, or is refused with an *Error whose position is inside it
// — never a panic, never another error.
func FuzzParse(f *testing.F) {
	for _, q := range append(append(validQueries, invalidQueries...), unsupportedQueries...) {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		_, err := Parse(q)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q): %T %v, want an *Error", q, err, err)
			}
			if pe.Pos < 0 || pe.Pos > len(q) {
				t.Fatalf("Parse(%q): position %d outside the query", q, pe.Pos)
			}
			return
		}
		reparse(t, q)
	})
}

// TestHints: what an index may use is what every answer has on one span.
func TestHints(t *testing.T) {
	for q, want := range map[string]Hints{
		`{ resource.service.name = "a" && name = "b" && span.k = "v" }`: {Service: "a", SpanName: "b", Terms: []string{"k=v"}},
		`{ resource.service.name = "a" || name = "b" }`:                 {},
		`{ span.peer.service = "db" && span.net.peer.ip = "10.0.0.1" }`: {},
		`{ .k = "v" && span.j = "w" }`:                                  {Terms: []string{"j=w"}},
		`{ .k = "v" }`:                                                  {Terms: []string{"k=v"}},
		`{ resource.host.name = "h" && name = "x" }`:                    {SpanName: "x"},
		`{ span.k != "v" } && { name = "x" }`:                           {SpanName: "x"},
		`{ name = "x" } || { name = "y" }`:                              {},
		`{ name = "x" } !> { resource.service.name = "a" }`:             {Service: "a"},
		`{ span.k = 5 }`:                                                {},
		`{ } | by(name) | { "b" = name }`:                               {SpanName: "b"},
	} {
		c, err := Compile(q)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Hints(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v, want %+v", q, got, want)
		}
	}
}
