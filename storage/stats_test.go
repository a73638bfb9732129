package storage_test

import (
	"cmp"
	"context"
	"encoding/hex"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zipq/zipq/internal/testenv"
	"github.com/zipq/zipq/storage"
	"github.com/zipq/zipq/zipkin"
)

// statSpans is a generated workload for the service metrics: traces of a
// few services, names and kinds, ~5 % failed (half by Zipkin's error tag,
// half by an OpenTelemetry status), with bimodal durations (most fast, a
// tenth ~400× slower), starting over the last ten minutes, plus a tenth
// arriving late: started two hours ago.
func statSpans(r *rand.Rand, traces int, now time.Time) []zipkin.Span {
	services := []string{"frontend", "cart", "payments", "shipping"}
	names := []string{"get /", "post /cart", "charge", "ship"}
	var out []zipkin.Span
	for t := range traces {
		id := zipkin.TraceID{High: r.Uint64(), Low: r.Uint64()}
		start := now.Add(-time.Duration(r.Int64N(int64(10 * time.Minute))))
		if t%10 == 9 {
			start = start.Add(-2 * time.Hour)
		}
		for s := range 1 + r.IntN(6) {
			sp := zipkin.Span{TraceID: id, ID: zipkin.SpanID(r.Uint64() | 1), Name: names[r.IntN(len(names))],
				Kind:          zipkin.Kind(r.IntN(5)),
				Timestamp:     start.Add(time.Duration(s) * time.Millisecond).UnixMicro(),
				Duration:      1 + int64(r.ExpFloat64()*2000),
				LocalEndpoint: &zipkin.Endpoint{ServiceName: services[r.IntN(len(services))]},
			}
			if r.IntN(10) == 0 {
				sp.Duration = 800_000 + int64(r.NormFloat64()*50_000)
			}
			if r.IntN(3) == 0 {
				sp.RemoteEndpoint = &zipkin.Endpoint{ServiceName: services[r.IntN(len(services))]}
			}
			switch r.IntN(40) {
			case 0:
				sp.Tags = map[string]string{"error": "boom"}
			case 1:
				sp.Tags = map[string]string{"otel.status_code": "Error"}
			}
			out = append(out, sp)
		}
	}
	return out
}

// exactStats is the oracle: the service metrics computed from the spans
// themselves, grouped by service and bucketed like storage.Stats.
func exactStats(spans []zipkin.Span, start time.Time, step time.Duration) map[string]map[int64][]zipkin.Span {
	out := map[string]map[int64][]zipkin.Span{}
	for _, sp := range spans {
		t := time.UnixMicro(sp.Timestamp)
		if t.Before(start) {
			continue
		}
		b := int64(t.Sub(start) / step)
		svc := sp.LocalServiceName()
		if out[svc] == nil {
			out[svc] = map[int64][]zipkin.Span{}
		}
		out[svc][b] = append(out[svc][b], sp)
	}
	return out
}

// exactQuantile is the q-quantile of durations by DDSketch's rank rule:
// the value of rank ⌊q·(n−1)⌋ in ascending order.
func exactQuantile(spans []zipkin.Span, q float64) float64 {
	d := make([]int64, len(spans))
	for i, sp := range spans {
		d[i] = sp.Duration
	}
	slices.Sort(d)
	return float64(d[int(q*float64(len(d)-1))])
}

var statQuantiles = []float64{0.5, 0.9, 0.95, 0.99, 0.999}

// checkStats compares storage.Stats by service, at step, with the oracle:
// counts exact, quantiles within the sketch's relative accuracy, the
// slowest exemplar the slowest span.
func checkStats(t *testing.T, st *storage.Store, spans []zipkin.Span, start, end time.Time, step time.Duration) {
	t.Helper()
	series, err := st.Stats(t.Context(), storage.StatsQuery{Start: start, End: end, Step: step, By: storage.ByService, Quantiles: statQuantiles})
	if err != nil {
		t.Fatal(err)
	}
	want := exactStats(spans, start, step)
	if len(series) != len(want) {
		t.Fatalf("%d series, want %d", len(series), len(want))
	}
	for _, s := range series {
		buckets := want[s.Service]
		if len(s.Points) != len(buckets) {
			t.Fatalf("%s: %d points, want %d", s.Service, len(s.Points), len(buckets))
		}
		for _, p := range s.Points {
			b := int64(p.Time.Sub(start) / step)
			exact := buckets[b]
			var errs int64
			slowest := exact[0]
			for _, sp := range exact {
				if sp.Failed() {
					errs++
				}
				if sp.Duration > slowest.Duration {
					slowest = sp
				}
			}
			where := fmt.Sprintf("%s at %v", s.Service, p.Time)
			if p.Calls != int64(len(exact)) || p.Errors != errs {
				t.Fatalf("%s: %d calls, %d errors; want %d, %d", where, p.Calls, p.Errors, len(exact), errs)
			}
			for i, q := range statQuantiles {
				x := exactQuantile(exact, q)
				if math.Abs(p.Quantiles[i]-x) > storage.SketchAccuracy*x {
					t.Fatalf("%s: p%v = %.0f µs, exact %.0f µs: beyond %v relative error", where, q*100, p.Quantiles[i], x, storage.SketchAccuracy)
				}
			}
			if p.Slowest == nil || p.Slowest.DurationMic != slowest.Duration {
				t.Fatalf("%s: slowest exemplar %+v, want a span of %d µs", where, p.Slowest, slowest.Duration)
			}
			if (p.Failed != nil) != (errs > 0) {
				t.Fatalf("%s: failed exemplar %+v with %d errors", where, p.Failed, errs)
			}
		}
	}
}

// TestStatsOfPreviousWriters: during a rolling upgrade, collectors of the
// version before migration 18 still count a batch as span_stats rows, one
// per cell, while upgraded ones write packed batches; reads count both,
// in the same minutes, and the job folds both away.
func TestStatsOfPreviousWriters(t *testing.T) {
	t.Parallel()
	st, dsn := openStore(t, storage.Config{})
	now := time.Now().UTC()
	spans := statSpans(rand.New(rand.NewPCG(5, 6)), 2000, now)
	for i := 0; i < len(spans); i += 400 {
		write := st.WriteSpans
		if i/400%2 == 1 {
			write = st.WriteBeforeBatches
		}
		if err := write(ctx(t), spans[i:min(i+400, len(spans))]); err != nil {
			t.Fatal(err)
		}
	}
	if count(t, dsn, `SELECT count(*) FROM span_stats WHERE NOT merged`) == 0 || count(t, dsn, `SELECT count(*) FROM span_stats_batches`) == 0 {
		t.Fatal("want unmerged rows of both kinds before the fold")
	}
	start := now.Add(-3 * time.Hour).Truncate(time.Hour)
	end := now.Add(time.Minute)
	checkStats(t, st, spans, start, end, time.Minute)
	checkStats(t, st, spans, start, end, time.Hour)
	testenv.FoldStats(t, st, now.Add(2*time.Minute))
	if n := count(t, dsn, `SELECT (SELECT count(*) FROM span_stats WHERE NOT merged) + (SELECT count(*) FROM span_stats_batches)`); n != 0 {
		t.Fatalf("%d rows left unmerged", n)
	}
	checkStats(t, st, spans, start, end, time.Minute)
	checkStats(t, st, spans, start, end, time.Hour)
}

// TestStatsCountEverySpanOnce: the service metrics written with the spans
// equal those computed from the spans, however the batches were cut,
// rewritten or redelivered, before and after the job folds them into
// minutes and then hours.
func TestStatsCountEverySpanOnce(t *testing.T) {
	t.Parallel()
	st, dsn := openStore(t, storage.Config{})
	obs := &spanObserver{seen: map[zipkin.SpanID]int{}}
	st.SetObserver(obs)
	now := time.Now().UTC()
	spans := statSpans(rand.New(rand.NewPCG(1, 2)), 3000, now)
	batches := [][]zipkin.Span{}
	for i := 0; i < len(spans); i += 500 {
		batches = append(batches, spans[i:min(i+500, len(spans))])
	}
	for _, b := range batches {
		if err := st.WriteSpans(ctx(t), b); err != nil {
			t.Fatal(err)
		}
	}
	// A batch committed twice (its ack lost): identical segments, nothing
	// counted again.
	if err := st.WriteSpans(ctx(t), batches[1]); err != nil {
		t.Fatal(err)
	}
	// Redelivered messages cut differently: half of batch 2 with half of
	// batch 3, and the spans of one trace alone.
	mixed := append(slices.Clone(batches[2][250:]), batches[3][:250]...)
	if err := st.WriteRedelivered(ctx(t), mixed); err != nil {
		t.Fatal(err)
	}
	if err := st.WriteRedelivered(ctx(t), batches[4][:3]); err != nil {
		t.Fatal(err)
	}
	// The observer (the Prometheus series) was told of each span once.
	if len(obs.seen) != len(spans) || obs.total != len(spans) {
		t.Fatalf("observer told of %d spans (%d distinct), want each of %d once", obs.total, len(obs.seen), len(spans))
	}
	start := now.Add(-3 * time.Hour).Truncate(time.Hour)
	end := now.Add(time.Minute)
	checkStats(t, st, spans, start, end, time.Minute)
	checkStats(t, st, spans, start, end, 5*time.Minute)

	// Folded into minutes: one row per cell and minute, same answers.
	testenv.FoldStats(t, st, now.Add(2*time.Minute))
	if n := count(t, dsn, `SELECT (SELECT count(*) FROM span_stats WHERE NOT merged) + (SELECT count(*) FROM span_stats_batches)`); n != 0 {
		t.Fatalf("%d rows left unmerged", n)
	}
	if n := count(t, dsn, `SELECT count(*) FROM (SELECT 1 FROM span_stats GROUP BY tenant, ts, cell_h HAVING count(*) > 1) d`); n != 0 {
		t.Fatalf("%d cells have several rows for one minute", n)
	}
	checkStats(t, st, spans, start, end, time.Minute)

	// A late batch after folding is counted in its spans' minutes.
	late := statSpans(rand.New(rand.NewPCG(3, 4)), 200, now)
	if err := st.WriteSpans(ctx(t), late); err != nil {
		t.Fatal(err)
	}
	spans = append(spans, late...)
	testenv.FoldStats(t, st, now.Add(2*time.Minute))
	checkStats(t, st, spans, start, end, time.Minute)

	// A day later the minutes are hours: the hourly read is unchanged.
	testenv.FoldStats(t, st, now.Add(26*time.Hour))
	if n := count(t, dsn, `SELECT count(*) FROM span_stats WHERE res <> 3600`); n != 0 {
		t.Fatalf("%d rows not rolled up to hours", n)
	}
	checkStats(t, st, spans, start, end.Add(time.Hour), time.Hour)

	// Past the retention, nothing is left.
	testenv.FoldStats(t, st, now.Add(31*24*time.Hour))
	if n := count(t, dsn, `SELECT (SELECT count(*) FROM span_stats) + (SELECT count(*) FROM span_stats_batches)`); n != 0 {
		t.Fatalf("%d rows outlived the stats retention", n)
	}
}

// TestStatsByCell: grouping by every cell field keeps the cells apart,
// and filters select them.
func TestStatsByCell(t *testing.T) {
	t.Parallel()
	st, _ := openStore(t, storage.Config{})
	now := time.Now().UTC()
	spans := statSpans(rand.New(rand.NewPCG(5, 6)), 500, now)
	if err := st.WriteSpans(ctx(t), spans); err != nil {
		t.Fatal(err)
	}
	type cell struct {
		service, name, remote string
		kind                  zipkin.Kind
	}
	want := map[cell]int64{}
	start := now.Add(-10 * time.Minute).Truncate(time.Minute)
	for _, sp := range spans {
		if sp.Kind == zipkin.KindServer && sp.LocalServiceName() == "cart" && !time.UnixMicro(sp.Timestamp).Before(start) {
			want[cell{sp.LocalServiceName(), sp.Name, sp.RemoteServiceName(), sp.Kind}]++
		}
	}
	series, err := st.Stats(ctx(t), storage.StatsQuery{Service: "cart", Kinds: []zipkin.Kind{zipkin.KindServer},
		Start: start, End: now.Add(time.Minute), Step: time.Hour, By: storage.ByService | storage.ByName | storage.ByKind | storage.ByRemote})
	if err != nil {
		t.Fatal(err)
	}
	got := map[cell]int64{}
	for _, s := range series {
		got[cell{s.Service, s.Name, s.Remote, s.Kind}] = s.Total.Calls
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("cells %v\nwant %v", got, want)
	}
	if !slices.IsSortedFunc(series, func(a, b storage.StatsSeries) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Remote, b.Remote))
	}) {
		t.Fatal("series not in cell order")
	}
}

// spanObserver counts what storage tells its observer, by span ID
// (statSpans' IDs are random, so distinct).
type spanObserver struct {
	mu    sync.Mutex
	seen  map[zipkin.SpanID]int
	total int
}

func (o *spanObserver) SpansCounted(_ string, spans []*zipkin.Span) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, sp := range spans {
		o.seen[sp.ID]++
		o.total++
	}
}

func (o *spanObserver) LinksAdded(string, []zipkin.DependencyLink) {} // this test writes, links nothing

// TestStripsReadAsRows: a read of services' totals at one-minute steps or
// at hours (strips for the whole hours) answers as the same read from span_stats
// alone: counts and exemplars equal, quantiles the same up to the strips'
// float32; over ranges of whole and partial hours, with minutes folded
// twice, late rows not folded yet, hours rolled up, and hours folded
// before strips existed (backfilled by the job).
func TestStripsReadAsRows(t *testing.T) {
	t.Parallel()
	st, dsn := openStore(t, storage.Config{})
	oracle, err := storage.Open(ctx(t), storage.Config{URL: dsn}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(oracle.Close)
	oracle.ReadWithoutStrips()
	now := time.Now().UTC()
	r := rand.New(rand.NewPCG(5, 6))
	// Spans over the last 30 hours, so that the job rolls the oldest up,
	// and around three hours ago, where late ones will come.
	spans := statSpans(r, 400, now.Add(-3*time.Hour))
	for range 5 {
		spans = append(spans, statSpans(r, 400, now.Add(-time.Duration(r.Int64N(int64(30*time.Hour)))))...)
	}
	if err := st.WriteSpans(ctx(t), spans); err != nil {
		t.Fatal(err)
	}
	testenv.FoldStats(t, st, now.Add(2*time.Minute))
	compare := func(step string) {
		t.Helper()
		for _, rg := range []struct{ start, end time.Time }{
			{now.Add(-31 * time.Hour), now.Add(time.Minute)},
			{now.Add(-5 * time.Hour).Truncate(time.Hour), now.Add(-time.Hour).Truncate(time.Hour)},
			{now.Add(-30 * time.Hour).Truncate(time.Hour), now.Add(time.Hour)},
			{now.Add(-5*time.Hour - 17*time.Second), now.Add(-2*time.Hour + 41*time.Minute)},
			{now.Add(-20 * time.Minute), now.Add(time.Minute)},
			// Ending inside the burst three hours ago: its last hour has
			// minutes folded after the range, so its strip cannot serve it.
			{now.Add(-6 * time.Hour).Truncate(time.Hour), now.Add(-3*time.Hour - 5*time.Minute)},
			// Starting inside that burst: the first hour's strip holds
			// minutes before the range, which it must leave out.
			{now.Add(-3*time.Hour - 5*time.Minute - 17*time.Second), now.Add(time.Minute)},
		} {
			for _, v := range []struct {
				service string
				step    time.Duration
				qs      []float64
			}{{"", time.Minute, statQuantiles}, {"cart", time.Minute, statQuantiles}, {"", time.Hour, []float64{0.42, 0.99}}, {"payments", 2 * time.Hour, statQuantiles}} {
				q := storage.StatsQuery{Service: v.service, Start: rg.start, End: rg.end, Step: v.step, By: storage.ByService, Quantiles: v.qs}
				want, err := oracle.Stats(ctx(t), q)
				if err != nil {
					t.Fatal(err)
				}
				// The lent series first, their slabs from the reads before
				// (of other sizes), and still the same after a read made
				// while they are lent: it must take none of their slabs.
				err = st.ReadStats(ctx(t), q, func(lent []storage.StatsSeries) error {
					if !sameSeries(lent, want) {
						return fmt.Errorf("lent series differ from the rows read")
					}
					other := q
					other.Start = rg.start.Add(-time.Hour)
					if err := st.ReadStats(ctx(t), other, func([]storage.StatsSeries) error { return nil }); err != nil {
						return err
					}
					if !sameSeries(lent, want) {
						return fmt.Errorf("lent series changed by a read while lent")
					}
					return nil
				})
				if err != nil {
					t.Fatalf("%s, [%v, %v) of %q at %v: %v", step, rg.start, rg.end, v.service, v.step, err)
				}
				got, err := st.Stats(ctx(t), q)
				if err != nil {
					t.Fatal(err)
				}
				if v.step == time.Minute {
					// Exemplars by slice: every slice's slowest and slowest
					// failed are kept, and whatever is kept is a point's own.
					eq := q
					eq.ExemplarSlices = 7
					picked, err := st.Stats(ctx(t), eq)
					if err != nil {
						t.Fatal(err)
					}
					if err := keptBySlice(picked, got, q, eq.ExemplarSlices); err != nil {
						t.Fatalf("%s, [%v, %v) of %q by 7 slices: %v", step, rg.start, rg.end, v.service, err)
					}
				}
				if !sameSeries(got, want) {
					summary := func(ss []storage.StatsSeries) (out []string) {
						for _, s := range ss {
							out = append(out, fmt.Sprintf("%s: %d points, total %+v", s.Service, len(s.Points), s.Total))
						}
						return out
					}
					t.Fatalf("%s, [%v, %v) of %q at %v: strips read\n%v\nrows read\n%v", step, rg.start, rg.end, v.service, v.step, summary(got), summary(want))
				}
			}
		}
	}
	compare("folded")
	if n := count(t, dsn, `SELECT count(*) FROM span_strips`); n == 0 {
		t.Fatal("the job wrote no strips")
	}
	// Late spans, some in minutes folded already: first not folded, then
	// folded a second time.
	late := statSpans(r, 300, now.Add(-3*time.Hour))
	if err := st.WriteSpans(ctx(t), late); err != nil {
		t.Fatal(err)
	}
	compare("late rows not folded")
	testenv.FoldStats(t, st, now.Add(2*time.Minute))
	compare("late rows folded")
	// As if the minutes had been folded before strips existed: none, and
	// the migration's mark; reads take span_stats until the job has
	// built them again.
	execSQL(t, dsn, `DELETE FROM span_strips`)
	execSQL(t, dsn, `INSERT INTO span_strips_backfill VALUES (date_trunc('hour', now()) + interval '1 hour')`)
	compare("strips to backfill")
	testenv.FoldStats(t, st, now.Add(2*time.Minute))
	if n := count(t, dsn, `SELECT count(*) FROM span_strips_backfill`); n != 0 {
		t.Fatal("the backfill never finished")
	}
	compare("backfilled")
	// A corrupt strip fails the read, naming it, whichever worker decodes
	// it and whatever the others were still sent (goleak: none left).
	// A new revision, as every write of the job gives: the store's cache
	// holds the good strip at the old one.
	execSQL(t, dsn, `UPDATE span_strips SET points = '\x02', rev = nextval('span_strips_rev') WHERE ctid = (SELECT min(ctid) FROM span_strips)`)
	for _, step := range []time.Duration{time.Minute, time.Hour} {
		_, err := st.Stats(ctx(t), storage.StatsQuery{Start: now.Add(-31 * time.Hour).Truncate(time.Hour), End: now.Add(time.Minute), Step: step, By: storage.ByService})
		if err == nil || !strings.Contains(err.Error(), "stored strip is corrupt: version [2]") || !strings.Contains(err.Error(), "strip of ") {
			t.Fatalf("a corrupt strip read at %v: %v", step, err)
		}
	}
	// A day later, the minutes are hours and the strips gone.
	testenv.FoldStats(t, st, now.Add(26*time.Hour))
	if n := count(t, dsn, `SELECT count(*) FROM span_strips`); n != 0 {
		t.Fatalf("%d strips outlived their minutes", n)
	}
	compare("rolled up")
}

// keptBySlice checks a read with ExemplarSlices n against the same read
// keeping every exemplar: the points are the same but for exemplars; each
// exemplar kept is the point's own; of each of n slices (by bucket) the
// slowest and the slowest failed exemplar are kept.
func keptBySlice(picked, all []storage.StatsSeries, q storage.StatsQuery, n int) error {
	if len(picked) != len(all) {
		return fmt.Errorf("%d series, want %d", len(picked), len(all))
	}
	buckets := int((q.End.Sub(q.Start) + q.Step - 1) / q.Step)
	cut := min(n, buckets)
	for i := range all {
		p, a := picked[i].Points, all[i].Points
		if len(p) != len(a) || !reflect.DeepEqual(picked[i].Total, all[i].Total) {
			return fmt.Errorf("%s: %d points, want %d; total %+v, want %+v", all[i].Service, len(p), len(a), picked[i].Total, all[i].Total)
		}
		slow, failed := map[int]int64{}, map[int]int64{} // per slice, the slowest kept
		wantSlow, wantFailed := map[int]int64{}, map[int]int64{}
		for j := range a {
			x, y := p[j], a[j]
			if x.Slowest != nil && !reflect.DeepEqual(x.Slowest, y.Slowest) || x.Failed != nil && !reflect.DeepEqual(x.Failed, y.Failed) {
				return fmt.Errorf("%s point %d: kept %+v %+v, the point's own %+v %+v", all[i].Service, j, x.Slowest, x.Failed, y.Slowest, y.Failed)
			}
			sl := int(y.Time.Sub(q.Start)/q.Step) * cut / buckets
			for _, c := range []struct {
				kept, own *storage.StatsExemplar
				got, want map[int]int64
			}{{x.Slowest, y.Slowest, slow, wantSlow}, {x.Failed, y.Failed, failed, wantFailed}} {
				if c.kept != nil {
					c.got[sl] = max(c.got[sl], c.kept.DurationMic+1)
				}
				if c.own != nil {
					c.want[sl] = max(c.want[sl], c.own.DurationMic+1)
				}
			}
		}
		if !maps.Equal(slow, wantSlow) || !maps.Equal(failed, wantFailed) {
			return fmt.Errorf("%s: slowest kept by slice %v, want %v; failed %v, want %v", all[i].Service, slow, wantSlow, failed, wantFailed)
		}
	}
	return nil
}

// sameSeries is equality with quantiles to a float32's precision.
func sameSeries(a, b []storage.StatsSeries) bool {
	if len(a) != len(b) {
		return false
	}
	near := func(x, y storage.StatsPoint) bool {
		if len(x.Quantiles) != len(y.Quantiles) {
			return false
		}
		for i := range x.Quantiles {
			if math.Abs(x.Quantiles[i]-y.Quantiles[i]) > 1e-6*math.Abs(y.Quantiles[i]) {
				return false
			}
		}
		x.Quantiles, y.Quantiles = nil, nil
		return reflect.DeepEqual(x, y)
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Service != y.Service || len(x.Points) != len(y.Points) || !near(x.Total, y.Total) {
			return false
		}
		for j := range x.Points {
			if !near(x.Points[j], y.Points[j]) {
				return false
			}
		}
	}
	return true
}

func execSQL(t testing.TB, dsn, q string) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// TestStatsBytesAreTheSegments: the bytes the service metrics attribute
// to spans add up to the stored segments' bytes (less at most a byte a
// span, rounding down each share), before and after folding, by service
// and by operation alike; a segment's big span gets the big share.
func TestStatsBytesAreTheSegments(t *testing.T) {
	t.Parallel()
	st, dsn := openStore(t, storage.Config{})
	now := time.Now().UTC()
	spans := statSpans(rand.New(rand.NewPCG(10, 11)), 800, now)
	big := spans[0]
	big.ID, big.LocalEndpoint, big.Name = 12345, &zipkin.Endpoint{ServiceName: "big"}, "upload"
	payload := make([]byte, 10_000) // incompressible: 20 kB stored as about 10
	for i := range payload {
		payload[i] = byte(rand.Uint32())
	}
	big.Tags = map[string]string{"payload": hex.EncodeToString(payload)}
	spans = append(spans, big)
	if err := st.WriteSpans(ctx(t), spans); err != nil {
		t.Fatal(err)
	}
	stored := count(t, dsn, `SELECT sum(length(data))::int FROM segments`)
	check := func(when string) {
		t.Helper()
		for _, by := range []storage.StatsBy{storage.ByService, storage.ByService | storage.ByName} {
			series, err := st.Stats(ctx(t), storage.StatsQuery{Start: now.Add(-3 * time.Hour), End: now.Add(time.Minute), Step: 4 * time.Hour, By: by})
			if err != nil {
				t.Fatal(err)
			}
			var sum int64
			for _, s := range series {
				sum += s.Total.Bytes
				if s.Service == "big" && s.Total.Bytes < 1000 {
					t.Fatalf("%s: the 20 kB span's share is %d bytes", when, s.Total.Bytes)
				}
			}
			if sum > int64(stored) || sum < int64(stored-len(spans)) {
				t.Fatalf("%s, by %v: %d bytes attributed, segments hold %d", when, by, sum, stored)
			}
		}
	}
	check("as written")
	testenv.FoldStats(t, st, now.Add(2*time.Minute))
	check("folded")
}
