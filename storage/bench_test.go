package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zipq/zipq/ingest"
	"github.com/zipq/zipq/internal/tenant"
	"github.com/zipq/zipq/internal/testenv"
	"github.com/zipq/zipq/storage"
	"github.com/zipq/zipq/zipkin"
)

// benchSpans makes realistic spans: multi-service traces, six tags, some
// annotations and errors.
func benchSpans(n int, seed uint64) []zipkin.Span {
	now := time.Now().UnixMicro()
	out := make([]zipkin.Span, n)
	services := []string{"frontend", "checkout", "payments", "inventory", "users"}
	for i := range out {
		id := seed*uint64(n) + uint64(i) + 1
		s := zipkin.Span{
			TraceID: zipkin.TraceID{High: 0x5af7183fb1d4cf5f, Low: id / 8}, ID: zipkin.SpanID(id), ParentID: zipkin.SpanID(id - id%8),
			Kind: zipkin.KindServer, Name: "get /api/v1/items", Timestamp: now + int64(i), Duration: int64(100 + i%5000),
			LocalEndpoint:  &zipkin.Endpoint{ServiceName: services[i%5], Port: 8080},
			RemoteEndpoint: &zipkin.Endpoint{ServiceName: services[(i+1)%5]},
			Tags: map[string]string{"http.method": "GET", "http.path": "/api/v1/items", "http.status_code": "200",
				"component": "net/http", "peer.hostname": "10.0.0.12", "instance": fmt.Sprint(i % 7)},
		}
		if i%4 == 0 {
			s.Annotations = []zipkin.Annotation{{Timestamp: now + int64(i) + 5, Value: "wire.send"}}
		}
		if i%20 == 0 {
			s.Tags["error"] = "timeout"
		}
		if s.ParentID == s.ID {
			s.ParentID = 0
		}
		out[i] = s
	}
	return out
}

// BenchmarkWrite compares zipq's write path (segments, span_index, name
// tables, linker marks; idempotent) with the baseline: a raw per-span COPY
// into the per-span layout's spans table and indexes. Each op writes one
// 5,000-span batch.
func BenchmarkWrite(b *testing.B) {
	// The -hour variants date the batch's traces across the last hour
	// (zipq-bench's generator does), so a batch adds a service-metrics row
	// per cell and minute: the worst case for that cost.
	// -columns also writes the span columns (as zipq does since migration
	// 20): their cost against the same path without.
	for _, path := range []string{"raw-copy", "idempotent", "idempotent-columns", "idempotent-no-stats", "idempotent-hour", "idempotent-hour-no-stats"} {
		b.Run(path, func(b *testing.B) {
			cfg := storage.Config{NoStats: strings.HasSuffix(path, "no-stats")}
			if strings.HasSuffix(path, "columns") {
				cfg.Columns = ingest.SpanColumns
			}
			st, _ := openStore(b, cfg)
			if path == "raw-copy" {
				st, _ = openLegacyStore(b)
			}
			const batch = 5000
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				spans := benchSpans(batch, uint64(i))
				if strings.Contains(path, "hour") {
					for j := range spans {
						spans[j].Timestamp -= int64(spans[j].TraceID.Low*7919%3600) * 1_000_000
					}
				}
				b.StartTimer()
				var err error
				if path == "raw-copy" {
					err = st.CopySpans(context.Background(), spans)
				} else {
					err = st.WriteSpans(context.Background(), spans)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "spans/s")
		})
	}
}

// BenchmarkLink measures the dependency linker, the work that keeps
// /dependencies current: each op stores a 5,000-span batch (625 traces,
// untimed) and then links every marked trace (timed).
func BenchmarkLink(b *testing.B) {
	st, _ := openStore(b, storage.Config{})
	const batch = 5000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if err := st.WriteSpans(context.Background(), benchSpans(batch, uint64(i))); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for {
			n, err := st.Link(context.Background(), storage.LinkBatch)
			if err != nil {
				b.Fatal(err)
			}
			if n == 0 {
				break
			}
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "spans/s")
}

// BenchmarkDependencies answers /dependencies for one day. Its cost depends
// on edges × hours, not on span volume: however many spans a day holds
// (10M or more), the linker has folded them into one row per edge per
// hour. The table holds a day of 400 edges between 60 services, far more
// than most systems; counts are what 10M spans would give.
func BenchmarkDependencies(b *testing.B) {
	st, dsn := openStore(b, storage.Config{})
	end := time.Now().UTC().Truncate(time.Hour)
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), `INSERT INTO dependency_links (hour, parent, child, calls, errors, pair_h)
		SELECT hour, parent, child, 1042, 13, zipq_key(parent, child) FROM (
			SELECT $1::timestamptz - h * interval '1 hour' AS hour, 'svc-' || (e % 60) AS parent,
			       'svc-' || ((e * 7 + 1) % 60) || '-' || (e / 60) AS child
			FROM generate_series(0, 23) h, generate_series(0, 399) e) d`, end); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		links, err := st.Dependencies(context.Background(), end, 24*time.Hour)
		if err != nil || len(links) != 400 {
			b.Fatalf("%d links, %v", len(links), err)
		}
	}
}

// BenchmarkWritePostgres is where PostgreSQL's time and bytes go per span
// for the per-span layout's raw COPY (the "before", and a lower bound of
// it: the per-span store also staged and re-inserted every row) and for
// segments: the CPU of the one backend doing the writes (from /proc, the
// server runs on this machine) and the WAL it generated. Run it alone: WAL
// is server-wide.
func BenchmarkWritePostgres(b *testing.B) {
	for _, path := range []string{"per-span-copy", "segments"} {
		b.Run(path, func(b *testing.B) {
			var st *storage.Store
			var dsn string
			if path == "per-span-copy" {
				st, dsn = openLegacyStore(b)
			} else {
				st, dsn = openStore(b, storage.Config{})
			}
			one, err := storage.Open(context.Background(), storage.Config{URL: dsn, MaxConns: 1}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer one.Close()
			_ = st
			conn, err := pgx.Connect(context.Background(), dsn)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close(context.Background())
			// The single pooled connection's backend, found by its own query.
			var pid int
			var lsn0, lsn1 string
			const batch = 5000
			write := func(spans []zipkin.Span) error {
				if path == "per-span-copy" {
					return one.CopySpans(context.Background(), spans)
				}
				return one.WriteSpans(context.Background(), spans)
			}
			if err := write(benchSpans(10, 1<<40)); err != nil { // connect the one backend
				b.Fatal(err)
			}
			if err := conn.QueryRow(context.Background(), `SELECT pid FROM pg_stat_activity
				WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
				  AND application_name = '' ORDER BY backend_start DESC LIMIT 1`).Scan(&pid); err != nil {
				b.Fatal(err)
			}
			cpu0 := backendCPU(b, pid)
			_ = conn.QueryRow(context.Background(), `SELECT pg_current_wal_lsn()::text`).Scan(&lsn0)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				spans := benchSpans(batch, uint64(i))
				b.StartTimer()
				if err := write(spans); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			cpu := backendCPU(b, pid) - cpu0
			var wal float64
			_ = conn.QueryRow(context.Background(), `SELECT pg_current_wal_lsn()::text`).Scan(&lsn1)
			_ = conn.QueryRow(context.Background(), `SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)`, lsn1, lsn0).Scan(&wal)
			n := float64(b.N * batch)
			b.ReportMetric(n/b.Elapsed().Seconds(), "spans/s")
			b.ReportMetric(cpu.Seconds()*1e6/n, "pg-cpu-µs/span")
			b.ReportMetric(wal/n, "wal-B/span")
		})
	}
}

// backendCPU is a PostgreSQL backend's user+system CPU time so far.
func backendCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Skipf("backend %d not readable (PostgreSQL on another machine?): %v", pid, err)
	}
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // clock ticks (USER_HZ = 100)
}

// BenchmarkServicesPage is the Services page's read: 50 services × 10
// operations with calls in every minute of the last 24 hours (2 spans per
// cell and minute, durations spread over three decades), folded as the
// stats job leaves them; one op reads a day by service with p50 and p99:
// at 1-minute steps (the case) and at hours from the hour (the
// UI's day), through the strips and, as the same run's baseline, from
// span_stats' rows alone as before strips; and at 24-minute steps, which
// strips do not serve. It reports the bytes span_stats takes per cell and
// minute and span_strips per service and hour.
func BenchmarkServicesPage(b *testing.B) {
	st, dsn := openStore(b, storage.Config{})
	now := time.Now().UTC().Truncate(time.Minute)
	const services = 50
	testenv.ServicesDay(b, st, dsn, now, services, 10, 2)
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	var rows, bytes int64
	if err := conn.QueryRow(context.Background(), `SELECT count(*), pg_total_relation_size('span_stats') FROM span_stats`).Scan(&rows, &bytes); err != nil {
		b.Fatal(err)
	}
	var strips, stripBytes int64
	if err := conn.QueryRow(context.Background(), `SELECT count(*), pg_total_relation_size('span_strips') FROM span_strips`).Scan(&strips, &stripBytes); err != nil {
		b.Fatal(err)
	}
	// The same reads from span_stats alone, as before strips: the
	// baseline, in the same run.
	rowsOnly, err := storage.Open(context.Background(), storage.Config{URL: dsn}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer rowsOnly.Close()
	rowsOnly.ReadWithoutStrips()
	// Strips read without the cache of decoded strips: every read as the
	// first after a restart, or of strips all rewritten since.
	cold, err := storage.Open(context.Background(), storage.Config{URL: dsn, StatsCacheBytes: -1}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer cold.Close()
	hour := now.Truncate(time.Hour).Add(time.Hour)
	for _, c := range []struct {
		name string
		st   *storage.Store
		q    storage.StatsQuery
	}{
		{"minutes", st, storage.StatsQuery{Start: now.Add(-24 * time.Hour), End: now.Add(time.Minute), Step: time.Minute}},
		{"minutes-cold", cold, storage.StatsQuery{Start: now.Add(-24 * time.Hour), End: now.Add(time.Minute), Step: time.Minute}},
		{"minutes-rows", rowsOnly, storage.StatsQuery{Start: now.Add(-24 * time.Hour), End: now.Add(time.Minute), Step: time.Minute}},
		{"hours", st, storage.StatsQuery{Start: hour.Add(-24 * time.Hour), End: hour, Step: time.Hour}},
		{"hours-cold", cold, storage.StatsQuery{Start: hour.Add(-24 * time.Hour), End: hour, Step: time.Hour}},
		{"hours-rows", rowsOnly, storage.StatsQuery{Start: hour.Add(-24 * time.Hour), End: hour, Step: time.Hour}},
		{"24-minutes-rows", st, storage.StatsQuery{Start: now.Add(-24 * time.Hour), End: now.Add(time.Minute), Step: 24 * time.Minute}},
	} {
		b.Run(c.name, func(b *testing.B) {
			c.q.By, c.q.Quantiles = storage.ByService, []float64{0.5, 0.99}
			var took []time.Duration
			// The cache's first read is a cold one: its figure is the
			// -cold case's; this one's are the reads after it.
			if _, err := c.st.Stats(context.Background(), c.q); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				t0 := time.Now()
				series, err := c.st.Stats(context.Background(), c.q)
				took = append(took, time.Since(t0))
				if err != nil || len(series) != services {
					b.Fatalf("%d series, %v", len(series), err)
				}
			}
			testenv.ReportLatencies(b, took)
			b.ReportMetric(float64(bytes)/float64(rows), "B/cell-minute")
			b.ReportMetric(float64(stripBytes)/float64(strips), "B/strip")
			if n, used := c.st.StripCacheUse(); n > 0 {
				b.ReportMetric(float64(used)/float64(n), "cached-B/strip")
			}
		})
	}
}

// BenchmarkStatsManyOperations is the service metrics' memory with 100,000
// distinct operations (issue 23: "collector memory bounded with 100k
// distinct operations"): writing them (one span each, in 10,000-span
// batches over 5 minutes), folding each minute, and rolling the hour up,
// with the process's peak heap sampled while writing and while folding.
func BenchmarkStatsManyOperations(b *testing.B) {
	const ops, minutes, batchSpans = 100_000, 5, 10_000
	for range b.N {
		st, _ := openStore(b, storage.Config{})
		now := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
		var peak atomic.Uint64
		stop := make(chan struct{})
		done := make(chan struct{})
		runtime.GC()
		go func() {
			defer close(done)
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
		}()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		start := time.Now()
		batch := make([]zipkin.Span, 0, batchSpans)
		id := uint64(1)
		for m := range minutes {
			at := now.Add(time.Duration(m) * time.Minute)
			for o := range ops {
				id++
				batch = append(batch, zipkin.Span{TraceID: zipkin.TraceID{Low: id}, ID: zipkin.SpanID(id), Name: "op-" + strconv.Itoa(o),
					Kind: zipkin.KindServer, Timestamp: at.UnixMicro(), Duration: int64(100 + (id*7919)%300_000),
					LocalEndpoint: &zipkin.Endpoint{ServiceName: "service-" + strconv.Itoa(o%50)}})
				if len(batch) == batchSpans {
					if err := st.WriteSpans(context.Background(), batch); err != nil {
						b.Fatal(err)
					}
					batch = batch[:0]
				}
			}
		}
		wrote := time.Since(start)
		writePeak := peak.Swap(0)
		testenv.FoldStats(b, st, now.Add(time.Hour)) // the minutes
		minutesFolded := time.Since(start) - wrote
		testenv.FoldStats(b, st, now.Add(26*time.Hour)) // the hour
		close(stop)
		<-done
		b.ReportMetric(float64(writePeak-base.HeapInuse)/(1<<20), "write-peak-heap-MiB")
		b.ReportMetric(float64(peak.Load()-base.HeapInuse)/(1<<20), "fold-peak-heap-MiB")
		b.ReportMetric(wrote.Seconds(), "write-s")
		b.ReportMetric(minutesFolded.Seconds(), "fold-minutes-s")
		b.ReportMetric((time.Since(start) - wrote - minutesFolded).Seconds(), "fold-hour-s")
	}
}

// BenchmarkOneOperation30Days is issue 23's long read: one operation's
// rate, errors and p50/p99 over 30 days at hourly steps (the hourly
// roll-ups: 720 rows, each with a sketch of a busy hour), as the service
// page reads it. Target p99 ≤ 100 ms.
func BenchmarkOneOperation30Days(b *testing.B) {
	st, dsn := openStore(b, storage.Config{})
	now := time.Now().UTC().Truncate(time.Hour)
	// One busy hour of the operation (6,000 spans, durations spread over
	// four decades so the sketch has many bins), folded...
	batch := make([]zipkin.Span, 0, 6000)
	for i := range 6000 {
		batch = append(batch, zipkin.Span{TraceID: zipkin.TraceID{Low: uint64(i + 1)}, ID: zipkin.SpanID(i + 1), Name: "get /cart",
			Kind: zipkin.KindServer, Timestamp: now.Add(-30 * time.Minute).Add(time.Duration(i) * 250 * time.Millisecond).UnixMicro(),
			Duration: int64(100 + (i*7919)%1_000_000), LocalEndpoint: &zipkin.Endpoint{ServiceName: "cart"}})
	}
	if err := st.WriteSpans(context.Background(), batch); err != nil {
		b.Fatal(err)
	}
	testenv.FoldStats(b, st, now.Add(26*time.Hour))
	// ...copied to every hour of the 30 days before it.
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), `INSERT INTO span_stats
		SELECT tenant, ts - make_interval(hours => h), res, merged, cell_h, service, service_h, name, kind, remote, calls, errors, dur_sum, sketch,
			slow_trace_high, slow_trace_low, slow_span, slow_us, slow_at, err_trace_high, err_trace_low, err_span, err_us, err_at
		FROM span_stats, generate_series(1, 719) h`); err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(context.Background(), `VACUUM ANALYZE span_stats`); err != nil {
		b.Fatal(err)
	}
	q := storage.StatsQuery{Service: "cart", Name: "get /cart", Start: now.Add(-30 * 24 * time.Hour), End: now.Add(time.Hour),
		Step: time.Hour, Quantiles: []float64{0.5, 0.99}}
	var took []time.Duration
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		series, err := st.Stats(context.Background(), q)
		took = append(took, time.Since(t0))
		if err != nil || len(series) != 1 || len(series[0].Points) != 720 || series[0].Total.Calls != 720*6000 {
			b.Fatalf("%d series, %v", len(series), err)
		}
	}
	testenv.ReportLatencies(b, took)
}

// BenchmarkDensity is what a span costs on disk, all-in (the schema's
// growth: tables, indexes, TOAST) and in segments alone, on three shapes
// of spans: the benchmark generator the shipped dictionary was trained on,
// the stats tests' generator (other services, names, tag sets), and
// OpenTelemetry-demo-like spans (resource attributes, URLs, SQL); each
// written into an empty schema with the shipped dictionary, then, after
// maintenance learned one from them, into another empty schema given that
// dictionary (same shape, other spans: both halves pay for new names and
// index pages alike). The floor is the second half's canonical bytes as
// one `zstd -19 --long` stream.
func BenchmarkDensity(b *testing.B) {
	// ZIPQ_DENSITY_SPANS sets how many spans each half writes: 60,000 by
	// default; the trial is 300k–500k, where the GIN index's
	// entries are shared by more rows.
	n := 60_000
	if v, err := strconv.Atoi(os.Getenv("ZIPQ_DENSITY_SPANS")); err == nil && v > 0 {
		n = v
	}
	// ZIPQ_DENSITY_ARRIVAL=services writes each window of 2,000 spans
	// grouped by local service, as reporters do, one a service, each
	// batching the spans of many traces: a trace then arrives in a
	// segment a service. The default writes the generators' order, a
	// trace's spans together.
	arrive := func(spans []zipkin.Span) []zipkin.Span { return spans }
	if os.Getenv("ZIPQ_DENSITY_ARRIVAL") == "services" {
		arrive = byService
	}
	for _, shape := range densityShapes(b, n) {
		b.Run(shape.name, func(b *testing.B) {
			for range b.N {
				fresh := func() (*storage.Store, *pgx.Conn) {
					st, dsn := openStore(b, storage.Config{Columns: ingest.SpanColumns}) // as zipq writes
					if err := st.Maintain(context.Background(), time.Now()); err != nil {
						b.Fatal(err)
					}
					conn, err := pgx.Connect(context.Background(), dsn)
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { conn.Close(context.Background()) })
					return st, conn
				}
				st, conn := fresh()
				// The schema's bytes by table (partitions summed), after the
				// linker, the compactor and the stats job have done what they
				// do within seconds of a write in a running zipq, and a
				// VACUUM (autovacuum's reuse of what they deleted).
				sizes := func() map[string]int64 {
					ctx := context.Background()
					for {
						n, err := st.Link(ctx, storage.LinkBatch)
						if err != nil {
							b.Fatal(err)
						}
						m, err := st.Compact(ctx, storage.LinkBatch)
						if err != nil {
							b.Fatal(err)
						}
						if n == 0 && m == 0 {
							break
						}
					}
					testenv.FoldStats(b, st, time.Now().Add(2*time.Minute))
					if _, err := conn.Exec(ctx, `VACUUM`); err != nil {
						b.Fatal(err)
					}
					rows, err := conn.Query(ctx, `SELECT coalesce(i.inhparent::regclass::text, c.relname), sum(pg_total_relation_size(c.oid))::bigint
						FROM pg_class c LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
						WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'm') GROUP BY 1`)
					if err != nil {
						b.Fatal(err)
					}
					out := map[string]int64{}
					var name string
					var n int64
					if _, err := pgx.ForEachRow(rows, []any{&name, &n}, func() error { out[name] += n; return nil }); err != nil {
						b.Fatal(err)
					}
					return out
				}
				var split map[string]float64       // of the first half, bytes a span by table
				var unfolded float64               // of the first half, the stats tables' bytes a span before the fold
				var before, after map[string]int64 // the schema before and after the last half was written
				measure := func(spans []zipkin.Span) (all, segs float64) {
					var s0, s1 int64
					if err := conn.QueryRow(context.Background(), `SELECT coalesce(sum(length(data)), 0)::bigint FROM segments`).Scan(&s0); err != nil {
						b.Fatal(err)
					}
					before = sizes()
					for i := 0; i < len(spans); i += 500 {
						if err := st.WriteSpans(context.Background(), spans[i:min(i+500, len(spans))]); err != nil {
							b.Fatal(err)
						}
					}
					// What the service metrics took before the job folded
					// them: the table's size a trial of this many spans
					// sees for a minute or two.
					var pending int64
					if err := conn.QueryRow(context.Background(), `SELECT pg_total_relation_size('span_stats') + coalesce(pg_total_relation_size(to_regclass('span_stats_batches')), 0)`).Scan(&pending); err != nil {
						b.Fatal(err)
					}
					if unfolded == 0 {
						unfolded = float64(pending) / float64(len(spans))
					}
					after = sizes()
					if err := conn.QueryRow(context.Background(), `SELECT coalesce(sum(length(data)), 0)::bigint FROM segments`).Scan(&s1); err != nil {
						b.Fatal(err)
					}
					var total int64
					grown := map[string]float64{}
					for t, n := range after {
						total += n - before[t]
						grown[t] = float64(n-before[t]) / float64(len(spans))
					}
					if split == nil {
						split = grown
					}
					return float64(total) / float64(len(spans)), float64(s1-s0) / float64(len(spans))
				}
				first := arrive(shape.gen(1))
				allShipped, segShipped := measure(first)
				if err := st.Maintain(context.Background(), time.Now()); err != nil {
					b.Fatal(err)
				}
				// No dictionary is learned when none beat the shipped one on
				// held-out segments (dicts.go): the second half then keeps
				// the shipped one, as zipq would.
				var learned []byte
				err := conn.QueryRow(context.Background(), `SELECT dict FROM zstd_dicts`).Scan(&learned)
				if err != nil && !errors.Is(err, pgx.ErrNoRows) {
					b.Fatal(err)
				}
				st, conn = fresh()
				if learned == nil {
					b.Log("no dictionary learned: the shipped one stays")
				} else if _, err := conn.Exec(context.Background(), `INSERT INTO zstd_dicts VALUES (2, 0, $1, now() - interval '1 hour', 0, 0, 0, 0)`, learned); err != nil {
					b.Fatal(err)
				}
				if err := st.LoadDicts(context.Background()); err != nil {
					b.Fatal(err)
				}
				second := arrive(shape.gen(2))
				allLearned, segLearned := measure(second)
				// The second half once its day has closed and been packed
				// (every day up to today's, as if two days had passed).
				for {
					res, err := st.Pack(context.Background(), time.Now().Add(72*time.Hour))
					if err != nil {
						b.Fatal(err)
					}
					if res.Day.IsZero() {
						break
					}
				}
				var packedTotal int64
				packed := sizes()
				relationSplit(b, conn, shape.name, len(second)) // after sizes' VACUUM, as the totals
				for t, n := range packed {
					packedTotal += n - before[t]
				}
				per := func(t string) float64 { return float64(packed[t]-before[t]) / float64(len(second)) }
				b.ReportMetric(float64(packedTotal)/float64(len(second)), "B/span-packed")
				b.ReportMetric(float64(after["segments"]-before["segments"])/float64(len(second)), "segments-B/span-learned")
				b.ReportMetric(per("segments"), "segments-B/span-packed")
				b.ReportMetric(per("segment_blocks"), "blocks-B/span-packed")
				b.ReportMetric(float64(after["span_columns"]-before["span_columns"])/float64(len(second)), "columns-B/span-learned")
				b.ReportMetric(per("span_columns"), "columns-B/span-packed")
				b.ReportMetric(per("span_index"), "span_index-B/span-packed")
				b.ReportMetric(per("trace_links"), "trace_links-B/span-packed")
				var payload int64
				if err := conn.QueryRow(context.Background(), `SELECT coalesce(sum(length(data)), 0)::bigint FROM segment_blocks`).Scan(&payload); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(payload)/float64(len(second)), "blocks-payload-B/span")
				b.ReportMetric(allShipped, "B/span-shipped")
				b.ReportMetric(allLearned, "B/span-learned")
				b.ReportMetric(segShipped, "seg-B/span-shipped")
				b.ReportMetric(segLearned, "seg-B/span-learned")
				if f := zstdFloor(b, second); f > 0 {
					b.ReportMetric(f, "floor-B/span")
				}
				b.ReportMetric(unfolded, "unfolded-stats-B/span")
				for _, t := range []string{"segments", "span_index", "span_stats", "span_stats_batches", "span_strips", "trace_links"} {
					b.ReportMetric(split[t], t+"-B/span")
				}
			}
		})
	}
}

// relationSplit prints each of the schema's tables and indexes over 64 KB
// (TOAST apart) in bytes a span, to stderr: b.Log keeps ten lines, and
// docs/BENCHMARKS.md's splits are these lines.
func relationSplit(b *testing.B, conn *pgx.Conn, shape string, spans int) {
	rows, err := conn.Query(context.Background(), `SELECT c.relname, c.relkind::text, pg_relation_size(c.oid),
			coalesce((SELECT pg_relation_size(t.oid) FROM pg_class t WHERE t.oid = c.reltoastrelid), 0)
		FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'i')
			AND pg_relation_size(c.oid) > 65536 ORDER BY 3 DESC`)
	if err != nil {
		b.Fatal(err)
	}
	var name, kind string
	var size, toast int64
	if _, err := pgx.ForEachRow(rows, []any{&name, &kind, &size, &toast}, func() error {
		fmt.Fprintf(os.Stderr, "density %s packed: %-48s %s %8.2f B/span, TOAST %8.2f\n", shape, name, kind,
			float64(size)/float64(spans), float64(toast)/float64(spans))
		return nil
	}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSegmentLayouts compares, on the shapes of BenchmarkDensity,
// the segments' payload as zipq stores it (a zstd frame per trace) with
// frames of many traces (issue 25's cross-trace blocks), before building
// the latter: bytes a span of each layout, the floor (one zstd -19 --long
// stream of everything), and the time to decode one block of k traces —
// the price a trace-by-ID read would pay. The dictionary is learned from
// other spans of the same shape (seed 1), as maintenance learns it.
func BenchmarkSegmentLayouts(b *testing.B) {
	ks := []int{16, 64, 256}
	for _, shape := range densityShapes(b, 60_000) {
		b.Run(shape.name, func(b *testing.B) {
			for range b.N {
				train, spans := shape.gen(1), shape.gen(2)
				sizes, decode, err := storage.LayoutSizes(train, spans, ks)
				if err != nil {
					b.Fatal(err)
				}
				for layout, size := range sizes {
					b.ReportMetric(float64(size)/float64(len(spans)), layout+"-B/span")
				}
				for _, k := range ks {
					b.ReportMetric(float64(decode[k].Microseconds()), "decode-"+strconv.Itoa(k)+"-µs")
				}
				if f := zstdFloor(b, spans); f > 0 {
					b.ReportMetric(f, "floor-B/span")
				}
			}
		})
	}
}

// densityShapes are the spans the density benchmarks measure, about n of
// each shape a seed: zipq's bench generator (what the shipped dictionary
// was trained on; 8 spans a trace), the stats tests' generator (4
// services, 1–6 spans a trace), OpenTelemetry-demo-like spans (13
// resource and span attributes, URLs, SQL; 3–12 spans a trace) and
// zipkin-go's HTTP middleware's (zipkinGoSpans; 15 spans a trace).
func densityShapes(b *testing.B, n int) []struct {
	name string
	gen  func(seed uint64) []zipkin.Span
} {
	return []struct {
		name string
		gen  func(seed uint64) []zipkin.Span
	}{
		{"bench-generator", func(seed uint64) []zipkin.Span { return benchSpans(n, seed) }},
		{"stats-generator", func(seed uint64) []zipkin.Span {
			return statSpans(rand.New(rand.NewPCG(seed, 1)), n/3, time.Now()) // 3.5 spans a trace
		}},
		{"otel-demo-like", func(seed uint64) []zipkin.Span { return otelLikeSpans(rand.New(rand.NewPCG(seed, 2)), n/8, time.Now()) }},
		{"zipkin-go-http", func(seed uint64) []zipkin.Span { return zipkinGoSpans(b, rand.New(rand.NewPCG(seed, 3)), n) }},
	}
}

// byService reorders each window of 2,000 spans by local service.
func byService(spans []zipkin.Span) []zipkin.Span {
	out := slices.Clone(spans)
	for i := 0; i < len(out); i += 2000 {
		slices.SortStableFunc(out[i:min(i+2000, len(out))], func(a, b zipkin.Span) int {
			return strings.Compare(a.LocalServiceName(), b.LocalServiceName())
		})
	}
	return out
}

// zstdFloor is spans' canonical bytes as one `zstd -19 --long` stream,
// per span; 0 when the zstd command is missing.
func zstdFloor(b *testing.B, spans []zipkin.Span) float64 {
	path, err := exec.LookPath("zstd")
	if err != nil {
		return 0
	}
	var raw, one []byte
	for i := range spans {
		if one, err = spans[i].MarshalCanonical(one); err != nil {
			b.Fatal(err)
		}
		raw = append(raw, one...)
	}
	cmd := exec.Command(path, "-19", "--long=27", "-c", "-q")
	cmd.Stdin = bytes.NewReader(raw)
	out, err := cmd.Output()
	if err != nil {
		b.Fatal(err)
	}
	return float64(len(out)) / float64(len(spans))
}

// BenchmarkThin is keep by value on a filled day: two shapes of spans the
// policy was not written for (OpenTelemetry-demo-like, and the stats
// tests' generator with its errors and slow tail), written into a day
// three days old and thinned by "errors,slow=p99,rare=100,sample=10%".
// It reports the day's bytes a span (segments and span_index partitions)
// before and after, after counting the thinned IDs kept to answer for
// them, the share of traces kept, and the spans judged a second.
func BenchmarkThin(b *testing.B) {
	shapes := []struct {
		name string
		gen  func(r *rand.Rand, at time.Time) []zipkin.Span
	}{
		{"otel-demo-like", func(r *rand.Rand, at time.Time) []zipkin.Span { return otelLikeSpans(r, 8_000, at) }},
		{"stats-generator", func(r *rand.Rand, at time.Time) []zipkin.Span { return statSpans(r, 20_000, at) }},
	}
	for _, shape := range shapes {
		b.Run(shape.name, func(b *testing.B) {
			for range b.N {
				st, dsn := openStore(b, storage.Config{Keep: "errors,slow=p99,rare=100,sample=10%"})
				ctx := context.Background()
				d := time.Now().UTC().Add(-3 * 24 * time.Hour).Truncate(24 * time.Hour)
				if err := st.Maintain(ctx, d); err != nil {
					b.Fatal(err)
				}
				spans := shape.gen(rand.New(rand.NewPCG(3, 4)), d.Add(12*time.Hour))
				for i := 0; i < len(spans); i += 500 {
					if err := st.WriteSpans(ctx, spans[i:min(i+500, len(spans))]); err != nil {
						b.Fatal(err)
					}
				}
				for n := 1; n > 0; {
					var err error
					if n, err = st.Link(ctx, storage.LinkBatch); err != nil {
						b.Fatal(err)
					}
				}
				conn, err := pgx.Connect(ctx, dsn)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := conn.Exec(ctx, `VACUUM`); err != nil {
					b.Fatal(err)
				}
				var res storage.ThinResult
				var took time.Duration
				for range 3 { // the empty day before d, then d
					t0 := time.Now()
					if res, err = st.Thin(ctx, d.Add(48*time.Hour+time.Minute)); err != nil {
						b.Fatal(err)
					}
					took = time.Since(t0)
					if res.Day.Equal(d) {
						break
					}
				}
				var ids int64
				if err := conn.QueryRow(ctx, `SELECT pg_total_relation_size('thinned_traces')`).Scan(&ids); err != nil {
					b.Fatal(err)
				}
				conn.Close(ctx)
				var kept, all int64
				for _, c := range res.Counts {
					all += c.Traces
					if c.Reason != "thinned" {
						kept += c.Traces
					}
				}
				n := float64(len(spans))
				b.ReportMetric(float64(res.BytesBefore)/n, "before-B/span")
				b.ReportMetric(float64(res.BytesAfter+ids)/n, "after-B/span")
				b.ReportMetric(float64(ids)/float64(all-kept), "id-B/thinned-trace")
				b.ReportMetric(100*float64(kept)/float64(all), "kept-%")
				b.ReportMetric(n/took.Seconds(), "spans-judged/s")
			}
		})
	}
}

// BenchmarkPack measures a closed day's packing on OTel-like spans (8,000
// traces, about 60,000 spans, dated three days ago): the spans packed a
// second, the day's bytes before and after (its segments partition, then
// with its blocks partition), and trace by ID and search on the day before
// and after in the same run — p50 and p99 of 500 reads of random IDs and
// of 60 searches, one at a time; after packing, once as it ends and once
// after a VACUUM ANALYZE, as the day had before. ZIPQ_PACK_SPANS=10000000
// writes that many spans instead, spread over the day in bursts like the
// default's (the searches' two-hour window then holds a twelfth of them).
func BenchmarkPack(b *testing.B) {
	traces := 8_000
	if v, err := strconv.Atoi(os.Getenv("ZIPQ_PACK_SPANS")); err == nil && v > 0 {
		traces = max(v/15*2, 1) // 7.5 spans a trace
	}
	for range b.N {
		st, dsn := openStore(b, storage.Config{})
		ctx := context.Background()
		d := time.Now().UTC().Add(-3 * 24 * time.Hour).Truncate(24 * time.Hour)
		if err := st.Maintain(ctx, d); err != nil {
			b.Fatal(err)
		}
		// Written 8,000 traces at a time, each burst ending at its own
		// time of the day (the default's one at noon), and forgotten but
		// for samples: 10M spans do not fit in memory as zipkin.Spans.
		// spans samples the spans (all of them by default, 20,000 of
		// more); window, those of them the searches' window holds.
		gen := rand.New(rand.NewPCG(5, 6))
		bursts := (traces + 7_999) / 8_000
		keep := 1.0
		if bursts > 1 {
			keep = min(1, 20_000/(7.5*float64(traces)))
		}
		var spans, window []zipkin.Span
		written := 0
		for k := range bursts {
			at := d.Add(12 * time.Hour)
			if bursts > 1 {
				at = d.Add(10*time.Minute + time.Duration(k)*(24*time.Hour-11*time.Minute)/time.Duration(bursts))
			}
			burst := otelLikeSpans(gen, min(8_000, traces-k*8_000), at)
			for i := 0; i < len(burst); i += 500 {
				if err := st.WriteSpans(ctx, burst[i:min(i+500, len(burst))]); err != nil {
					b.Fatal(err)
				}
			}
			written += len(burst)
			for _, sp := range burst {
				if keep == 1 || gen.Float64() < keep {
					spans = append(spans, sp)
					if t := sp.StartTime(); t > d.Add(11*time.Hour).UnixMicro() && t <= d.Add(13*time.Hour).UnixMicro() {
						window = append(window, sp)
					}
				}
			}
		}
		if len(window) == 0 {
			b.Fatalf("none of the %d spans sampled is in the searches' window", len(spans))
		}
		execSQL(b, dsn, `VACUUM ANALYZE`)
		r := rand.New(rand.NewPCG(7, 8))
		reads := func() (p50, p99 time.Duration) {
			took := make([]time.Duration, 500)
			for i := range took {
				id := spans[r.IntN(len(spans))].TraceID
				t0 := time.Now()
				got, err := st.Traces(ctx, []zipkin.TraceID{id}, true)
				took[i] = time.Since(t0)
				if err != nil || len(got) != 1 {
					b.Fatalf("trace %v: %d traces, %v", id, len(got), err)
				}
			}
			slices.Sort(took)
			return took[len(took)/2], took[len(took)*99/100]
		}
		// Searches over the day, as a user's: a service's latest traces
		// (many candidates, newest first), a tag value of one trace (the
		// GIN index), a service's slowest (durations prune rows).
		searches := func() (p50, p99 time.Duration) {
			var took []time.Duration
			for i := range 60 {
				q := zipkin.QueryRequest{EndTs: d.Add(13 * time.Hour), Lookback: 2 * time.Hour, Limit: 20}
				switch sp := window[r.IntN(len(window))]; i % 3 {
				case 0:
					q.ServiceName = sp.LocalEndpoint.ServiceName
				case 1:
					q.AnnotationQuery = []string{"app.product.id=" + sp.Tags["app.product.id"]}
				case 2:
					q.ServiceName, q.MinDuration = sp.LocalEndpoint.ServiceName, 89_000
				}
				t0 := time.Now()
				got, err := st.FindTraces(ctx, q, true)
				took = append(took, time.Since(t0))
				if err != nil || len(got) == 0 {
					b.Fatalf("search %+v: %d traces, %v", q, len(got), err)
				}
			}
			slices.Sort(took)
			return took[len(took)/2], took[len(took)*99/100]
		}
		p50, p99 := reads()
		s50, s99 := searches()
		var res storage.PackResult
		var took time.Duration
		for range 3 { // the empty day before d, then d
			t0 := time.Now()
			var err error
			if res, err = st.Pack(ctx, d.Add(48*time.Hour)); err != nil {
				b.Fatal(err)
			}
			took = time.Since(t0)
			if res.Day.Equal(d) {
				break
			}
		}
		if !res.Day.Equal(d) {
			b.Fatalf("day %v not packed", d)
		}
		p50p, p99p := reads()
		s50p, s99p := searches()
		// And again after the VACUUM ANALYZE the unpacked day had before
		// its reads: just after packing, autovacuum and the checkpointer
		// work through the day's rewrite beside the reads.
		execSQL(b, dsn, `VACUUM ANALYZE`)
		p50v, p99v := reads()
		s50v, s99v := searches()
		b.ReportMetric(float64(s50.Microseconds())/1000, "search-p50-ms")
		b.ReportMetric(float64(s99.Microseconds())/1000, "search-p99-ms")
		b.ReportMetric(float64(s50p.Microseconds())/1000, "packed-search-p50-ms")
		b.ReportMetric(float64(s99p.Microseconds())/1000, "packed-search-p99-ms")
		n := float64(written)
		b.ReportMetric(float64(res.BytesBefore)/n, "before-B/span")
		b.ReportMetric(float64(res.BytesAfter)/n, "after-B/span")
		b.ReportMetric(n/took.Seconds(), "spans-packed/s")
		b.ReportMetric(float64(p50.Microseconds())/1000, "trace-p50-ms")
		b.ReportMetric(float64(p99.Microseconds())/1000, "trace-p99-ms")
		b.ReportMetric(float64(p50p.Microseconds())/1000, "packed-trace-p50-ms")
		b.ReportMetric(float64(p99p.Microseconds())/1000, "packed-trace-p99-ms")
		b.ReportMetric(float64(p50v.Microseconds())/1000, "vacuumed-trace-p50-ms")
		b.ReportMetric(float64(p99v.Microseconds())/1000, "vacuumed-trace-p99-ms")
		b.ReportMetric(float64(s50v.Microseconds())/1000, "vacuumed-search-p50-ms")
		b.ReportMetric(float64(s99v.Microseconds())/1000, "vacuumed-search-p99-ms")
	}
}

// BenchmarkTenantBudget measures what a tenant's byte budget costs when
// it bites: a day three days old holds the stats generator's spans of two
// tenants (the default one and team-a, as many each), and a maintenance
// round with team-a's budget at one byte deletes team-a's rows of the day
// and rewrites the day's partitions with the default tenant's alone. The
// baseline is the same round without a budget, in the same run, on the
// same data; the day's partitions are measured before and after, and the
// bytes team-a was estimated to take against those its deletion freed.
func BenchmarkTenantBudget(b *testing.B) {
	for range b.N {
		st, dsn := openStore(b, storage.Config{})
		ctx := context.Background()
		now := time.Now().UTC()
		d := now.Add(-3 * 24 * time.Hour).Truncate(24 * time.Hour)
		if err := st.Maintain(ctx, d); err != nil {
			b.Fatal(err)
		}
		r := rand.New(rand.NewPCG(11, 12))
		var n int
		for _, who := range []string{"single-tenant", "team-a"} {
			spans := statSpans(r, 20_000, d.Add(12*time.Hour))
			n += len(spans)
			c := tenant.With(ctx, who)
			for i := 0; i < len(spans); i += 500 {
				if err := st.WriteSpans(c, spans[i:min(i+500, len(spans))]); err != nil {
					b.Fatal(err)
				}
			}
		}
		testenv.FoldStats(b, st, now.Add(2*time.Minute))
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `VACUUM ANALYZE`); err != nil {
			b.Fatal(err)
		}
		day := func() int64 {
			var bytes int64
			part := d.Format("20060102")
			if err := conn.QueryRow(ctx, `SELECT pg_total_relation_size($1::regclass) + pg_total_relation_size($2::regclass)`,
				"segments_p"+part, "span_index_p"+part).Scan(&bytes); err != nil {
				b.Fatal(err)
			}
			return bytes
		}
		round := func(budget int64) time.Duration {
			s, err := storage.Open(ctx, storage.Config{URL: dsn}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if budget > 0 {
				if err := s.SetTenantBudgets(map[string]int64{"team-a": budget}); err != nil {
					b.Fatal(err)
				}
			}
			t0 := time.Now()
			if err := s.Maintain(ctx, now); err != nil {
				b.Fatal(err)
			}
			return time.Since(t0)
		}
		base := round(0)
		before := day()
		u, err := st.Usage(ctx)
		if err != nil || len(u.Tenants) != 2 {
			b.Fatalf("usage %+v %v", u, err)
		}
		took := round(1)
		after := day()
		conn.Close(ctx)
		b.ReportMetric(float64(n), "spans")
		b.ReportMetric(base.Seconds()*1000, "round-ms")
		b.ReportMetric(took.Seconds()*1000, "budget-round-ms")
		b.ReportMetric(float64(before)/float64(n), "day-before-B/span")
		b.ReportMetric(float64(after)/float64(n), "day-after-B/span")
		b.ReportMetric(float64(n/2)/(took-base).Seconds(), "spans-kept-rewritten/s")
		// How close the estimate of team-a's share was to what deleting it
		// freed (1: exact; the freed bytes include the rewrite's own
		// compaction of the kept rows).
		b.ReportMetric(float64(u.Tenants[1].Bytes)/float64(before-after), "estimate/freed")
	}
}

// BenchmarkValueKeys measures span_index with whole-term keys for tag
// values (as before migration 00015) beside folded ones (termKey), in the
// same run: 450k OpenTelemetry-demo-like spans (a new URL, SQL statement,
// product ID and pod name on every span) written in 500-span batches into
// an empty schema each, then the GIN index's and the table's bytes a span,
// the write time, and searches over the last hour at 1 in flight (limit
// 20): a value that occurs once (url.full), a short unique value
// (app.product.id), a common one (rpc.method), and a service with a
// common value. Both sets are searched by today's code, which asks for
// either key of a term.
func BenchmarkValueKeys(b *testing.B) {
	const traces = 60_000 // 7.5 spans a trace
	spans := otelLikeSpans(rand.New(rand.NewPCG(7, 8)), traces, time.Now())
	picks := rand.New(rand.NewPCG(9, 10))
	for _, fold := range []bool{false, true} {
		b.Run(map[bool]string{false: "whole-term", true: "folded"}[fold], func(b *testing.B) {
			defer storage.FoldValues(fold)()
			for range b.N {
				st, dsn := openStore(b, storage.Config{})
				ctx := context.Background()
				if err := st.Maintain(ctx, time.Now()); err != nil {
					b.Fatal(err)
				}
				// A parent benchmark's own metrics are not printed: the
				// write reports in a sub-benchmark of its own.
				b.Run("write", func(b *testing.B) {
					t0 := time.Now()
					for i := 0; i < len(spans); i += 500 {
						if err := st.WriteSpans(ctx, spans[i:min(i+500, len(spans))]); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(time.Since(t0).Seconds(), "write-s")
					conn, err := pgx.Connect(ctx, dsn)
					if err != nil {
						b.Fatal(err)
					}
					defer conn.Close(ctx)
					if _, err := conn.Exec(ctx, `VACUUM ANALYZE`); err != nil {
						b.Fatal(err)
					}
					var gin, heap int64
					if err := conn.QueryRow(ctx, `SELECT
						coalesce(sum(pg_relation_size(c.oid)) FILTER (WHERE c.relkind = 'i'), 0)::bigint,
						coalesce(sum(pg_relation_size(c.oid)) FILTER (WHERE c.relkind = 'r'), 0)::bigint
						FROM pg_class c LEFT JOIN pg_index x ON x.indexrelid = c.oid
						JOIN pg_inherits i ON i.inhrelid = coalesce(x.indrelid, c.oid)
						WHERE i.inhparent = 'span_index'::regclass AND (c.relkind = 'r' OR c.relname LIKE '%keys_idx')`).Scan(&gin, &heap); err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(gin)/float64(len(spans)), "gin-B/span")
					b.ReportMetric(float64(heap)/float64(len(spans)), "rows-B/span")
				})
				search := func(name string, q func() zipkin.QueryRequest) {
					b.Run(name, func(b *testing.B) {
						var took []time.Duration
						for range 200 {
							r := q()
							r.EndTs, r.Lookback, r.Limit = time.Now(), time.Hour, 20
							t := time.Now()
							found, err := st.FindTraces(ctx, r, true)
							if err != nil {
								b.Fatal(err)
							}
							took = append(took, time.Since(t))
							if len(found) == 0 {
								b.Fatalf("%+v found nothing", r)
							}
						}
						testenv.ReportLatencies(b, took)
					})
				}
				tag := func(k string) func() zipkin.QueryRequest {
					return func() zipkin.QueryRequest {
						sp := spans[picks.IntN(len(spans))]
						return zipkin.QueryRequest{AnnotationQuery: []string{k + "=" + sp.Tags[k]}}
					}
				}
				search("unique-url", tag("url.full"))
				search("unique-product", tag("app.product.id"))
				search("common-value", tag("rpc.method"))
				search("service-and-common-value", func() zipkin.QueryRequest {
					return zipkin.QueryRequest{ServiceName: "currencyservice", AnnotationQuery: []string{"rpc.grpc.status_code=0"}}
				})
			}
		})
	}
}
