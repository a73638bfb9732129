package traceql

import (
	"errors"
	"os"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestTempoExamples checks the parser against Tempo's own list of cases
// (pkg/traceql/test_examples.yaml of a Tempo checkout, named by
// ZIPQ_TEMPO_EXAMPLES; skipped without it: the file is Tempo's, not
// zipq's). Valid queries parse (or are refused as unsupported: TraceQL
// metrics); parse and validation failures are invalid; Tempo's
// unsupported ones are unsupported or invalid, never accepted.
func TestTempoExamples(t *testing.T) {
	path := os.Getenv("ZIPQ_TEMPO_EXAMPLES")
	if path == "" {
		t.Skip("ZIPQ_TEMPO_EXAMPLES names no Tempo test_examples.yaml")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ex struct {
		Valid         []string `yaml:"valid"`
		ParseFails    []string `yaml:"parse_fails"`
		ValidateFails []string `yaml:"validate_fails"`
		Unsupported   []string `yaml:"unsupported"`
	}
	if err := yaml.Unmarshal(b, &ex); err != nil {
		t.Fatal(err)
	}
	kind := func(q string) string {
		_, err := Parse(q)
		var pe *Error
		switch {
		case err == nil:
			return "ok"
		case errors.As(err, &pe) && pe.Unsupported:
			return "unsupported"
		}
		return "invalid"
	}
	for _, q := range ex.Valid {
		if k := kind(q); k == "invalid" {
			_, err := Parse(q)
			t.Errorf("valid %q: %v", q, err)
		}
	}
	for _, q := range append(ex.ParseFails, ex.ValidateFails...) {
		if k := kind(q); k == "ok" {
			t.Errorf("failing %q: accepted", q)
		}
	}
	for _, q := range ex.Unsupported {
		if k := kind(q); k == "ok" {
			t.Errorf("unsupported %q: accepted", q)
		}
	}
}
