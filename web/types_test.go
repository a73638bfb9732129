package web

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/zipq/zipq/broker"
)

const pipelineTypes = "src/pipeline.gen.ts"

// TestPipelineTypesMatchGo: the pipeline page's types (src/pipeline.gen.ts)
// are generated from the Go structs GET /api/zipq/pipeline encodes
// (broker.Snapshot, broker.ParkedMessage), so a field renamed or added in
// Go cannot drift from the UI's view of it. ZIPQ_UPDATE_TYPES=1 rewrites
// the file.
func TestPipelineTypesMatchGo(t *testing.T) {
	var b strings.Builder
	b.WriteString("// Generated from broker.Snapshot and broker.ParkedMessage by web/types_test.go: do not edit.\n")
	b.WriteString("// ZIPQ_UPDATE_TYPES=1 go test -run TestPipelineTypesMatchGo ./web rewrites it.\n\n")
	for _, v := range []any{broker.ParkedMessage{}, broker.Snapshot{}} {
		b.WriteString(tsInterface(t, reflect.TypeOf(v)))
	}
	got := b.String()
	if os.Getenv("ZIPQ_UPDATE_TYPES") != "" {
		if err := os.WriteFile(pipelineTypes, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(pipelineTypes)
	if err != nil || string(want) != got {
		t.Fatalf("%s does not match the Go types (%v): rewrite it with ZIPQ_UPDATE_TYPES=1 go test -run TestPipelineTypesMatchGo ./web\nwant:\n%s", pipelineTypes, err, got)
	}
}

// tsInterface is a struct as the TypeScript interface of its JSON: a
// pointer may be null, omitempty makes a field optional.
func tsInterface(t *testing.T, typ reflect.Type) string {
	var b strings.Builder
	fmt.Fprintf(&b, "export interface %s {\n", typ.Name())
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			t.Fatalf("%s.%s has no JSON name", typ.Name(), f.Name)
		}
		optional := ""
		if strings.Contains(opts, "omitempty") {
			optional = "?"
		}
		fmt.Fprintf(&b, "  %s%s: %s;\n", name, optional, tsType(t, f.Type))
	}
	b.WriteString("}\n\n")
	return strings.TrimSuffix(b.String(), "\n") + "\n"
}

func tsType(t *testing.T, typ reflect.Type) string {
	switch typ.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint64, reflect.Float64:
		return "number"
	case reflect.Pointer:
		return tsType(t, typ.Elem()) + " | null"
	case reflect.Slice:
		return tsType(t, typ.Elem()) + "[]"
	case reflect.Struct:
		return typ.Name()
	}
	t.Fatalf("no TypeScript type for %s", typ)
	return ""
}
