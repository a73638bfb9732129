package storage_test

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

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
	fold(t, st, now.Add(2*time.Minute))
	if n := count(t, dsn, `SELECT count(*) FROM span_stats WHERE NOT merged`); n != 0 {
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
	fold(t, st, now.Add(2*time.Minute))
	checkStats(t, st, spans, start, end, time.Minute)

	// A day later the minutes are hours: the hourly read is unchanged.
	fold(t, st, now.Add(26*time.Hour))
	if n := count(t, dsn, `SELECT count(*) FROM span_stats WHERE res <> 3600`); n != 0 {
		t.Fatalf("%d rows not rolled up to hours", n)
	}
	checkStats(t, st, spans, start, end.Add(time.Hour), time.Hour)

	// Past the retention, nothing is left.
	fold(t, st, now.Add(31*24*time.Hour))
	if n := count(t, dsn, `SELECT count(*) FROM span_stats`); n != 0 {
		t.Fatalf("%d rows outlived the stats retention", n)
	}
}

func fold(t testing.TB, st *storage.Store, now time.Time) {
	t.Helper()
	for range 10_000 {
		more, err := st.FoldStats(ctx(t), now)
		if err != nil {
			t.Fatal(err)
		}
		if !more {
			return
		}
	}
	t.Fatal("the stats job never ran out of work")
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
