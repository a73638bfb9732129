package tenant

import (
	"context"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestContext(t *testing.T) {
	ctx := context.Background()
	if From(ctx) != Default || From(With(ctx, "")) != Default || From(With(ctx, "team-a")) != "team-a" {
		t.Fatal("From: the named tenant, else the default one")
	}
}

func TestParseTable(t *testing.T) {
	got, err := ParseTable(strings.NewReader(`# tenants
team-a
team-b queue=spans-b spans_per_second=100 bytes_per_second=1e6 retention=48h retention_bytes=5000000 max_series=50 max_trace_spans=1000
team-c uri=amqp://c:pw@rabbit:5672/team-c
team-d uri=amqps://d:pw@rabbit/team-d queue=spans

single-tenant spans_per_second=5
`), "zipkin")
	want := []Tenant{{Name: "team-a", Queue: "zipkin.team-a"},
		{Name: "team-b", Queue: "spans-b", Limits: Limits{SpansPerSecond: 100, BytesPerSecond: 1e6, Retention: 48 * time.Hour, RetentionBytes: 5e6, MaxSeries: 50, MaxTraceSpans: 1000}},
		{Name: "team-c", URI: "amqp://c:pw@rabbit:5672/team-c", Queue: "zipkin"},
		{Name: "team-d", URI: "amqps://d:pw@rabbit/team-d", Queue: "spans"},
		{Name: Default, Queue: "zipkin", Limits: Limits{SpansPerSecond: 5}}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("%+v %v", got, err)
	}
	_, err = ParseTable(strings.NewReader("team-a\nteam-a\nbad/name\nteam-c speed=3\nteam-d retention=1h\nteam-e queue=zipkin.team-a\nsingle-tenant queue=other\nteam-f spans_per_second=-1\nteam-g retention_bytes=0\n"), "zipkin")
	for _, want := range []string{"line 2: tenant \"team-a\" is also on line 1", "line 3: tenant \"bad/name\"", `line 4: "speed": unknown setting`,
		"line 5: retention", `line 6: queue "zipkin.team-a" is also tenant "team-a"'s`, "line 7: queue \"other\"", "line 8: spans_per_second", "line 9: retention_bytes"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
}

// render writes a table ParseTable reads back as ts.
func render(ts []Tenant) string {
	var b strings.Builder
	for _, x := range ts {
		if x.URI != "" {
			fmt.Fprintf(&b, "%s uri=%s ", x.Name, x.URI)
		} else {
			fmt.Fprintf(&b, "%s ", x.Name)
		}
		fmt.Fprintf(&b, "queue=%s spans_per_second=%v bytes_per_second=%v", x.Queue, x.SpansPerSecond, x.BytesPerSecond)
		if x.Retention > 0 {
			fmt.Fprintf(&b, " retention=%s", x.Retention)
		}
		if x.RetentionBytes > 0 {
			fmt.Fprintf(&b, " retention_bytes=%d", x.RetentionBytes)
		}
		if x.MaxSeries > 0 {
			fmt.Fprintf(&b, " max_series=%d", x.MaxSeries)
		}
		if x.MaxTraceSpans > 0 {
			fmt.Fprintf(&b, " max_trace_spans=%d", x.MaxTraceSpans)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// FuzzParseTable: an accepted table has valid, distinct names and queues
// and limits in range, and written back out it reads as the same table.
func FuzzParseTable(f *testing.F) {
	for _, s := range []string{"team-a\n", "a queue=q spans_per_second=1.5 retention=25h\n# x\nb\n", "single-tenant bytes_per_second=9\n",
		"a uri=amqp://u:p@h/v\nb uri=amqp://u:p@h/w\n", "a uri=amqp://h/v queue=zipkin\n",
		"a\na\n", "a queue=\n", "a retention=1h\n", "a retention_bytes=4096\n", "a retention_bytes=-1\n", "x spans_per_second=NaN\n", "a q\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, table string) {
		ts, err := ParseTable(strings.NewReader(table), "zipkin")
		if err != nil {
			return
		}
		names, queues := map[string]bool{}, map[string]bool{}
		for _, x := range ts {
			where := x.URI + " " + x.Queue
			if _, err := Parse(x.Name); err != nil || names[x.Name] || queues[where] || x.Queue == "" ||
				x.SpansPerSecond < 0 || x.BytesPerSecond < 0 || (x.Retention != 0 && x.Retention < 24*time.Hour) || x.RetentionBytes < 0 || x.MaxSeries < 0 || x.MaxTraceSpans < 0 {
				t.Fatalf("accepted %+v from %q", x, table)
			}
			names[x.Name], queues[where] = true, true
		}
		again, err := ParseTable(strings.NewReader(render(ts)), "zipkin")
		if err != nil || !reflect.DeepEqual(again, ts) && len(ts) > 0 {
			t.Fatalf("%q read as %+v, written back as %q, read again as %+v (%v)", table, ts, render(ts), again, err)
		}
	})
}

var tenantOracle = regexp.MustCompile(`^[A-Za-z0-9!\-_.*'()]{1,150}$`)

// FuzzParse: Parse accepts exactly what the character-class oracle accepts
// (less . and ..), and returns it unchanged.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"team-a", "", ".", "..", "a/b", strings.Repeat("x", 151), "ü", "(x)*'!"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got, err := Parse(v)
		want := tenantOracle.MatchString(v) && v != "." && v != ".."
		if (err == nil) != want || (err == nil && got != v) {
			t.Fatalf("Parse(%q) = %q, %v; oracle says %v", v, got, err, want)
		}
	})
}
