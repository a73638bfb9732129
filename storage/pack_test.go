package storage_test

import (
	"cmp"
	"context"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zipq/zipq/ingest"
	"github.com/zipq/zipq/internal/tenant"
	"github.com/zipq/zipq/storage"
	"github.com/zipq/zipq/traceql"
	"github.com/zipq/zipq/zipkin"
)

// TestPackDay fills closed days for two tenants — traces split over two
// batches, a trace written twice, two traces sharing their lower 64 bits,
// one too large to pack — packs them, and checks that every read answers
// as before (each trace by ID, search, the count of distinct spans), the
// day's partitions take fewer bytes, only the large trace kept its own
// payload, a late span on a packed trace is read and compacted with it,
// and keep by value can still thin a packed day. It runs on the layout
// packing writes and on the one days packed before migration 21 keep (a
// member row a trace, referring into its block).
func TestPackDay(t *testing.T) {
	t.Parallel()
	bothLayouts(t, testPackDay)
}

// bothLayouts runs test on the layout packing writes (blocks with
// directories) and, with memberRows, on the one days packed before
// migration 21 keep (PackAsBeforeDirectories).
func bothLayouts(t *testing.T, test func(t *testing.T, memberRows bool)) {
	for _, memberRows := range []bool{false, true} {
		name := map[bool]string{false: "directories", true: "member rows"}[memberRows]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, memberRows)
		})
	}
}

func testPackDay(t *testing.T, memberRows bool) {
	st, dsn := openStore(t, storage.Config{Columns: ingest.SpanColumns})
	now, d := closedDay(t, st)
	r := rand.New(rand.NewPCG(19, 2))
	byTenant := map[string][][]zipkin.Span{tenant.Default: thinTraces(r, 1200, d), "acme": thinTraces(r, 300, d)}
	def := byTenant[tenant.Default]
	twin := slices.Clone(def[1]) // the lower 64 bits of def[0]'s ID, another upper half
	for i := range twin {
		twin[i].TraceID = zipkin.TraceID{High: def[0][0].TraceID.High + 1, Low: def[0][0].TraceID.Low}
	}
	def = append(def, twin)
	// A busy hour's worth in five minutes: a trace a second, what packing
	// gathers into group rows (indexgroup.go) and the searches below then
	// find through them.
	def = append(def, burst(r, 300, d.Add(2*time.Hour))...)
	big := make([]zipkin.Span, 10_001)
	for i := range big {
		big[i] = zipkin.Span{TraceID: zipkin.TraceID{Low: 77}, ID: zipkin.SpanID(i + 1), Name: "bulk", Timestamp: d.Add(time.Hour + time.Duration(i)*time.Millisecond).UnixMicro(),
			Duration: 5, LocalEndpoint: &zipkin.Endpoint{ServiceName: "loader"}}
	}
	def = append(def, big)
	byTenant[tenant.Default] = def
	for name, traces := range byTenant {
		c := tenant.With(ctx(t), name)
		writeSplit(t, st, c, traces, 5, traces[3]) // traces[3] twice
	}
	day := "segments_p" + d.Format("20060102")
	if n := count(t, dsn, `SELECT count(*) FROM `+day+` WHERE get_byte(data, 0) = 0`); n != 0 {
		t.Fatalf("%d rows packed before packing", n)
	}

	// reads is what each read answers: every trace by ID, search and the
	// count of distinct spans.
	type answer struct {
		traces   map[string][][]zipkin.Span
		found    map[string][]zipkin.TraceID
		scanned  map[string][]zipkin.TraceID // a TraceQL scan's, through the columns until packed
		distinct int
	}
	scan, err := traceql.Compile(`{ duration > 40ms && name =~ "get.*" }`)
	if err != nil {
		t.Fatal(err)
	}
	reads := func(st *storage.Store) answer {
		t.Helper()
		a := answer{traces: map[string][][]zipkin.Span{}, found: map[string][]zipkin.TraceID{}, scanned: map[string][]zipkin.TraceID{}}
		for name, traces := range byTenant {
			c := tenant.With(ctx(t), name)
			for _, tr := range traces {
				spans, err := oneTrace(st, c, tr[0].TraceID, true)
				if err != nil {
					t.Fatal(err)
				}
				a.traces[name] = append(a.traces[name], spans)
			}
			// Searches a trace's merged index rows (packing merges a
			// trace's rows of a minute) must answer as its parts did.
			for qi, q := range []zipkin.QueryRequest{{ServiceName: "frontend"}, {ServiceName: "cart", SpanName: "charge", MinDuration: 700_000},
				{AnnotationQuery: []string{"error=boom"}}, {ServiceName: "shipping", MaxDuration: 100}} {
				q.EndTs, q.Lookback, q.Limit = d.Add(48*time.Hour), 48*time.Hour, 100_000
				found, err := st.FindTraces(c, q, true)
				if err != nil {
					t.Fatal(err)
				}
				k := name + "/" + strconv.Itoa(qi)
				for _, tr := range found {
					a.found[k] = append(a.found[k], tr[0].TraceID)
				}
				slices.SortFunc(a.found[k], func(x, y zipkin.TraceID) int { return cmp.Or(cmp.Compare(x.High, y.High), cmp.Compare(x.Low, y.Low)) })
			}
			// A search for its newest few stops early (the walk reads
			// candidates newest first, group rows' traces by their own
			// latest start) and answers the first few of the whole
			// answer: in the burst, where group rows hold traces that
			// overlap in time.
			// The whole answer is the oracle's: the traces with a
			// matching span in the window, by their newest such span.
			for _, q := range []zipkin.QueryRequest{{}, {ServiceName: "frontend"}, {ServiceName: "cart", SpanName: "charge"}} {
				q.EndTs, q.Lookback = d.Add(2*time.Hour+3*time.Minute+30*time.Second), 10*time.Minute
				from, to := q.EndTs.Add(-q.Lookback).UnixMicro(), q.EndTs.UnixMicro()
				newest := map[zipkin.TraceID]int64{}
				for _, tr := range traces {
					for _, sp := range tr {
						if at := sp.StartTime(); at >= from && at <= to && at > newest[sp.TraceID] &&
							(q.ServiceName == "" || sp.LocalServiceName() == q.ServiceName) && (q.SpanName == "" || sp.Name == q.SpanName) {
							newest[sp.TraceID] = at
						}
					}
				}
				oracle := slices.Collect(maps.Keys(newest))
				slices.SortFunc(oracle, func(x, y zipkin.TraceID) int { return cmp.Compare(newest[y], newest[x]) })
				var all []zipkin.TraceID
				for _, limit := range []int{100_000, 1, 4, 15} {
					q.Limit = limit
					found, err := st.FindTraces(c, q, true)
					if err != nil {
						t.Fatal(err)
					}
					var got []zipkin.TraceID
					for _, tr := range found {
						got = append(got, tr[0].TraceID)
					}
					if all == nil {
						if all = got; !slices.Equal(all, oracle) {
							t.Fatalf("%s: %+v finds %d traces %v, %d have a matching span in the window %v", name, q, len(all), all, len(oracle), oracle)
						}
						if name == tenant.Default && len(all) < 30 {
							t.Fatalf("%+v: %d traces in the burst: the early stop is not tested", q, len(all))
						}
					} else if want := all[:min(limit, len(all))]; !slices.Equal(got, want) {
						t.Fatalf("%s: %+v finds %v, the first %d of all it finds are %v", name, q, got, limit, want)
					}
				}
			}
			found, err := st.FindTracesFiltered(c, zipkin.QueryRequest{EndTs: d.Add(24 * time.Hour), Lookback: 24 * time.Hour, Limit: 100_000}, true, scan.Prefilter(),
				func(spans []zipkin.Span, from, to int64) (int64, bool) {
					m, err := ingest.TraceQLTrace(zipkin.MergeParts(spans))
					return 1, err == nil && len(scan.Run(m)) > 0
				})
			if err != nil {
				t.Fatal(err)
			}
			for _, tr := range found {
				a.scanned[name] = append(a.scanned[name], tr[0].TraceID)
			}
			slices.SortFunc(a.scanned[name], func(x, y zipkin.TraceID) int { return cmp.Or(cmp.Compare(x.High, y.High), cmp.Compare(x.Low, y.Low)) })
		}
		_, distinct, err := st.CountSpans(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		a.distinct = distinct
		return a
	}
	before := reads(st)
	columns := "span_columns_p" + d.Format("20060102")
	if n := count(t, dsn, `SELECT count(*) FROM `+columns); n == 0 || len(before.scanned[tenant.Default]) == 0 {
		t.Fatalf("%d span column blocks, %d traces scanned before packing: the scan is not tested", n, len(before.scanned[tenant.Default]))
	}
	for name, traces := range byTenant {
		for i, tr := range traces {
			if got := before.traces[name][i]; len(got) != len(tr) {
				t.Fatalf("%s: trace %v reads %d spans before packing, %d written", name, tr[0].TraceID, len(got), len(tr))
			}
		}
	}
	// A trace's index rows of one minute (not crossing it), stored apart.
	split := `SELECT count(*) FROM (SELECT 1 FROM span_index_p` + d.Format("20060102") + `
		WHERE date_trunc('minute', ts_max AT TIME ZONE 'UTC') = date_trunc('minute', ts AT TIME ZONE 'UTC')
		GROUP BY tenant, trace_id_low, trace_id_high, date_trunc('minute', ts AT TIME ZONE 'UTC') HAVING count(*) > 1) x`
	if n := count(t, dsn, split); n < 50 {
		t.Fatalf("%d traces with index rows to merge: the merge is not tested", n)
	}
	bytesBefore := count(t, dsn, `SELECT pg_total_relation_size($1::regclass)::int`, day)
	payloadBefore := count(t, dsn, `SELECT sum(length(data))::int FROM `+day+` WHERE trace_id_low <> 77`)

	// Every closed day is packed (PackAfter past its end), oldest first,
	// once; today is not.
	var want []time.Time
	for p := d.Add(-24 * time.Hour); !p.Add(26 * time.Hour).After(now); p = p.Add(24 * time.Hour) {
		want = append(want, p)
	}
	var packed storage.PackResult
	var days []time.Time
	for _, res := range packAll(t, st, now) {
		days = append(days, res.Day)
		if res.Day.Equal(d) {
			packed = res
		}
	}
	if !slices.EqualFunc(days, want, time.Time.Equal) {
		t.Fatalf("packed %v, want %v", days, want)
	}
	// The default tenant's 1,500 traces and the twin (the large one stays
	// as it is), acme's 300; blocks of a tenant each, of about 24 KB but
	// each tenant's last and the day's first (built on a guessed ratio:
	// these small random spans compress to about twice what it guesses).
	if packed.Traces != 1801 || packed.Blocks < 2 || packed.Blocks > 1801/16 {
		t.Fatalf("day packed: %+v, want 1,801 traces in a few blocks", packed)
	}
	if n := count(t, dsn, `SELECT count(*) FROM segment_blocks WHERE ts = $1 AND (length(data) < 12 * 1024 OR length(data) > 36 * 1024)`, d); n > 3 {
		t.Fatalf("%d blocks of the day far from 24 KB besides the first and each tenant's last", n)
	}
	// The payload compresses across traces; the partitions' bytes are
	// those of the day (a few thousand small spans here: the fixed pages
	// of a new partition weigh; BenchmarkDensity measures real sizes).
	blocks := "segment_blocks_p" + d.Format("20060102")
	payloadAfter := count(t, dsn, `SELECT sum(length(data))::int FROM `+blocks)
	segBytes, blockBytes := count(t, dsn, `SELECT pg_total_relation_size($1::regclass)::int`, day), count(t, dsn, `SELECT pg_total_relation_size($1::regclass)::int`, blocks)
	if payloadAfter >= payloadBefore*9/10 || packed.BytesBefore != int64(bytesBefore) || packed.BytesAfter != int64(segBytes+blockBytes) {
		t.Fatalf("payload %d → %d bytes; the day's %d (measured %d) → %d (measured %d + %d)", payloadBefore, payloadAfter,
			packed.BytesBefore, bytesBefore, packed.BytesAfter, segBytes, blockBytes)
	}
	t.Logf("day packed: %d traces in %d blocks, payload %d → %d bytes, partitions %d → %d", packed.Traces, packed.Blocks, payloadBefore, payloadAfter, packed.BytesBefore, packed.BytesAfter)
	if n := count(t, dsn, `SELECT count(*) FROM `+day+` WHERE get_byte(data, 0) <> 0`); n != 1 {
		t.Fatalf("%d rows of the day kept their payload, want the large trace's alone", n)
	}
	if n := count(t, dsn, split); n != 0 {
		t.Fatalf("%d traces' index rows of a minute not merged", n)
	}
	// The burst's 300 traces (with their neighbours' rows) are in group
	// rows of a few dozen, the rest of the day in rows of one or two.
	index := "span_index_p" + d.Format("20060102")
	groups, grouped := count(t, dsn, `SELECT count(*) FROM `+index+` WHERE members <> ''`), count(t, dsn, `SELECT count(*) FROM `+index+` WHERE ts >= $1 AND ts < $2`, d.Add(2*time.Hour), d.Add(2*time.Hour+5*time.Minute))
	if groups < 5 || grouped > 15 {
		t.Fatalf("%d group rows in the day, %d rows for the burst's 300 traces: the search of group rows is not tested", groups, grouped)
	}
	// The sealed day is ready to read: its new tables have statistics
	// (reltuples is -1 until a table's first ANALYZE), and its GIN
	// indexes nothing pending (what gin_clean_pending_list would empty).
	if n := count(t, dsn, `SELECT count(*) FROM pg_class WHERE oid = ANY($1::regclass[]) AND reltuples > 0`,
		[]string{day, blocks, "span_index_p" + d.Format("20060102")}); n != 3 {
		t.Fatalf("%d of the day's 3 partitions analyzed after packing", n)
	}
	if n := count(t, dsn, `SELECT coalesce(sum(gin_clean_pending_list(i.indexrelid)), 0)::int FROM pg_index i
		JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
		WHERE a.amname = 'gin' AND i.indrelid = ANY($1::regclass[])`, []string{blocks, "span_index_p" + d.Format("20060102")}); n != 0 {
		t.Fatalf("%d pages pending in the day's GIN indexes after packing", n)
	}
	if n := count(t, dsn, `SELECT count(*) FROM (SELECT 1 FROM `+day+` GROUP BY trace_id_low, trace_id_high, tenant HAVING count(*) > 1) x`); n != 0 {
		t.Fatalf("%d traces of the day still in several rows", n)
	}
	if memberRows {
		n, err := st.PackAsBeforeDirectories(ctx(t))
		if err != nil || n < 1801 {
			t.Fatalf("%d member rows written, %v", n, err)
		}
	}
	after := reads(st)
	if n := count(t, dsn, `SELECT count(*) FROM `+columns); n != 0 {
		t.Fatalf("%d span column blocks of the packed day left", n)
	}
	for name, traces := range byTenant {
		for i, tr := range traces {
			if !sameSpans(before.traces[name][i], after.traces[name][i]) {
				t.Fatalf("%s: trace %v reads %d spans after packing, %d before", name, tr[0].TraceID, len(after.traces[name][i]), len(before.traces[name][i]))
			}
		}
		if !slices.Equal(before.scanned[name], after.scanned[name]) {
			t.Fatalf("%s: a TraceQL scan found %d traces after packing (whole traces), %d before (span columns)", name, len(after.scanned[name]), len(before.scanned[name]))
		}
	}
	for k, found := range before.found {
		if !slices.Equal(found, after.found[k]) || len(found) == 0 {
			t.Fatalf("search %s found %d traces after packing, %d before", k, len(after.found[k]), len(found))
		}
	}
	if after.distinct != before.distinct {
		t.Fatalf("%d distinct spans after packing, %d before", after.distinct, before.distinct)
	}
	// A late span of a packed trace is read with it, and compaction merges
	// the two rows into one.
	lateTrace := def[10]
	late := lateTrace[0]
	late.ID, late.ParentID, late.Name = 0xfeed, lateTrace[0].ID, "late"
	if err := st.WriteSpans(ctx(t), []zipkin.Span{late}); err != nil {
		t.Fatal(err)
	}
	if got, err := oneTrace(st, ctx(t), late.TraceID, true); err != nil || len(got) != len(lateTrace)+1 {
		t.Fatalf("packed trace with a late span: %d spans, %v; want %d", len(got), err, len(lateTrace)+1)
	}
	drain(t, st)
	if got, err := oneTrace(st, ctx(t), late.TraceID, true); err != nil || len(got) != len(lateTrace)+1 {
		t.Fatalf("compacted: %d spans, %v; want %d", len(got), err, len(lateTrace)+1)
	}
	if n := count(t, dsn, `SELECT count(*) FROM segments WHERE trace_id_low = $1`, int64(late.TraceID.Low)); n != 1 {
		t.Fatalf("the trace with a late span is in %d rows after compaction", n)
	}

	// Keep by value thins a day packed before a policy was set: what it
	// keeps is read whole, what it thins is gone.
	keep, err := storage.Open(ctx(t), storage.Config{URL: dsn, Keep: "sample=10%"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(keep.Close)
	for {
		res, err := keep.Thin(ctx(t), now)
		if err != nil {
			t.Fatal(err)
		}
		if res.Day.IsZero() || res.Day.After(d) {
			break
		}
	}
	var kept, gone int
	for _, tr := range byTenant["acme"] {
		c := tenant.With(ctx(t), "acme")
		got, err := oneTrace(keep, c, tr[0].TraceID, true)
		if err != nil {
			t.Fatal(err)
		}
		sampled := tr[0].TraceID.Low%10_000 < 1000
		crosses := tr[len(tr)-1].Timestamp >= d.Add(24*time.Hour).UnixMicro()
		switch {
		case sampled && len(got) != len(tr):
			t.Fatalf("kept trace %v: %d of %d spans", tr[0].TraceID, len(got), len(tr))
		case !sampled && !crosses && len(got) != 0:
			t.Fatalf("thinned trace %v: %d spans still read", tr[0].TraceID, len(got))
		case sampled:
			kept++
		default:
			gone++
		}
	}
	if kept == 0 || gone == 0 {
		t.Fatalf("kept %d, thinned %d: the policy was not tried", kept, gone)
	}
}

// sameSpans: the same spans in the same order.
func sameSpans(a, b []zipkin.Span) bool {
	return slices.EqualFunc(a, b, func(x, y zipkin.Span) bool {
		bx, err1 := x.MarshalCanonical(nil)
		by, err2 := y.MarshalCanonical(nil)
		return err1 == nil && err2 == nil && string(bx) == string(by)
	})
}

// drain runs the linker and the compactor until both are idle.
func drain(t *testing.T, st *storage.Store) {
	t.Helper()
	for {
		linked, err := st.Link(ctx(t), 10_000)
		if err != nil {
			t.Fatal(err)
		}
		compacted, err := st.Compact(context.WithoutCancel(ctx(t)), storage.CompactBatch)
		if err != nil {
			t.Fatal(err)
		}
		if linked == 0 && compacted == 0 {
			return
		}
	}
}

// TestPackAfterMigrating: days written before migration 19 (no blocks
// partitions yet) are readable after it and packed like the others.
func TestPackAfterMigrating(t *testing.T) {
	t.Parallel()
	st, dsn := openStoreAt(t, storage.Config{}, 18)
	now := time.Now().UTC()
	d := now.Add(-3 * 24 * time.Hour).Truncate(24 * time.Hour)
	if n := count(t, dsn, `SELECT count(*) FROM (SELECT zipq_ensure_partition('segments', $1::date), zipq_ensure_partition('span_index', $1::date)) x`, d.Format(time.DateOnly)); n != 1 {
		t.Fatal("partitions not made")
	}
	traces := thinTraces(rand.New(rand.NewPCG(3, 4)), 200, d)
	var all []zipkin.Span
	for _, tr := range traces {
		all = append(all, tr...)
	}
	if err := st.WriteSpans(ctx(t), all); err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx(t)); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		for _, tr := range traces {
			got, err := oneTrace(st, ctx(t), tr[0].TraceID, true)
			if err != nil || len(got) != len(tr) {
				t.Fatalf("%s: trace %v: %d of %d spans, %v", when, tr[0].TraceID, len(got), len(tr), err)
			}
		}
	}
	check("migrated")
	res, err := st.Pack(ctx(t), now)
	if err != nil || !res.Day.Equal(d) || res.Traces != 200 {
		t.Fatalf("packed %+v, %v; want the day's 200 traces", res, err)
	}
	check("packed")
}

// TestPackInSmallPages packs a day seven rows at a time: pages cut inside a
// trace's rows, and a trace ID whose rows (two traces sharing the lower 64
// bits, eight rows each) fill whole pages. Every trace of the day ends in
// one member row, none keeps its own frame, and every read answers as
// before.
func TestPackInSmallPages(t *testing.T) {
	t.Parallel()
	st, dsn := openStore(t, storage.Config{})
	st.PackInPagesOf(7)
	now, d := closedDay(t, st)
	r := rand.New(rand.NewPCG(23, 5))
	traces := thinTraces(r, 200, d)
	wide := func(id zipkin.TraceID) []zipkin.Span {
		spans := make([]zipkin.Span, 8)
		for i := range spans {
			spans[i] = zipkin.Span{TraceID: id, ID: zipkin.SpanID(i + 1), Name: "step", Timestamp: d.Add(2*time.Hour + time.Duration(i)*time.Second).UnixMicro(),
				Duration: 10, LocalEndpoint: &zipkin.Endpoint{ServiceName: "wide"}}
		}
		return spans
	}
	traces = append(traces, wide(zipkin.TraceID{High: 1, Low: 5}), wide(zipkin.TraceID{High: 2, Low: 5}))
	writeSplit(t, st, ctx(t), traces, 3)
	for _, tr := range traces[len(traces)-2:] { // again, a row a span
		for _, sp := range tr {
			if err := st.WriteSpans(ctx(t), []zipkin.Span{sp}); err != nil {
				t.Fatal(err)
			}
		}
	}
	day := "segments_p" + d.Format("20060102")
	if n := count(t, dsn, `SELECT count(*) FROM `+day+` WHERE trace_id_low = 5`); n < 14 {
		t.Fatalf("the shared trace ID has %d rows, want whole pages of them", n)
	}
	read := func() [][]zipkin.Span {
		var out [][]zipkin.Span
		for _, tr := range traces {
			spans, err := oneTrace(st, ctx(t), tr[0].TraceID, true)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, spans)
		}
		return out
	}
	before := read()
	for {
		res, err := st.Pack(ctx(t), now)
		if err != nil {
			t.Fatal(err)
		}
		if res.Day.IsZero() || res.Day.Equal(d) {
			break
		}
	}
	if n := count(t, dsn, `SELECT count(*) FROM `+day+` WHERE get_byte(data, 0) <> 0`); n != 0 {
		t.Fatalf("%d rows of the day kept their own frame", n)
	}
	if n := count(t, dsn, `SELECT count(*) FROM (SELECT 1 FROM `+day+` GROUP BY trace_id_low, trace_id_high, tenant HAVING count(*) > 1) x`); n != 0 {
		t.Fatalf("%d traces of the day still in several rows", n)
	}
	for i, spans := range read() {
		if !sameSpans(before[i], spans) || len(spans) != len(traces[i]) {
			t.Fatalf("trace %v reads %d spans after packing, %d before, %d written", traces[i][0].TraceID, len(spans), len(before[i]), len(traces[i]))
		}
	}
}

// TestPackedTwins: traces sharing their ID's lower half (twins) are read
// by ID after packing where a block boundary falls between them, the
// earlier one at the end of one block and the later first in the next
// (a lookup by the blocks' ID ranges, tried in session 19, must then
// read both blocks).
func TestPackedTwins(t *testing.T) {
	t.Parallel()
	st, dsn := openStore(t, storage.Config{})
	now, d := closedDay(t, st)
	traces := thinTraces(rand.New(rand.NewPCG(31, 7)), 3000, d)
	for i := 1; i < len(traces); i += 2 {
		for j := range traces[i] {
			traces[i][j].TraceID.Low = traces[i-1][0].TraceID.Low
		}
	}
	writeSplit(t, st, ctx(t), traces, 3)
	packAll(t, st, now)
	straddling := `SELECT count(*) FROM segment_blocks a JOIN segment_blocks b ON b.ts = a.ts AND b.tenant = a.tenant
		AND b.trace_id_low = a.lows[array_length(a.lows, 1)] AND b.block_uid <> a.block_uid`
	if n := count(t, dsn, straddling); n == 0 {
		t.Fatalf("no twins straddle a block boundary (%d blocks): the lookup is not tested", count(t, dsn, `SELECT count(*) FROM segment_blocks`))
	}
	readAsWritten(t, st, traces, "packing")
	// The lookup's plan as a pooled statement gets it after five runs
	// (the generic one): the last block starting below the ID is one
	// backward step of an index on the day's blocks, never a sort of
	// them (the planner picks the index by the day's statistics: on this
	// small day, the primary key; with many tenants, the range index).
	conn, err := pgx.Connect(ctx(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx(t), `SET plan_cache_mode = force_generic_plan`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx(t), `PREPARE lookup(smallint, bigint[]) AS `+storage.ByIDQuery); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx(t), `EXPLAIN (COSTS OFF) EXECUTE lookup(0, '{`+strconv.FormatInt(int64(traces[0][0].TraceID.Low), 10)+`}')`)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	plan := strings.Join(lines, "\n")
	if !strings.Contains(plan, "Index Scan Backward using segment_blocks_p"+d.Format("20060102")+"_") || strings.Contains(plan, "->  Sort") {
		t.Fatalf("the lookup's generic plan does not step back in an index of the day's blocks:\n%s", plan)
	}
}

// TestPackedLinks: packing moves a day's trace_links rows into the
// members (the links records), the dependency graph does not move, and
// late spans on packed traces — dated in the day, and a day before it —
// relink them exactly twice over (the graph equals Zipkin's linker run
// over every span stored), each relinked trace then having a row again,
// still counted in its day's hours; a packed trace sharing the lower 64
// bits of a relinked one's ID keeps its record. It runs on both layouts,
// as TestPackDay does.
func TestPackedLinks(t *testing.T) {
	t.Parallel()
	bothLayouts(t, testPackedLinks)
}

func testPackedLinks(t *testing.T, memberRows bool) {
	st, dsn := openStore(t, storage.Config{})
	now, d := closedDay(t, st)
	traces := thinTraces(rand.New(rand.NewPCG(25, 1)), 600, d)
	// A trace sharing the lower 64 bits of traces[0]'s ID, linked and
	// packed but never relinked: its record is not traces[0]'s.
	twin := slices.Clone(traces[1])
	for i := range twin {
		twin[i].TraceID = zipkin.TraceID{High: traces[0][0].TraceID.High + 1, Low: traces[0][0].TraceID.Low}
	}
	if len(zipkin.Link(twin)) == 0 {
		t.Fatal("the twin has no links: the shared lower half is not tested")
	}
	traces = append(traces, twin)
	writeSplit(t, st, ctx(t), traces, 4) // some in two segments, compacted before packing
	drain(t, st)
	graph := func(when string) {
		t.Helper()
		want := map[[2]string]zipkin.DependencyLink{}
		for _, tr := range traces {
			for _, l := range zipkin.Link(tr) {
				w := want[[2]string{l.Parent, l.Child}]
				w.Parent, w.Child = l.Parent, l.Child
				w.CallCount += l.CallCount
				w.ErrorCount += l.ErrorCount
				want[[2]string{l.Parent, l.Child}] = w
			}
		}
		got, err := st.Dependencies(ctx(t), now, 6*24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d dependency links, want %d: %+v", when, len(got), len(want), got)
		}
		for _, l := range got {
			if w := want[[2]string{l.Parent, l.Child}]; l != w {
				t.Fatalf("%s: %+v, want %+v", when, l, w)
			}
		}
	}
	graph("linked")
	inDay := `SELECT count(*) FROM trace_links WHERE hour >= $1 AND hour < $1 + interval '1 day'`
	rows := count(t, dsn, inDay, d)
	if rows < 300 {
		t.Fatalf("%d trace_links rows in the day before packing: the move is not tested", rows)
	}
	packAll(t, st, now)
	if memberRows {
		if _, err := st.PackAsBeforeDirectories(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(t, dsn, inDay, d); n != 0 {
		t.Fatalf("%d of the day's %d trace_links rows left after packing", n, rows)
	}
	graph("packed")
	// Two rounds of late spans, each a new service under a trace's root:
	// the first round on every seventh trace has one dated within the
	// day and one a day before it (a day packed already: it stays a row).
	// Relinked while packed, a trace linked before stays counted in its
	// day's hours; one without links (a single span) is counted where its
	// new links fall. Compaction then merges the block entry and the late
	// span into a segment of their own. A block entry stays (a block is
	// never rewritten), so in the next round each trace stays counted
	// where it was: a row that moved to the day before would expire
	// before the entry, whose record would then be subtracted again. A
	// member row goes, and with it the record: from the next round on,
	// that trace is counted as any unpacked one, dated by its earliest
	// span.
	relinked, inTheDay, early := 0, []int{0, 0}, 0
	for round, service := range []string{"late", "later"} {
		var lates []zipkin.Span
		for i, tr := range traces[:len(traces)-1] {
			if i%7 != 0 {
				continue
			}
			late := zipkin.Span{TraceID: tr[0].TraceID, ID: zipkin.SpanID(0xfeed00 + round), ParentID: tr[0].ID, Name: "late", Kind: zipkin.KindServer,
				Timestamp: tr[0].Timestamp + 1000, Duration: 5, LocalEndpoint: &zipkin.Endpoint{ServiceName: service}}
			if round == 0 {
				relinked++
				if i%14 == 0 {
					late.Timestamp = tr[0].Timestamp - int64(24*time.Hour/time.Microsecond)
					early++
				}
				if i%14 != 0 || len(zipkin.Link(tr)) > 0 {
					inTheDay[0]++
				}
			}
			lates = append(lates, late)
			traces[i] = append(traces[i], late)
		}
		if err := st.WriteSpans(ctx(t), lates); err != nil {
			t.Fatal(err)
		}
		drain(t, st)
		graph(service + " spans linked")
		inTheDay[1] = inTheDay[0]
		if memberRows {
			inTheDay[1] = relinked - early
		}
		if n, all := count(t, dsn, inDay, d), count(t, dsn, `SELECT count(*) FROM trace_links`); n != inTheDay[round] || all != relinked {
			t.Fatalf("after the %s spans: %d trace_links rows, %d in the day; want one for each of the %d relinked traces, %d in the day", service, all, n, relinked, inTheDay[round])
		}
	}
}

// writeSplit writes traces in two batches, the first span of every k-th
// trace in the first and the rest of it in the second (a trace stored as
// two segments), then each extra batch.
func writeSplit(t *testing.T, st *storage.Store, c context.Context, traces [][]zipkin.Span, k int, extra ...[]zipkin.Span) {
	t.Helper()
	var first, second []zipkin.Span
	for i, tr := range traces {
		if i%k == 0 && len(tr) > 1 {
			first, second = append(first, tr[:1]...), append(second, tr[1:]...)
			continue
		}
		first = append(first, tr...)
	}
	for _, batch := range append([][]zipkin.Span{first, second}, extra...) {
		if err := st.WriteSpans(c, batch); err != nil {
			t.Fatal(err)
		}
	}
}

// packAll packs every day due at now, oldest first, and returns what each
// packing did.
// burst is n traces of thinTraces' kind, about one a second from at.
func burst(r *rand.Rand, n int, at time.Time) [][]zipkin.Span {
	traces := thinTraces(r, n, at.Truncate(24*time.Hour))
	for i, tr := range traces {
		// A second apart and some µs more, so that no two spans start
		// together (searches' order is then the same however read).
		shift := at.Add(time.Duration(i)*time.Second).UnixMicro() + r.Int64N(1_000_000) - tr[0].Timestamp
		for j := range tr {
			tr[j].Timestamp += shift
		}
	}
	return traces
}

// TestIndexGroupsMigrateDown: going back past migration 22 is refused
// while a packed day's index is in group rows (a binary before it would
// read them as their first trace's rows and miss the others), and once
// they are gone it drops the column, and up again restores it.
func TestIndexGroupsMigrateDown(t *testing.T) {
	t.Parallel()
	st, dsn := openStore(t, storage.Config{})
	now, d := closedDay(t, st)
	writeSplit(t, st, ctx(t), burst(rand.New(rand.NewPCG(22, 1)), 200, d.Add(3*time.Hour)), 1)
	packAll(t, st, now)
	groups := `SELECT count(*) FROM span_index WHERE members <> ''`
	if n := count(t, dsn, groups); n == 0 {
		t.Fatal("no group rows after packing: the refusal is not tested")
	}
	column := `SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'span_index' AND column_name = 'members'`
	if err := st.MigrateDownTo(ctx(t), 21); err == nil || !strings.Contains(err.Error(), "group rows") {
		t.Fatalf("down to 21 with group rows: %v, want a refusal naming them", err)
	}
	if n := count(t, dsn, column); n != 1 {
		t.Fatal("the refused down migration dropped span_index.members")
	}
	execSQL(t, dsn, `DELETE FROM span_index WHERE members <> ''`)
	if err := st.MigrateDownTo(ctx(t), 21); err != nil {
		t.Fatal(err)
	}
	if n := count(t, dsn, column); n != 0 {
		t.Fatal("span_index.members kept by the down migration")
	}
	if err := st.Migrate(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if n := count(t, dsn, column); n != 1 {
		t.Fatal("span_index.members not back after migrating up again")
	}
}

func packAll(t *testing.T, st *storage.Store, now time.Time) []storage.PackResult {
	t.Helper()
	var out []storage.PackResult
	for {
		res, err := st.Pack(ctx(t), now)
		if err != nil {
			t.Fatal(err)
		}
		if res.Day.IsZero() {
			return out
		}
		out = append(out, res)
	}
}

// TestBlockRangesMigrate: migration 23 swaps each blocks partition's GIN
// index on lows, packed days' included, for the range index byIDQuery
// steps back in, and going down swaps them back; a packed trace reads
// after the round trip.
func TestBlockRangesMigrate(t *testing.T) {
	t.Parallel()
	st, dsn := openStore(t, storage.Config{})
	now, d := closedDay(t, st)
	traces := thinTraces(rand.New(rand.NewPCG(23, 1)), 300, d)
	writeSplit(t, st, ctx(t), traces, 1)
	packAll(t, st, now)
	indexes := func(suffix string) int {
		return count(t, dsn, `SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			JOIN pg_class x ON x.relname = c.relname || '`+suffix+`' AND x.relnamespace = c.relnamespace
			WHERE i.inhparent = 'segment_blocks'::regclass`)
	}
	parts := count(t, dsn, `SELECT count(*) FROM pg_inherits WHERE inhparent = 'segment_blocks'::regclass`)
	if parts < 2 || indexes("_range_idx") != parts || indexes("_lows_idx") != 0 {
		t.Fatalf("at 23: %d of %d partitions with a range index, %d with a GIN index on lows", indexes("_range_idx"), parts, indexes("_lows_idx"))
	}
	if err := st.MigrateDownTo(ctx(t), 22); err != nil {
		t.Fatal(err)
	}
	if indexes("_range_idx") != 0 || indexes("_lows_idx") != parts {
		t.Fatalf("at 22: %d of %d partitions with a GIN index on lows, %d with a range index", indexes("_lows_idx"), parts, indexes("_range_idx"))
	}
	if err := st.Migrate(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if indexes("_range_idx") != parts || indexes("_lows_idx") != 0 {
		t.Fatalf("at 23 again: %d of %d partitions with a range index, %d with a GIN index on lows", indexes("_range_idx"), parts, indexes("_lows_idx"))
	}
	readAsWritten(t, st, traces, "the round trip")
}

// readAsWritten checks each trace reads by ID as written, after what.
func readAsWritten(t *testing.T, st *storage.Store, traces [][]zipkin.Span, after string) {
	t.Helper()
	for _, tr := range traces {
		spans, err := oneTrace(st, ctx(t), tr[0].TraceID, true)
		if err != nil {
			t.Fatal(err)
		}
		if !sameSpans(spans, tr) {
			t.Fatalf("trace %v reads %d spans after %s, %d written", tr[0].TraceID, len(spans), after, len(tr))
		}
	}
}
