package storage_test

import (
	"context"
	"math/rand/v2"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zipq/zipq/internal/testenv"
	"github.com/zipq/zipq/storage"
	"github.com/zipq/zipq/zipkin"
)

func TestMain(m *testing.M) { testenv.VerifyNoLeaks(m) }

func openStore(t testing.TB, cfg storage.Config) (*storage.Store, string) {
	t.Helper()
	cfg.URL = testenv.Schema(t)
	st, err := storage.Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st, cfg.URL
}

func count(t *testing.T, dsn, q string, args ...any) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func decode(t *testing.T, body string) []zipkin.Span {
	t.Helper()
	spans, _, err := zipkin.Decode([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return spans
}

func sortSpans(s []zipkin.Span) {
	sort.Slice(s, func(i, j int) bool {
		if s[i].ID != s[j].ID {
			return s[i].ID < s[j].ID
		}
		return s[i].Shared != s[j].Shared
	})
}

// TestStoreContract is the store's behaviour, one table of cases, each in
// its own schema.
func TestStoreContract(t *testing.T) {
	t.Parallel()
	now := time.Now().UnixMicro()
	ts := func(offset time.Duration) string { return itoa(now + offset.Microseconds()) }
	full := `[{"traceId":"463ac35c9f6413ad48485a3953bb6124","parentId":"1","id":"a2fb4a1d1a96d312","kind":"CLIENT",
		"name":"get /users","timestamp":` + ts(0) + `,"duration":1500,"debug":true,
		"localEndpoint":{"serviceName":"frontend","ipv4":"10.0.0.1","ipv6":"2001:db8::1","port":8080},
		"remoteEndpoint":{"serviceName":"users","ipv4":"10.0.0.2","port":9000},
		"annotations":[{"timestamp":` + ts(time.Millisecond) + `,"value":"ws"}],
		"tags":{"http.method":"GET","error":"boom"}},
		{"traceId":"463ac35c9f6413ad48485a3953bb6124","parentId":"1","id":"a2fb4a1d1a96d312","kind":"SERVER","shared":true,
		"name":"get /users","timestamp":` + ts(100*time.Microsecond) + `,"duration":1000,"localEndpoint":{"serviceName":"users"}}]`

	cases := []struct {
		name string
		run  func(t *testing.T, st *storage.Store, dsn string)
	}{
		{"every field survives a round trip, halves kept apart", func(t *testing.T, st *storage.Store, dsn string) {
			in := decode(t, full)
			if err := st.WriteSpans(ctx(t), in); err != nil {
				t.Fatal(err)
			}
			got, err := oneTrace(st, ctx(t), in[0].TraceID, true)
			if err != nil {
				t.Fatal(err)
			}
			sortSpans(in)
			sortSpans(got)
			if !reflect.DeepEqual(got, in) {
				t.Fatalf("got %+v\nwant %+v", got, in)
			}
		}},
		{"a redelivered batch stores nothing new", func(t *testing.T, st *storage.Store, dsn string) {
			in := decode(t, full)
			for i := 0; i < 3; i++ {
				if err := st.WriteSpans(ctx(t), in); err != nil {
					t.Fatal(err)
				}
			}
			// The same spans as proto3 are the same segment too.
			p, _ := zipkin.EncodeProto(in)
			again, _, _ := zipkin.Decode(p)
			if err := st.WriteSpans(ctx(t), again); err != nil {
				t.Fatal(err)
			}
			if n := count(t, dsn, `SELECT count(*) FROM segments`); n != 1 {
				t.Fatalf("%d segments, want 1", n)
			}
			if n := count(t, dsn, `SELECT sum(span_count)::int FROM segments`); n != 2 {
				t.Fatalf("%d spans stored, want 2", n)
			}
			if n := count(t, dsn, `SELECT count(*) FROM span_index`); n != 1 { // one segment, one minute
				t.Fatalf("%d index rows, want 1", n)
			}
		}},
		{"non-strict lookup finds a 128-bit trace by its low half", func(t *testing.T, st *storage.Store, dsn string) {
			in := decode(t, full)
			if err := st.WriteSpans(ctx(t), in); err != nil {
				t.Fatal(err)
			}
			low := zipkin.TraceID{Low: in[0].TraceID.Low}
			if got, _ := oneTrace(st, ctx(t), low, true); len(got) != 0 {
				t.Fatalf("strict lookup by low half found %d spans", len(got))
			}
			if got, _ := oneTrace(st, ctx(t), low, false); len(got) != 2 {
				t.Fatalf("non-strict lookup found %d spans, want 2", len(got))
			}
		}},
		{"names, remote services and autocomplete are recorded", func(t *testing.T, st *storage.Store, dsn string) {
			if err := st.WriteSpans(ctx(t), decode(t, full)); err != nil {
				t.Fatal(err)
			}
			if n := count(t, dsn, `SELECT count(*) FROM span_names WHERE service IN ('frontend','users') AND name = 'get /users'`); n != 2 {
				t.Errorf("span_names: %d", n)
			}
			if n := count(t, dsn, `SELECT count(*) FROM remote_services WHERE service = 'frontend' AND remote = 'users'`); n != 1 {
				t.Errorf("remote_services: %d", n)
			}
			if n := count(t, dsn, `SELECT count(*) FROM autocomplete_tags WHERE key = 'http.method' AND value = 'GET'`); n != 1 {
				t.Errorf("autocomplete: %d", n)
			}
		}},
		{"hostile text is stored and indexed", func(t *testing.T, st *storage.Store, dsn string) {
			long := strings.Repeat("x", 10<<10)
			body := `[{"traceId":"1","id":"2","name":"a\u0000b'%_\\","timestamp":` + ts(0) +
				`,"localEndpoint":{"serviceName":"s\u0000"},"tags":{"k":"` + long + `"}}]`
			in := decode(t, body)
			if err := st.WriteSpans(ctx(t), in); err != nil {
				t.Fatal(err)
			}
			got, err := oneTrace(st, ctx(t), in[0].TraceID, true)
			if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], in[0]) {
				t.Fatalf("payload must keep the exact text: %v %+v", err, got)
			}
		}},
		{"a span reported in two messages comes back as both pieces, as Zipkin returns it", func(t *testing.T, st *storage.Store, dsn string) {
			start := decode(t, `[{"traceId":"7","id":"7","kind":"CLIENT","name":"get","timestamp":`+ts(0)+`,"localEndpoint":{"serviceName":"a"}}]`)
			finish := decode(t, `[{"traceId":"7","id":"7","kind":"CLIENT","duration":300,"localEndpoint":{"serviceName":"a"},"tags":{"http.status_code":"200"}}]`)
			for _, b := range [][]zipkin.Span{start, finish} {
				if err := st.WriteSpans(ctx(t), b); err != nil {
					t.Fatal(err)
				}
			}
			got, err := oneTrace(st, ctx(t), start[0].TraceID, true)
			if err != nil || len(got) != 2 || !reflect.DeepEqual(got[0], finish[0]) || !reflect.DeepEqual(got[1], start[0]) {
				t.Fatalf("got %+v, %v", got, err)
			}
		}},
		{"undated and far-future spans are kept, stored under their arrival", func(t *testing.T, st *storage.Store, dsn string) {
			future := time.Now().Add(30 * 24 * time.Hour).UnixMicro()
			in := decode(t, `[{"traceId":"1","id":"3"},{"traceId":"1","id":"4","timestamp":`+itoa(future)+`}]`)
			if err := st.WriteSpans(ctx(t), in); err != nil {
				t.Fatal(err)
			}
			if got, _ := oneTrace(st, ctx(t), in[0].TraceID, true); len(got) != 2 {
				t.Fatalf("got %d spans", len(got))
			}
			// Undated and dated 30 days ahead: stored under their arrival,
			// in today's partitions, so retention expires them with their
			// neighbours; the spans keep their own timestamps (above).
			if n := count(t, dsn, `SELECT count(*) FROM segments_other`) + count(t, dsn, `SELECT count(*) FROM span_index_other`); n != 0 {
				t.Fatalf("default partitions hold %d rows", n)
			}
			if n := count(t, dsn, `SELECT count(*) FROM segments WHERE ts > now() - interval '1 minute' AND ts <= now()`); n != 1 {
				t.Fatalf("%d segments stored under their arrival time", n)
			}
			if n := count(t, dsn, `SELECT count(*) FROM span_index WHERE ts > now() - interval '1 minute' AND ts_max <= now()`); n != 2 {
				t.Fatalf("%d index rows stored under their arrival time", n)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			st, dsn := openStore(t, storage.Config{AutocompleteKeys: []string{"http.method"}})
			c.run(t, st, dsn)
		})
	}
}

func TestPartitionsAndRetention(t *testing.T) {
	t.Parallel()
	st, dsn := openStore(t, storage.Config{Retention: 3 * 24 * time.Hour, PartitionsAhead: 2})
	now := time.Now().UTC()
	exists := func(rel string) bool {
		return count(t, dsn, `SELECT count(*) FROM pg_class WHERE relname = $1 AND relnamespace = current_schema()::regnamespace`, rel) == 1
	}
	// A span from 60 hours ago (within retention, before the partitions
	// made at start) goes to the default partition; when its day's
	// partition is created it must move there.
	past := now.Add(-60 * time.Hour)
	in := decode(t, `[{"traceId":"9","id":"9","name":"n","localEndpoint":{"serviceName":"s"},"timestamp":`+itoa(past.UnixMicro())+`}]`)
	if err := st.WriteSpans(ctx(t), in); err != nil {
		t.Fatal(err)
	}
	if n := count(t, dsn, `SELECT count(*) FROM segments_other`); n != 1 {
		t.Fatalf("default partition holds %d segments, want the old one", n)
	}
	if err := st.Maintain(ctx(t), now.Add(-48*time.Hour)); err != nil { // as if it ran two days ago
		t.Fatal(err)
	}
	for _, table := range []string{"segments", "span_index"} {
		part := table + "_p" + past.Format("20060102")
		if n := count(t, dsn, `SELECT count(*) FROM `+part); n != 1 {
			t.Fatalf("%s holds %d rows, want the moved one", part, n)
		}
		if n := count(t, dsn, `SELECT count(*) FROM `+table+`_other`); n != 0 {
			t.Fatalf("default still holds %d", n)
		}
	}
	if got, _ := oneTrace(st, ctx(t), in[0].TraceID, true); len(got) != 1 {
		t.Fatal("moved span not readable")
	}
	// Four days on, today's partition and the moved one are older than the
	// 3-day retention: dropped whole; the days ahead are created.
	later := now.Add(4 * 24 * time.Hour)
	if err := st.Maintain(ctx(t), later); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"segments", "span_index"} {
		for _, d := range []time.Time{now, past} {
			if exists(table + "_p" + d.Format("20060102")) {
				t.Fatalf("%s_p%s should have been dropped", table, d.Format("20060102"))
			}
		}
		if !exists(table + "_p" + later.Add(48*time.Hour).Format("20060102")) {
			t.Fatalf("%s: partitions ahead of %s not created", table, later.Format("20060102"))
		}
	}
	if got, _ := oneTrace(st, ctx(t), in[0].TraceID, true); len(got) != 0 {
		t.Fatal("an expired span is still readable")
	}
}

// TestPartitionDDLIsInTheSchema: what a daily partition carries is defined
// by SQL functions of the migrations, so an index change is one migration:
// every span_index partition has its GIN index, a partition created by a
// plain SQL call is the same as Maintain's, the encodings a SQL user
// cannot guess are commented, and cheap CHECKs refuse impossible values.
func TestPartitionDDLIsInTheSchema(t *testing.T) {
	t.Parallel()
	_, dsn := openStore(t, storage.Config{})
	if n := count(t, dsn, `SELECT count(*) FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid
		WHERE i.inhparent = 'span_index'::regclass AND c.relname ~ '_p[0-9]{8}$'
		AND to_regclass(quote_ident(c.relname || '_keys_idx')) IS NULL`); n != 0 {
		t.Fatalf("%d span_index partitions lack the keys index", n)
	}
	if n := count(t, dsn, `SELECT count(*) FROM (SELECT zipq_ensure_partition('span_index', '2031-01-02')) x`); n != 1 {
		t.Fatal("zipq_ensure_partition")
	}
	if n := count(t, dsn, `SELECT count(*) FROM pg_indexes WHERE tablename = 'span_index_p20310102' AND indexdef LIKE '%gin (keys)%'`); n != 1 {
		t.Fatal("a partition made by zipq_ensure_partition lacks the GIN index")
	}
	for _, col := range []string{"segments.trace_id_low", "segments.ts", "segments.data", "span_index.keys"} {
		table, column, _ := strings.Cut(col, ".")
		if n := count(t, dsn, `SELECT count(*) FROM pg_description d JOIN pg_attribute a ON a.attrelid = d.objoid AND a.attnum = d.objsubid
			WHERE d.objoid = $1::regclass AND a.attname = $2`, table, column); n != 1 {
			t.Errorf("%s has no COMMENT", col)
		}
	}
	conn, err := pgx.Connect(ctx(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx(t))
	for _, q := range []string{
		`INSERT INTO span_index VALUES (1, now(), now(), 0, 10, 5, '{}')`,
		`INSERT INTO trace_links (trace_id_low, trace_id_high, hour, edges) VALUES (1, 0, now(), '\x00')`,
	} {
		if _, err := conn.Exec(ctx(t), q); err == nil || !strings.Contains(err.Error(), "23514") {
			t.Errorf("%s: %v, want a check violation", q, err)
		}
	}
}

func TestSchemaIsCitusLegal(t *testing.T) {
	t.Parallel()
	_, dsn := openStore(t, storage.Config{})
	// Every unique index on the span tables (and their partitions) must
	// hold the distribution column and the partition key, or Citus
	// refuses it.
	n := count(t, dsn, `SELECT count(*) FROM pg_index i
		JOIN pg_class c ON c.oid = i.indrelid
		WHERE i.indisunique AND (c.relname IN ('segments', 'span_index') OR c.relname LIKE 'segments\_%' OR c.relname LIKE 'span\_index\_%')
		  AND c.relnamespace = current_schema()::regnamespace
		  AND NOT (ARRAY(SELECT attname FROM pg_attribute WHERE attrelid = c.oid AND attnum = ANY(i.indkey))::text[]
		           @> ARRAY['trace_id_low','ts'])`)
	if n != 0 {
		t.Fatalf("%d unique indexes lack trace_id_low and ts", n)
	}
	// Catalog joins only: pg_indexes would call pg_get_indexdef on other
	// tests' relations while they are being dropped.
	if n := count(t, dsn, `SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		JOIN pg_am a ON a.oid = c.relam WHERE i.indrelid = 'span_index'::regclass AND a.amname = 'gin'`); n != 0 {
		t.Fatal("GIN index on the span_index parent blocks Citus columnar")
	}
	// The segments table keeps its primary key (trace_id_low, ts, seg_uid).
	if n := count(t, dsn, `SELECT count(*) FROM pg_index i WHERE i.indrelid = 'segments'::regclass AND i.indisprimary`); n != 1 {
		t.Fatal("segments lost its primary key")
	}
}

func ctx(t testing.TB) context.Context { return t.Context() }

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// TestMaintainAnalyzesStaleTables: a partition filled since its last
// statistics gets analyzed by maintenance, whatever autovacuum does.
func TestMaintainAnalyzesStaleTables(t *testing.T) {
	t.Parallel()
	st, dsn := openStore(t, storage.Config{})
	in := make([]zipkin.Span, 0, 500)
	now := time.Now().UnixMicro()
	for i := 1; i <= 500; i++ {
		in = append(in, zipkin.Span{TraceID: zipkin.TraceID{Low: uint64(i)}, ID: zipkin.SpanID(i), Timestamp: now,
			LocalEndpoint: &zipkin.Endpoint{ServiceName: "s"}})
	}
	if err := st.WriteSpans(ctx(t), in); err != nil {
		t.Fatal(err)
	}
	// Linking deletes the 500 marks: dead rows for maintenance to vacuum.
	if n, err := st.Link(ctx(t), storage.LinkBatch); err != nil || n != 500 {
		t.Fatalf("linked %d: %v", n, err)
	}
	part := "span_index_p" + time.Now().UTC().Format("20060102")
	stat := func(col, table string) int {
		return count(t, dsn, `SELECT `+col+`::int FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname = $1`, table)
	}
	testenv.Eventually(t, 60*time.Second, "statistics counted", func() bool {
		return stat("n_mod_since_analyze", part) >= 500 && stat("n_dead_tup", "link_pending") >= 500
	})
	if err := st.Maintain(ctx(t), time.Now()); err != nil {
		t.Fatal(err)
	}
	if n := count(t, dsn, `SELECT count(*)::int FROM pg_stats WHERE schemaname = current_schema() AND tablename = $1 AND attname = 'trace_id_low'`, part); n != 1 {
		t.Fatalf("%s has no statistics after maintenance", part)
	}
	testenv.Eventually(t, 60*time.Second, "link_pending vacuumed", func() bool {
		return stat("(last_vacuum IS NOT NULL)::int", "link_pending") == 1
	})
}

// openLegacyStore is a schema of the per-span layout zipq stored before
// segments (migrations up to storage.LegacyVersion).
func openLegacyStore(t testing.TB) (*storage.Store, string) {
	t.Helper()
	return openStoreAt(t, storage.Config{}, storage.LegacyVersion)
}

// openStoreAt is a schema migrated up to version, no further: what an
// installation of the version that had those migrations holds (openStore's
// schema is migrated whole, and MigrateTo never goes back).
func openStoreAt(t testing.TB, cfg storage.Config, version int64) (*storage.Store, string) {
	t.Helper()
	cfg.URL = testenv.EmptySchema(t)
	st, err := storage.Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if err := st.MigrateTo(context.Background(), version); err != nil {
		t.Fatal(err)
	}
	return st, cfg.URL
}

// TestCompactedTraceIsLinkedWhole: a trace's spans written in three
// writes, the linker run after the first two (it reads the trace and
// queues it for compaction), then the root span written, then the
// compactor merging all three segments before the linker sees the root's
// mark. The mark carries the root segment's links (none); the trace is in
// one segment again, but not that one, so the linker must read it whole
// and keep the call's link (the edge TestRealClientsEndToEnd lost under
// load).
func TestCompactedTraceIsLinkedWhole(t *testing.T) {
	t.Parallel()
	st, _ := openStore(t, storage.Config{})
	now := time.Now().UnixMicro()
	id := zipkin.TraceID{Low: 0x51}
	span := func(sid, parent uint64, svc, remote string, kind zipkin.Kind, shared bool) []zipkin.Span {
		s := zipkin.Span{TraceID: id, ID: zipkin.SpanID(sid), ParentID: zipkin.SpanID(parent), Kind: kind, Shared: shared,
			Name: "get", Timestamp: now + int64(sid), Duration: 10, LocalEndpoint: &zipkin.Endpoint{ServiceName: svc}}
		if remote != "" {
			s.RemoteEndpoint = &zipkin.Endpoint{ServiceName: remote}
		}
		return []zipkin.Span{s}
	}
	write := func(spans []zipkin.Span) {
		if err := st.WriteSpans(ctx(t), spans); err != nil {
			t.Fatal(err)
		}
	}
	link := func() {
		for n := 1; n > 0; {
			var err error
			if n, err = st.Link(ctx(t), storage.LinkBatch); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(span(2, 1, "catalog", "", zipkin.KindServer, true)) // the callee's half first, as an SDK exports it
	write(span(2, 1, "gateway", "catalog", zipkin.KindClient, false))
	link()
	write(span(1, 0, "gateway", "", zipkin.KindServer, false)) // the root, last to end
	if n, err := st.Compact(ctx(t), storage.CompactBatch); err != nil || n != 1 {
		t.Fatalf("compacted %d traces, %v", n, err)
	}
	link()
	want := []zipkin.DependencyLink{{Parent: "gateway", Child: "catalog", CallCount: 1}}
	links, err := st.Dependencies(ctx(t), time.Now().Add(time.Minute), time.Hour)
	if err != nil || !reflect.DeepEqual(links, want) {
		t.Fatalf("links %+v (%v), want %+v", links, err, want)
	}
}

// TestRedeliveryCutDifferentlyIsMergedAndCompacted: a redelivered message
// can land in a batch with other spans of its trace, so the segment it
// makes differs from the first one. No read shows a span twice, and the
// linker folds the trace into one segment holding each span once.
func TestRedeliveryCutDifferentlyIsMergedAndCompacted(t *testing.T) {
	t.Parallel()
	st, dsn := openStore(t, storage.Config{})
	now := time.Now().UnixMicro()
	span := func(id uint64, svc, remote string, kind zipkin.Kind, parent uint64) zipkin.Span {
		s := zipkin.Span{TraceID: zipkin.TraceID{Low: 77}, ID: zipkin.SpanID(id), ParentID: zipkin.SpanID(parent), Kind: kind,
			Name: "op", Timestamp: now + int64(id), Duration: 10, LocalEndpoint: &zipkin.Endpoint{ServiceName: svc}}
		if remote != "" {
			s.RemoteEndpoint = &zipkin.Endpoint{ServiceName: remote}
		}
		return s
	}
	a, b, c := span(1, "web", "", zipkin.KindServer, 0), span(2, "web", "db", zipkin.KindClient, 1), span(3, "web", "cache", zipkin.KindClient, 1)
	for _, batch := range [][]zipkin.Span{{a, b}, {b, c}, {a, b}} {
		if err := st.WriteSpans(ctx(t), batch); err != nil {
			t.Fatal(err)
		}
	}
	if stored, distinct, _ := st.CountSpans(ctx(t)); stored != 4 || distinct != 3 {
		t.Fatalf("%d stored, %d distinct: want 4 and 3 (two segments, the third batch a repeat of the first)", stored, distinct)
	}
	got, err := oneTrace(st, ctx(t), zipkin.TraceID{Low: 77}, true)
	if err != nil || len(got) != 3 {
		t.Fatalf("trace: %d spans, %v", len(got), err)
	}
	found, err := st.FindTraces(ctx(t), zipkin.QueryRequest{ServiceName: "web", EndTs: time.Now().Add(time.Second), Lookback: time.Hour, Limit: 10}, true)
	if err != nil || len(found) != 1 || len(found[0]) != 3 {
		t.Fatalf("search: %v %v", found, err)
	}
	if _, err := st.Link(ctx(t), storage.LinkBatch); err != nil {
		t.Fatal(err)
	}
	// Linking reads the trace and queues it; the compactor, a job of its
	// own, rewrites it.
	if n := count(t, dsn, `SELECT count(*) FROM segments`); n != 2 {
		t.Fatalf("%d segments before compaction, want 2", n)
	}
	if n, err := st.Compact(ctx(t), storage.CompactBatch); err != nil || n != 1 {
		t.Fatalf("compacted %d traces, %v: want the one queued", n, err)
	}
	if n := count(t, dsn, `SELECT count(*) FROM segments`); n != 1 {
		t.Fatalf("%d segments after compaction, want 1", n)
	}
	if n, err := st.Compact(ctx(t), storage.CompactBatch); err != nil || n != 0 {
		t.Fatalf("a second round compacted %d, %v: the queue should be empty", n, err)
	}
	if stored, distinct, _ := st.CountSpans(ctx(t)); stored != 3 || distinct != 3 {
		t.Fatalf("after compaction %d stored, %d distinct", stored, distinct)
	}
	if again, _ := oneTrace(st, ctx(t), zipkin.TraceID{Low: 77}, true); !reflect.DeepEqual(again, got) {
		t.Fatalf("compaction changed the trace:\n%+v\n%+v", again, got)
	}
	links, err := st.Dependencies(ctx(t), time.Now().Add(time.Hour), 3*time.Hour)
	if err != nil || len(links) != 2 || links[0].CallCount != 1 || links[1].CallCount != 1 {
		t.Fatalf("links %+v %v", links, err)
	}
}

// TestHostileSpansAreStoredWithTheirNeighbours: spans whose fields defeat a
// compact index — 10 KB names, 10,000 tags, NUL and invalid UTF-8, dates
// far in the past or future — are stored in one batch with ordinary
// neighbours, read back exactly, and found by search by their full names.
func TestHostileSpansAreStoredWithTheirNeighbours(t *testing.T) {
	t.Parallel()
	st, _ := openStore(t, storage.Config{AutocompleteKeys: []string{"k"}})
	now := time.Now()
	// 10 KB, incompressible (a compressible name fits a B-tree entry
	// after compression and would prove nothing).
	long := randomText(10 << 10)
	many := map[string]string{}
	for i := range 10000 {
		many["tag"+strconv.Itoa(i)] = strconv.Itoa(i)
	}
	mk := func(trace uint64, mod func(*zipkin.Span)) zipkin.Span {
		s := zipkin.Span{TraceID: zipkin.TraceID{Low: trace}, ID: zipkin.SpanID(trace), Name: "ok", Timestamp: now.UnixMicro(),
			Duration: 5, LocalEndpoint: &zipkin.Endpoint{ServiceName: "svc"}}
		if mod != nil {
			mod(&s)
		}
		return s
	}
	in := []zipkin.Span{
		mk(1, nil),
		mk(2, func(s *zipkin.Span) {
			s.Name, s.LocalEndpoint.ServiceName, s.RemoteEndpoint = long, long+"s", &zipkin.Endpoint{ServiceName: long + "r"}
			s.Tags = map[string]string{"k": long}
		}),
		mk(3, func(s *zipkin.Span) { s.Tags = many }),
		// Invalid UTF-8 never gets this far: both decoders refuse or replace
		// it (proto3 strings must be UTF-8; JSON decoding maps it to U+FFFD).
		mk(4, func(s *zipkin.Span) { s.Name, s.Tags = "a\x00b\uFFFD", map[string]string{"k\x00": "\x00"} }),
		mk(5, func(s *zipkin.Span) { s.Timestamp = 1 }),                                     // 1970
		mk(6, func(s *zipkin.Span) { s.Timestamp = now.AddDate(200000, 0, 0).UnixMicro() }), // far future
		mk(7, func(s *zipkin.Span) { s.Timestamp, s.Annotations = 0, nil }),                 // undated
		mk(8, nil),
	}
	if err := st.WriteSpans(ctx(t), in); err != nil {
		t.Fatal(err)
	}
	for _, want := range in {
		got, err := oneTrace(st, ctx(t), want.TraceID, true)
		if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], want) {
			t.Fatalf("trace %s: %v, %d spans", want.TraceID, err, len(got))
		}
	}
	q := zipkin.QueryRequest{EndTs: now.Add(time.Second), Lookback: time.Hour, Limit: 10}
	for _, c := range []struct {
		name string
		q    func(*zipkin.QueryRequest)
		want uint64
	}{
		{"10 KB service name", func(r *zipkin.QueryRequest) { r.ServiceName = long + "s" }, 2},
		{"10 KB span name", func(r *zipkin.QueryRequest) { r.SpanName = long }, 2},
		{"10 KB remote service", func(r *zipkin.QueryRequest) { r.RemoteServiceName = long + "r" }, 2},
		{"one of 10,000 tags", func(r *zipkin.QueryRequest) { r.AnnotationQuery = []string{"tag9999=9999"} }, 3},
		{"NUL and U+FFFD", func(r *zipkin.QueryRequest) { r.SpanName = "a\x00b\uFFFD" }, 4},
	} {
		r := q
		c.q(&r)
		got, err := st.FindTraces(ctx(t), r, true)
		if err != nil || len(got) != 1 || got[0][0].TraceID.Low != c.want {
			t.Errorf("%s: %v %d traces", c.name, err, len(got))
		}
	}
	names, err := st.ServiceNames(ctx(t))
	if err != nil || len(names) != 2 || names[1] != long+"s" {
		t.Fatalf("service names: %v (%d)", err, len(names))
	}
	if spans, err := st.SpanNames(ctx(t), long+"s"); err != nil || len(spans) != 1 || spans[0] != long {
		t.Fatalf("span names of the long service: %v (%d)", err, len(spans))
	}
	if tags, err := st.AutocompleteValues(ctx(t), "k"); err != nil || len(tags) != 1 || tags[0] != long {
		t.Fatalf("autocomplete values: %v (%d)", err, len(tags))
	}
}

// TestTraceOf100kSpansOverAnHour: one trace's spans arrive in 100 batches
// spread over an hour (each with other traces' spans); it is stored whole,
// read back whole, found by search, and linked.
func TestTraceOf100kSpansOverAnHour(t *testing.T) {
	t.Parallel()
	st, _ := openStore(t, storage.Config{})
	start := time.Now().Add(-time.Hour)
	big := zipkin.TraceID{High: 1, Low: 0xb16}
	const batches, per = 100, 1000
	for b := range batches {
		spans := make([]zipkin.Span, 0, per+1)
		for i := range per {
			id := uint64(b*per + i + 1)
			s := zipkin.Span{TraceID: big, ID: zipkin.SpanID(id), ParentID: zipkin.SpanID(max(1, id/2)), Kind: zipkin.KindServer,
				Name: "step", Timestamp: start.Add(time.Duration(id) * 36 * time.Millisecond).UnixMicro(), Duration: 100,
				LocalEndpoint: &zipkin.Endpoint{ServiceName: "svc" + strconv.Itoa(int(id%7))}}
			if id == 1 {
				s.ParentID = 0
			}
			spans = append(spans, s)
		}
		spans = append(spans, zipkin.Span{TraceID: zipkin.TraceID{Low: uint64(b + 1)}, ID: 1, Name: "neighbour",
			Timestamp: time.Now().UnixMicro(), LocalEndpoint: &zipkin.Endpoint{ServiceName: "other"}})
		if err := st.WriteSpans(ctx(t), spans); err != nil {
			t.Fatal(err)
		}
		if b%10 == 9 {
			if _, err := st.Link(ctx(t), storage.LinkBatch); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := oneTrace(st, ctx(t), big, true)
	if err != nil || len(got) != batches*per {
		t.Fatalf("%d spans, %v", len(got), err)
	}
	for i := 1; i < len(got); i++ {
		if got[i].StartTime() < got[i-1].StartTime() {
			t.Fatal("spans out of order")
		}
	}
	found, err := st.FindTraces(ctx(t), zipkin.QueryRequest{ServiceName: "svc3", EndTs: time.Now(), Lookback: 2 * time.Hour, Limit: 10}, true)
	if err != nil || len(found) != 1 || len(found[0]) != batches*per {
		t.Fatalf("search: %d traces, %v", len(found), err)
	}
	for b := range batches {
		if n, _ := oneTrace(st, ctx(t), zipkin.TraceID{Low: uint64(b + 1)}, true); len(n) != 1 {
			t.Fatalf("neighbour %d lost", b+1)
		}
	}
	links, err := st.Dependencies(ctx(t), time.Now().Add(time.Hour), 3*time.Hour)
	if err != nil || len(links) == 0 {
		t.Fatalf("no links for the big trace: %v", err)
	}
}

func randomText(n int) string {
	b := make([]byte, n)
	r := uint64(88172645463325252)
	for i := range b {
		r ^= r << 13
		r ^= r >> 7
		r ^= r << 17
		b[i] = 'a' + byte(r%26)
	}
	return string(b)
}

// oneTrace is the trace with id, or nil.
func oneTrace(st *storage.Store, ctx context.Context, id zipkin.TraceID, strict bool) ([]zipkin.Span, error) {
	traces, err := st.Traces(ctx, []zipkin.TraceID{id}, strict)
	if err != nil || len(traces) == 0 {
		return nil, err
	}
	return traces[0], nil
}

// TestOneDatingRuleForEveryRow: a trace dated far in the future (a client
// sending nanoseconds for microseconds) and an undated one are stored
// under their arrival — segments, index rows, name rows and links alike —
// so retention removes all of them together. Name rows and links were
// dated by the spans' own timestamps before, and outlived their spans
// (the undated ones' were removed at once, dated 1970).
func TestOneDatingRuleForEveryRow(t *testing.T) {
	t.Parallel()
	st, dsn := openStore(t, storage.Config{Retention: 3 * 24 * time.Hour, PartitionsAhead: 1, AutocompleteKeys: []string{"k"}})
	now := time.Now().UTC()
	future := now.Add(100 * 365 * 24 * time.Hour).UnixMicro()
	body := func(trace string, ts string) string {
		return `[{"traceId":"` + trace + `","id":"1","kind":"CLIENT","name":"call","localEndpoint":{"serviceName":"front"},` +
			`"remoteEndpoint":{"serviceName":"back"},"tags":{"k":"v"}` + ts + `},` +
			`{"traceId":"` + trace + `","id":"2","parentId":"1","kind":"SERVER","name":"serve","localEndpoint":{"serviceName":"back"}` + ts + `}]`
	}
	for _, b := range []string{body("f0", `,"timestamp":`+itoa(future)+`,"duration":5`), body("e0", ``)} {
		if err := st.WriteSpans(ctx(t), decode(t, b)); err != nil {
			t.Fatal(err)
		}
	}
	for {
		n, err := st.Link(ctx(t), storage.LinkBatch)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	today, hour := now.Truncate(24*time.Hour), now.Truncate(time.Hour)
	for q, want := range map[string]int{
		`SELECT count(*) FROM span_names WHERE day = $1::timestamptz::date`:           2, // front/call and back/serve, of both traces
		`SELECT count(*) FROM remote_services WHERE day = $1::timestamptz::date`:      1,
		`SELECT count(*) FROM autocomplete_tags WHERE day = $1::timestamptz::date`:    1,
		`SELECT count(*) FROM segments WHERE ts >= $1 AND ts < $1 + interval '1 day'`: 2,
	} {
		if n := count(t, dsn, q, today); n != want {
			t.Errorf("%s: %d rows dated today, want %d", q, n, want)
		}
	}
	if n := count(t, dsn, `SELECT count(*) FROM trace_links WHERE hour BETWEEN $1 AND $1 + interval '1 hour'`, hour); n != 2 {
		t.Errorf("%d trace_links rows dated by their arrival hour, want 2", n)
	}
	if n := count(t, dsn, `SELECT count(*) FROM span_names WHERE day > $1::timestamptz::date OR day < $1::timestamptz::date - 1`, today); n != 0 {
		t.Errorf("%d name rows dated by the spans' own far or missing timestamps", n)
	}
	// Past retention, nothing of either trace is left anywhere.
	if err := st.Maintain(ctx(t), now.Add(5*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"segments", "span_index", "span_names", "remote_services", "autocomplete_tags", "trace_links", "dependency_links"} {
		if n := count(t, dsn, `SELECT count(*) FROM `+table); n != 0 {
			t.Errorf("%s: %d rows outlived retention", table, n)
		}
	}
}

// TestWalkReadsNewestFirstWithStaleStatistics: right after a burst of
// spans, before the partition is analyzed again, PostgreSQL's own choice
// for the search walk reads every row of the window and sorts them (the
// first-minute tail of issue 22); the walk's step must still be the
// ordered index scan that stops at its limit.
func TestWalkReadsNewestFirstWithStaleStatistics(t *testing.T) {
	t.Parallel()
	st, dsn := openStore(t, storage.Config{})
	day := time.Now().UTC().Truncate(24 * time.Hour)
	part := pgx.Identifier{"span_index_p" + day.Format("20060102")}.Sanitize()
	conn, err := pgx.Connect(ctx(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	start, end := day.Add(10*time.Hour), day.Add(11*time.Hour)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		// Statistics of the empty partition, kept stale.
		{`ALTER TABLE ` + part + ` SET (autovacuum_enabled = false)`, nil},
		{`ANALYZE ` + part, nil},
		// 50,000 rows in the hour, one every 72 ms.
		{`INSERT INTO span_index (trace_id_low, trace_id_high, ts, ts_max, keys)
		  SELECT i, 0, $1::timestamptz + i * interval '72 ms', $1::timestamptz + i * interval '72 ms', '{1}' FROM generate_series(0, 49999) i`, []any{start}},
	} {
		if _, err := conn.Exec(ctx(t), q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	plain, err := st.WalkPlan(ctx(t), start, end, false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plain, "Sort") {
		t.Logf("PostgreSQL no longer picks a sort on stale statistics here; the test guards nothing until its data does again:\n%s", plain)
	}
	step, err := st.WalkPlan(ctx(t), start, end, true)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(step, "Sort") || !strings.Contains(step, "Index Scan Backward") {
		t.Fatalf("the walk's step does not read the ts_max index newest first:\n%s", step)
	}
}

// fourDays makes the daily partitions from four days ago (and the day
// before) on and writes traces of statSpans into each of the last four
// days for each of cs, dated within the day; it returns each one's first
// trace ID by days ago.
func fourDays(t *testing.T, st *storage.Store, now time.Time, seed uint64, traces int, cs ...context.Context) map[context.Context]map[int]zipkin.TraceID {
	t.Helper()
	if err := st.Maintain(ctx(t), now.Add(-3*24*time.Hour)); err != nil { // the partitions of three days ago on
		t.Fatal(err)
	}
	if err := st.Maintain(ctx(t), now); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, seed+1))
	first := map[context.Context]map[int]zipkin.TraceID{}
	for d := range 4 {
		for _, c := range cs {
			spans := statSpans(r, traces, now.Add(-time.Duration(d)*24*time.Hour))
			for i := range spans { // within the day, whatever the generator's late tenth
				spans[i].Timestamp = max(spans[i].Timestamp, now.Add(-time.Duration(d)*24*time.Hour).Truncate(24*time.Hour).UnixMicro())
			}
			if first[c] == nil {
				first[c] = map[int]zipkin.TraceID{}
			}
			first[c][d] = spans[0].TraceID
			if err := st.WriteSpans(c, spans); err != nil {
				t.Fatal(err)
			}
		}
	}
	return first
}

// TestRetentionBudget: past ZIPQ_RETENTION_BYTES, whole days are dropped
// oldest first until the schema fits (the bytes it takes fall by what the
// dropped partitions took), the days kept stay readable, and today's
// partition is never dropped: a budget it alone exceeds is reported.
func TestRetentionBudget(t *testing.T) {
	t.Parallel()
	st, dsn := openStore(t, storage.Config{})
	now := time.Now().UTC()
	first := fourDays(t, st, now, 8, 1500, ctx(t))[ctx(t)]
	before, err := st.Usage(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	oldest := now.Add(-3 * 24 * time.Hour).Truncate(24 * time.Hour)
	if !before.OldestDay.Equal(oldest.Add(-24 * time.Hour)) { // Maintain made the day before too
		t.Fatalf("oldest day %v, want %v", before.OldestDay, oldest.Add(-24*time.Hour))
	}
	partBytes := func(d time.Time) int64 {
		return int64(count(t, dsn, `SELECT (pg_total_relation_size($1::regclass) + pg_total_relation_size($2::regclass))::int`,
			"segments_p"+d.Format("20060102"), "span_index_p"+d.Format("20060102")))
	}
	dropped := partBytes(oldest.Add(-24*time.Hour)) + partBytes(oldest)
	// A budget the two oldest days' partitions must go for.
	budget := before.Bytes - dropped + 8192
	tight, err := storage.Open(ctx(t), storage.Config{URL: dsn, RetentionBytes: budget}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tight.Close)
	if err := tight.Maintain(ctx(t), now); err != nil {
		t.Fatal(err)
	}
	after := tight.LastUsage()
	if after.Bytes > budget || after.Bytes > before.Bytes-dropped+8192 || after.OverBudget {
		t.Fatalf("%d bytes after, %d before, %d in the dropped days, budget %d (over: %v)", after.Bytes, before.Bytes, dropped, budget, after.OverBudget)
	}
	if want := oldest.Add(24 * time.Hour); !after.OldestDay.Equal(want) {
		t.Fatalf("oldest day kept %v, want %v", after.OldestDay, want)
	}
	for d, id := range first {
		got, err := oneTrace(tight, ctx(t), id, true)
		if err != nil {
			t.Fatal(err)
		}
		if (len(got) > 0) != (d < 3) {
			t.Fatalf("day -%d: %d spans of its first trace readable", d, len(got))
		}
	}
	// A budget below today's spans: everything before today goes, today's
	// stays, and the report says so.
	tiny, err := storage.Open(ctx(t), storage.Config{URL: dsn, RetentionBytes: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tiny.Close)
	if err := tiny.Maintain(ctx(t), now); err != nil {
		t.Fatal(err)
	}
	if u := tiny.LastUsage(); !u.OverBudget || !u.OldestDay.Equal(now.Truncate(24*time.Hour)) {
		t.Fatalf("usage %+v: want over budget with today's partition the oldest", u)
	}
	if got, _ := oneTrace(tiny, ctx(t), first[0], true); len(got) == 0 {
		t.Fatal("today's spans were dropped")
	}
}
