package storage_test

import (
	"cmp"
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zipq/zipq/internal/tenant"
	"github.com/zipq/zipq/storage"
	"github.com/zipq/zipq/zipkin"
)

// thinTraces makes n traces of one tenant starting within day d (the last
// few just before midnight, so their spans run into the next day): a root
// span and up to five children over four services, durations bimodal per
// operation, a failed span now and then, and an operation called only
// rarely.
func thinTraces(r *rand.Rand, n int, d time.Time) [][]zipkin.Span {
	services := []string{"frontend", "cart", "payments", "shipping"}
	names := []string{"get /", "post /cart", "charge", "ship"}
	out := make([][]zipkin.Span, n)
	for i := range out {
		id := zipkin.TraceID{High: r.Uint64(), Low: r.Uint64()}
		start := d.Add(time.Hour + time.Duration(r.Int64N(int64(20*time.Hour))))
		if i%100 == 0 {
			start = d.Add(24*time.Hour - 30*time.Second)
		}
		root := zipkin.SpanID(r.Uint64() | 1)
		spans := 1 + r.IntN(6)
		for s := range spans {
			sp := zipkin.Span{TraceID: id, ID: zipkin.SpanID(r.Uint64() | 1), Name: names[r.IntN(len(names))],
				Kind:          zipkin.KindServer,
				Timestamp:     start.Add(time.Duration(s) * 20 * time.Second).UnixMicro(),
				Duration:      1 + int64(r.ExpFloat64()*2000),
				LocalEndpoint: &zipkin.Endpoint{ServiceName: services[r.IntN(len(services))]},
			}
			if s == 0 {
				sp.ID = root
			} else {
				sp.ParentID = root
			}
			if r.IntN(20) == 0 {
				sp.Duration = 800_000 + int64(r.NormFloat64()*50_000)
			}
			if r.IntN(150) == 0 {
				sp.Tags = map[string]string{"error": "boom"}
			}
			if r.IntN(400) == 0 {
				sp.Name = "reindex" // rare
			}
			out[i] = append(out[i], sp)
		}
	}
	return out
}

// closedDay makes the daily partitions from the day before d, three
// days ago, to the days ahead of now, and returns now and d (UTC).
func closedDay(t *testing.T, st *storage.Store) (now, d time.Time) {
	t.Helper()
	now = time.Now().UTC()
	d = now.Add(-3 * 24 * time.Hour).Truncate(24 * time.Hour)
	for _, at := range []time.Time{d, now} {
		if err := st.Maintain(ctx(t), at); err != nil {
			t.Fatal(err)
		}
	}
	return now, d
}

// thinOracle judges the traces by the policy errors, slow=p99, rare=5,
// sample=10% by brute force: the calls per operation over day d counted
// here, the day's p99s as the service metrics give them (checked against
// the exact ones).
func thinOracle(t *testing.T, traces [][]zipkin.Span, d time.Time, p99 map[[2]string]float64) map[zipkin.TraceID]string {
	t.Helper()
	calls := map[[2]string]int64{}
	byOp := map[[2]string][]zipkin.Span{}
	for _, tr := range traces {
		for _, sp := range tr {
			if sp.Timestamp >= d.Add(24*time.Hour).UnixMicro() {
				continue
			}
			k := [2]string{sp.LocalServiceName(), sp.Name}
			calls[k]++
			byOp[k] = append(byOp[k], sp)
		}
	}
	for k, spans := range byOp {
		exact := exactQuantile(spans, 0.99)
		if got := p99[k]; math.Abs(got-exact) > storage.SketchAccuracy*exact+1e-9 {
			t.Fatalf("%v: p99 %v from the service metrics, %v exactly", k, got, exact)
		}
	}
	out := map[zipkin.TraceID]string{}
	for _, tr := range traces {
		reason := "thinned"
		if tr[0].TraceID.Low%10_000 < 1000 {
			reason = "sampled"
		}
		for _, sp := range tr {
			k := [2]string{sp.LocalServiceName(), sp.Name}
			p, known := p99[k] // an operation only seen past midnight has no figures for the day
			switch {
			case sp.Failed():
				reason = "error"
			case reason == "error":
			case known && float64(sp.Duration) > p:
				reason = "slow"
			case reason == "slow":
			case known && calls[k] < 5:
				reason = "rare"
			}
		}
		out[tr[0].TraceID] = reason
	}
	return out
}

// TestKeepByValue fills a day for two tenants, thins it, and checks that
// what stays is exactly what the policy says (by a brute-force judge),
// every trace is counted once by reason and root service, a thinned trace
// reads as thinned (by policy, on its day) and is no longer found by
// search, its spans indexed past midnight included, the day's partitions
// take fewer bytes, the service metrics and dependency links are those of
// before, and the day still takes late spans.
func TestKeepByValue(t *testing.T) {
	t.Parallel()
	const policy = "errors,slow=p99,rare=5,sample=10%"
	st, dsn := openStore(t, storage.Config{Keep: policy})
	_, d := closedDay(t, st)
	r := rand.New(rand.NewPCG(25, 1))
	byTenant := map[string][][]zipkin.Span{tenant.Default: thinTraces(r, 3000, d), "acme": thinTraces(r, 400, d)}
	for name, traces := range byTenant {
		var all []zipkin.Span
		for _, tr := range traces {
			all = append(all, tr...)
		}
		if err := st.WriteSpans(tenant.With(ctx(t), name), all); err != nil {
			t.Fatal(err)
		}
	}
	for { // the day's dependency links first, as the linker would
		n, err := st.Link(ctx(t), 10_000)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	type before struct {
		links []zipkin.DependencyLink
		stats []storage.StatsSeries
	}
	statsQuery := storage.StatsQuery{Start: d, End: d.Add(48 * time.Hour), Step: 24 * time.Hour, By: storage.ByService | storage.ByName, Quantiles: []float64{0.99}}
	// counted is what ingest counted of a tenant's two days: links and
	// service metrics, which thinning must leave as they are.
	counted := func(c context.Context) ([]zipkin.DependencyLink, []storage.StatsSeries) {
		t.Helper()
		links, err := st.Dependencies(c, d.Add(48*time.Hour), 48*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		stats, err := st.Stats(c, statsQuery)
		if err != nil {
			t.Fatal(err)
		}
		return links, stats
	}
	was := map[string]before{}
	for name := range byTenant {
		c := tenant.With(ctx(t), name)
		links, stats := counted(c)
		if len(links) == 0 || len(stats) == 0 {
			t.Fatalf("%s: %d links, %d series before thinning", name, len(links), len(stats))
		}
		was[name] = before{links, stats}
	}
	partBytes := func() int64 {
		return int64(count(t, dsn, `SELECT (pg_total_relation_size($1::regclass) + pg_total_relation_size($2::regclass) + pg_total_relation_size($3::regclass) + pg_total_relation_size($4::regclass))::int`,
			"segments_p"+d.Format("20060102"), "span_index_p"+d.Format("20060102"), "segment_blocks_p"+d.Format("20060102"), "span_columns_p"+d.Format("20060102")))
	}
	bytesBefore := partBytes()

	// Thin every day due a day after its end: the day before d (empty,
	// made by Maintain) and d.
	var got storage.ThinResult
	for range 3 {
		res, err := st.Thin(ctx(t), d.Add(48*time.Hour+time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if res.Day.IsZero() {
			break
		}
		if res.Day.Equal(d) {
			got = res
		} else if len(res.Counts) != 0 || !res.Day.Before(d) {
			t.Fatalf("thinned %v (%d counts), want only the empty day before %v first", res.Day, len(res.Counts), d)
		}
	}
	if !got.Day.Equal(d) {
		t.Fatalf("day %v not thinned", d)
	}
	if got.BytesAfter >= got.BytesBefore || got.BytesBefore != bytesBefore || partBytes() != got.BytesAfter {
		t.Fatalf("bytes %d → %d (measured %d before, %d after)", got.BytesBefore, got.BytesAfter, bytesBefore, partBytes())
	}
	t.Logf("day's partitions: %d → %d bytes", got.BytesBefore, got.BytesAfter)

	var want []storage.ThinCount
	reasons := map[string]int{}
	for name, traces := range byTenant {
		c := tenant.With(ctx(t), name)
		q := statsQuery
		q.End = d.Add(24 * time.Hour)
		day, err := st.Stats(c, q)
		if err != nil {
			t.Fatal(err)
		}
		p99 := map[[2]string]float64{}
		for _, sr := range day {
			p99[[2]string{sr.Service, sr.Name}] = sr.Total.Quantiles[0]
		}
		judged := thinOracle(t, traces, d, p99)
		counts := map[[2]string]*storage.ThinCount{}
		for _, tr := range traces {
			id := tr[0].TraceID
			reason := judged[id]
			reasons[reason]++
			k := [2]string{tr[0].LocalServiceName(), reason}
			if counts[k] == nil {
				counts[k] = &storage.ThinCount{Tenant: name, Service: k[0], Reason: reason}
			}
			counts[k].Traces++
			counts[k].Spans += int64(len(tr))
			spans, err := oneTrace(st, c, id, true)
			if err != nil {
				t.Fatal(err)
			}
			th, thin, err := st.Thinned(c, id, true)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case reason == "thinned" && (len(spans) != 0 || !thin || !th.Day.Equal(d) || th.Policy != policy):
				t.Fatalf("%s %v: %d spans readable, thinned %v (%+v); want it thinned by %q on %v", name, id, len(spans), thin, th, policy, d)
			case reason != "thinned" && (len(spans) != len(tr) || thin):
				t.Fatalf("%s %v kept (%s): %d of %d spans readable, thinned %v", name, id, reason, len(spans), len(tr), thin)
			}
		}
		for _, c := range counts {
			want = append(want, *c)
		}
		// Search finds only what was kept.
		found, err := st.FindTraces(c, zipkin.QueryRequest{ServiceName: "frontend", EndTs: d.Add(48 * time.Hour), Lookback: 48 * time.Hour, Limit: 100_000}, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range found {
			if judged[tr[0].TraceID] == "thinned" {
				t.Fatalf("search found thinned trace %v", tr[0].TraceID)
			}
		}
		links, stats := counted(c)
		if !slices.Equal(links, was[name].links) || len(stats) != len(was[name].stats) {
			t.Fatalf("%s: links or metrics changed by thinning:\n%v\n%v", name, links, was[name].links)
		}
		for i := range stats {
			if stats[i].Total.Calls != was[name].stats[i].Total.Calls || stats[i].Total.Quantiles[0] != was[name].stats[i].Total.Quantiles[0] {
				t.Fatalf("%s: metrics of %s/%s changed by thinning", name, stats[i].Service, stats[i].Name)
			}
		}
	}
	byKey := func(a, b storage.ThinCount) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Service, b.Service), cmp.Compare(a.Reason, b.Reason))
	}
	slices.SortFunc(want, byKey)
	slices.SortFunc(got.Counts, byKey)
	if !slices.Equal(got.Counts, want) {
		t.Fatalf("counts\n%+v\nwant\n%+v", got.Counts, want)
	}
	for _, reason := range []string{"error", "slow", "rare", "sampled", "thinned"} {
		if reasons[reason] == 0 {
			t.Fatalf("no trace %s: the data set does not test the policy (%v)", reason, reasons)
		}
	}
	if n := count(t, dsn, `SELECT sum(traces)::int FROM thin_counts WHERE day = $1`, d); n != 3400 {
		t.Fatalf("thin_counts holds %d traces, want 3400", n)
	}
	if n := count(t, dsn, `SELECT count(*) FROM span_index s JOIN thinned_traces t USING (trace_id_low, trace_id_high, tenant)`); n != 0 {
		t.Fatalf("%d index rows of thinned traces left", n)
	}
	// The rewritten partition is attached as the one it replaced was, and
	// takes late spans.
	late := thinTraces(r, 1, d)[0]
	if err := st.WriteSpans(ctx(t), late); err != nil {
		t.Fatal(err)
	}
	if spans, err := oneTrace(st, ctx(t), late[0].TraceID, true); err != nil || len(spans) != len(late) {
		t.Fatalf("late trace: %d spans read, %v", len(spans), err)
	}
}

func TestThinPolicy(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "errors,slow=p99,rare=100,sample=10%", want: "errors,slow=p99,rare=100,sample=10%"},
		{in: " errors , sample=0.25", want: "errors,sample=25%"},
		{in: "slow=0.999", want: "slow=p99.9,sample=0%"},
		{in: "", want: ""},
		{in: "errors,errors", err: `"errors" given twice`},
		{in: "slow=p100", err: "want a quantile"},
		{in: "rare=0", err: "at least 1"},
		{in: "sample=120%", err: "between 0% and 100%"},
		{in: "keep=all", err: "unknown clause"},
		{in: "errors=yes", err: "takes no value"},
	} {
		p, on, err := storage.ParseThinPolicy(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case tc.err == "" && on != (tc.want != ""):
			t.Errorf("%q: on %v", tc.in, on)
		case tc.err == "" && on && p.String() != tc.want:
			t.Errorf("%q: %q, want %q", tc.in, p.String(), tc.want)
		}
	}
	bad := storage.Config{URL: "postgres://x", Keep: "errors", KeepAfter: 6 * 24 * time.Hour, Retention: 7 * 24 * time.Hour,
		MaxConns: 1, PartitionsAhead: 1, LinkInterval: time.Second, StatsRetention: 30 * 24 * time.Hour}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "keep after") {
		t.Fatalf("KeepAfter a day short of the retention: %v", err)
	}
}

// FuzzThinPolicy: whatever ZIPQ_KEEP parses to prints as a policy that
// parses to the same thing.
func FuzzThinPolicy(f *testing.F) {
	for _, s := range []string{"errors,slow=p99,rare=100,sample=10%", "sample=0.3333", "slow=p99.99", "rare=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, on, err := storage.ParseThinPolicy(s)
		if err != nil || !on {
			return
		}
		q, on, err := storage.ParseThinPolicy(p.String())
		if err != nil || !on || q.String() != p.String() || q.Errors != p.Errors || q.Rare != p.Rare ||
			math.Abs(q.Slower-p.Slower) > 1e-12 || math.Abs(q.Sample-p.Sample) > 1e-12 {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, p, p.String(), q, err)
		}
	})
}
