package storage_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/zipq/zipq/zipkin"
)

// TestMigrationMovesPerSpanDataIntoSegments fills a schema of the per-span
// layout (as zipq before segments stored it), migrates it, and reads every
// trace back unchanged, through lookups and search; the old table is gone.
func TestMigrationMovesPerSpanDataIntoSegments(t *testing.T) {
	t.Parallel()
	st, dsn := openLegacyStore(t)
	in := benchSpans(30000, 1) // > one move chunk, traces of 8 spans
	for i := 0; i < len(in); i += 5000 {
		if err := st.CopySpans(ctx(t), in[i:min(i+5000, len(in))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Migrate(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if n := count(t, dsn, `SELECT count(*) FROM pg_class WHERE relname = 'spans' AND relnamespace = current_schema()::regnamespace`); n != 0 {
		t.Fatal("the per-span table is still there")
	}
	stored, distinct, err := st.CountSpans(ctx(t))
	if err != nil || stored != len(in) || distinct != len(in) {
		t.Fatalf("%d stored, %d distinct, want %d: %v", stored, distinct, len(in), err)
	}
	byTrace := map[zipkin.TraceID][]zipkin.Span{}
	for _, sp := range in {
		byTrace[sp.TraceID] = append(byTrace[sp.TraceID], sp)
	}
	for id, want := range byTrace {
		got, err := st.Trace(ctx(t), id, true)
		if err != nil {
			t.Fatal(err)
		}
		sortSpans(got)
		sortSpans(want)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("trace %s: got %d spans, want %d", id, len(got), len(want))
		}
	}
	// Search works on the moved data (span_index was built for it).
	found, err := st.FindTraces(ctx(t), zipkin.QueryRequest{ServiceName: "frontend", AnnotationQuery: []string{"error"},
		EndTs: time.Now().Add(time.Minute), Lookback: time.Hour, Limit: 5}, true)
	if err != nil || len(found) != 5 {
		t.Fatalf("search after migration: %d traces, %v", len(found), err)
	}
}

// BenchmarkMigrateSegments is the migration's speed: each op moves 100,000
// spans stored by the per-span layout into segments (docs/BENCHMARKS.md
// turns it into minutes per million spans).
func BenchmarkMigrateSegments(b *testing.B) {
	const n = 100_000
	var moving time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		st, _ := openLegacyStore(b)
		for j := 0; j < n; j += 5000 {
			if err := st.CopySpans(context.Background(), benchSpans(5000, uint64(i*n+j))); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		t := time.Now()
		if err := st.Migrate(context.Background()); err != nil {
			b.Fatal(err)
		}
		moving += time.Since(t)
	}
	b.ReportMetric(float64(b.N*n)/moving.Seconds(), "spans/s")
	b.ReportMetric(moving.Seconds()/float64(b.N)*1e6/n/60, "min/Mspans")
}
