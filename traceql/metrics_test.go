package traceql

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

var metricsQueries = map[string]string{
	`{} | rate()`: `{ } | rate()`,
	`{ resource.service.name = "cart" } | rate() by(name)`:                          `{ (resource.service.name = "cart") } | rate() by (span:name)`,
	`{ status = error } | count_over_time() by (resource.service.name, kind)`:       `{ (span:status = error) } | count_over_time() by (resource.service.name, span:kind)`,
	`{ } | quantile_over_time(duration, .5, 0.99, 1) by(resource.service.name)`:     `{ } | quantile_over_time(span:duration, 0.5, 0.99, 1) by (resource.service.name)`,
	`{nestedSetParent<0 && true} | histogram_over_time(duration) with(sample=true)`: `{ ((nestedSetParent < 0) && true) } | histogram_over_time(span:duration)`,
	`{ true } | rate()  with(sample=true, exemplars=10)`:                            `{ true } | rate()`,
	`{ resource.service.name != nil } | avg_over_time(span.http.latency)`:           `{ (resource.service.name != nil) } | avg_over_time(span.http.latency)`,
	`{ name = "a" } | by(kind) | max_over_time(duration)`:                           "",
	`({ name = "a" } >> { kind = server }) | rate()`:                                "",
}

var metricsErrors = map[string]string{
	`{ name = "a" }`:                           "a metrics query is a search",
	`{} | rate() | topk(5)`:                    "unsupported: a second stage",
	`{} | compare({ status = error })`:         "unsupported: compare()",
	`{} | rate() * 2`:                          "unsupported: arithmetic",
	`{} | quantile_over_time(duration)`:        "needs at least one quantile",
	`{} | quantile_over_time(duration, 2)`:     "in [0, 1]",
	`{} | avg_over_time(name)`:                 "numeric intrinsic",
	`{} | rate() by (1)`:                       "not a constant",
	`{} | rate(duration)`:                      ") closing rate(",
	`{} | rate() with(sample)`:                 "=",
	`{ name = } | rate()`:                      "invalid TraceQL",
	`{ resource.service.name = nil } | rate()`: "never nil",
}

// TestParseMetrics: metrics queries parse, print and parse back to the
// same tree; what Tempo refuses or zipq does not do is an *Error saying so.
func TestParseMetrics(t *testing.T) {
	for q, want := range metricsQueries {
		m, err := ParseMetrics(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if want != "" && m.String() != want {
			t.Errorf("%s printed as %s, want %s", q, m, want)
		}
		again, err := ParseMetrics(m.String())
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Errorf("%s: printed %s parses to %+v, %v", q, m, again, err)
		}
	}
	for q, says := range metricsErrors {
		_, err := ParseMetrics(q)
		var pe *Error
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), says) {
			t.Errorf("%s: %v, want an *Error saying %q", q, err, says)
		}
	}
}

// FuzzParseMetrics: any input is a tree that prints and parses back to
// itself, or an *Error with a position inside the query.
func FuzzParseMetrics(f *testing.F) {
	for q := range metricsQueries {
		f.Add(q)
	}
	for q := range metricsErrors {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		m, err := ParseMetrics(q)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.Pos < 0 || pe.Pos > len(q) {
				t.Fatalf("ParseMetrics(%q): %v, want an *Error inside the query", q, err)
			}
			return
		}
		again, err := ParseMetrics(m.String())
		if err != nil || again.String() != m.String() {
			t.Fatalf("%q printed as %q parses to %v, %v", q, m.String(), again, err)
		}
	})
}
