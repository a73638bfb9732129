package storage_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zipq/zipq/storage"
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
	// Rows the per-span layout's name and link tables held, keyed by text.
	conn, err := pgx.Connect(ctx(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx(t))
	if _, err := conn.Exec(ctx(t), `INSERT INTO span_names VALUES (current_date, 'old-svc', 'old op');
		INSERT INTO remote_services VALUES (current_date, 'old-svc', 'old-db');
		INSERT INTO autocomplete_tags VALUES (current_date, 'env', 'prod');
		INSERT INTO dependency_links VALUES (date_trunc('hour', now()), 'old-svc', 'old-db', 7, 1);
		INSERT INTO trace_links VALUES (5, 0, date_trunc('hour', now()),
			'[{"parent":"old-svc","child":"old-db","callCount":7,"errorCount":1}]')`); err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx(t)); err != nil {
		t.Fatal(err)
	}
	// They are found by the hash keys migration 00005 gave them.
	for _, c := range []struct {
		got  func() ([]string, error)
		want string
	}{
		{func() ([]string, error) { return st.SpanNames(ctx(t), "old-svc") }, "old op"},
		{func() ([]string, error) { return st.RemoteServiceNames(ctx(t), "old-svc") }, "old-db"},
		{func() ([]string, error) { return st.AutocompleteValues(ctx(t), "env") }, "prod"},
	} {
		if got, err := c.got(); err != nil || len(got) != 1 || got[0] != c.want {
			t.Fatalf("names after migration: %v %v, want %s", got, err, c.want)
		}
	}
	// New links for the same edge add to the migrated row; trace 5,
	// re-linked without that edge, takes its migrated contribution (7
	// calls, 1 error) back out: 7 + 1 - 7 = 1.
	if err := st.WriteSpans(ctx(t), []zipkin.Span{{TraceID: zipkin.TraceID{Low: 1 << 62}, ID: 1, Kind: zipkin.KindClient,
		Timestamp: time.Now().UnixMicro(), LocalEndpoint: &zipkin.Endpoint{ServiceName: "old-svc"},
		RemoteEndpoint: &zipkin.Endpoint{ServiceName: "old-db"}},
		{TraceID: zipkin.TraceID{Low: 5}, ID: 5, Timestamp: time.Now().UnixMicro(), LocalEndpoint: &zipkin.Endpoint{ServiceName: "old-svc"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Link(ctx(t), storage.LinkBatch); err != nil {
		t.Fatal(err)
	}
	links, err := st.Dependencies(ctx(t), time.Now().Add(time.Hour), 2*time.Hour)
	if err != nil || len(links) == 0 || links[len(links)-1].Parent != "old-svc" || links[len(links)-1].CallCount != 1 || links[len(links)-1].ErrorCount != 0 {
		t.Fatalf("links after migration: %+v %v", links, err)
	}
	if n := count(t, dsn, `SELECT count(*) FROM pg_class WHERE relname = 'spans' AND relnamespace = current_schema()::regnamespace`); n != 0 {
		t.Fatal("the per-span table is still there")
	}
	stored, distinct, err := st.CountSpans(ctx(t))
	if err != nil || stored != len(in)+2 || distinct != len(in)+2 { // and the two written since
		t.Fatalf("%d stored, %d distinct, want %d: %v", stored, distinct, len(in), err)
	}
	byTrace := map[zipkin.TraceID][]zipkin.Span{}
	for _, sp := range in {
		byTrace[sp.TraceID] = append(byTrace[sp.TraceID], sp)
	}
	for id, want := range byTrace {
		got, err := oneTrace(st, ctx(t), id, true)
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

// TestLatestMigrationIsKnown: CheckMigrated (what a standby is asked for)
// wants the newest migration, derived from the migrations themselves.
func TestLatestMigrationIsKnown(t *testing.T) {
	t.Parallel()
	st, _ := openStore(t, storage.Config{})
	if err := st.CheckMigrated(ctx(t)); err != nil {
		t.Fatal(err)
	}
	legacy, _ := openLegacyStore(t)
	if err := legacy.CheckMigrated(ctx(t)); err == nil || !strings.Contains(err.Error(), "version 3") {
		t.Fatalf("a schema at version 3 must be refused: %v", err)
	}
}

// TestSearchIndexPendingList: migration 00015 gives the GIN index of every
// span_index partition made before it (and the default partition's) the
// small pending list, and partitions made after get it at creation.
func TestSearchIndexPendingList(t *testing.T) {
	t.Parallel()
	st, dsn := openStoreAt(t, storage.Config{}, 14)
	for d := range 3 { // today's and the days ahead, as that version's maintenance made them
		day := time.Now().UTC().AddDate(0, 0, d).Format(time.DateOnly)
		if n := count(t, dsn, `SELECT count(*) FROM (SELECT zipq_ensure_partition('segments', $1::date), zipq_ensure_partition('span_index', $1::date)) x`, day); n != 1 {
			t.Fatal("partitions not made")
		}
	}
	if err := st.Migrate(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := st.Maintain(ctx(t), time.Now().Add(72*time.Hour)); err != nil { // more days, made since
		t.Fatal(err)
	}
	const gins = `SELECT count(*) FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid JOIN pg_am a ON a.oid = c.relam
		JOIN pg_inherits i ON i.inhrelid = x.indrelid WHERE i.inhparent = 'span_index'::regclass AND a.amname = 'gin'`
	all := count(t, dsn, gins)
	small := count(t, dsn, gins+` AND 'gin_pending_list_limit=256' = ANY(c.reloptions)`)
	if all < 5 || small != all {
		t.Fatalf("%d of %d span_index GIN indexes have the 256 kB pending list", small, all)
	}
}
