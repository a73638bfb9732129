package query_test

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zipq/zipq/ingest"
	"github.com/zipq/zipq/query"
	"github.com/zipq/zipq/traceql"
	"github.com/zipq/zipq/zipkin"
)

type tempoMetricsAnswer struct {
	Series []struct {
		Labels []struct {
			Key   string
			Value struct {
				StringValue string
				DoubleValue float64
			}
		}
		Samples []struct {
			TimestampMs string
			Value       float64
		}
		Exemplars []struct {
			Labels []struct {
				Key   string
				Value struct{ StringValue string }
			}
			TimestampMs string
		}
		Value *float64
	}
}

// metricsSpans are traces over the last half hour: four services, four
// names, every kind, a region tag, ~5 % failed, durations from 1 µs to
// ~1 s.
func metricsSpans(r *rand.Rand, now time.Time) []zipkin.Span {
	services := []string{"web", "cart", "pay", "ship"}
	names := []string{"get", "put", "charge", "send"}
	var out []zipkin.Span
	for range 400 {
		id := zipkin.TraceID{High: r.Uint64(), Low: r.Uint64()}
		start := now.Add(-time.Duration(r.Int64N(int64(30 * time.Minute))))
		parent := zipkin.SpanID(0)
		for s := range 1 + r.IntN(5) {
			sp := zipkin.Span{TraceID: id, ID: zipkin.SpanID(r.Uint64() | 1), ParentID: parent, Name: names[r.IntN(4)],
				Kind:          zipkin.Kind(r.IntN(5)),
				Timestamp:     start.Add(time.Duration(s) * time.Millisecond).UnixMicro(),
				Duration:      1 + int64(math.Exp(r.Float64()*14)),
				LocalEndpoint: &zipkin.Endpoint{ServiceName: services[r.IntN(4)]}}
			sp.Tags = map[string]string{"region": []string{"eu", "us"}[r.IntN(2)]}
			if r.IntN(20) == 0 {
				sp.Tags["error"] = "x"
			}
			parent = sp.ID
			out = append(out, sp)
		}
	}
	return out
}

// oracle answers a metrics query by brute force: the TraceQL search
// evaluator over every stored trace, its matched spans bucketed by start
// time and grouped by the by() fields' values.
func oracle(t *testing.T, spans []zipkin.Span, q string, start time.Time, step time.Duration) map[string]map[int64][]int64 {
	t.Helper()
	m, err := traceql.ParseMetrics(q)
	if err != nil {
		t.Fatal(err)
	}
	search := traceql.New(m.Search)
	byTrace := map[zipkin.TraceID][]zipkin.Span{}
	for _, sp := range spans {
		byTrace[sp.TraceID] = append(byTrace[sp.TraceID], sp)
	}
	out := map[string]map[int64][]int64{} // group → bucket → durations (µs)
	for _, ts := range byTrace {
		tr, err := ingest.TraceQLModel{}.Trace(ts)
		if err != nil {
			t.Fatal(err)
		}
		for _, set := range search.Run(tr) {
			for _, sp := range set.Spans {
				if sp.Start < start.UnixNano() {
					continue
				}
				var key []string
				for _, f := range m.By {
					key = append(key, search.Eval(f, tr, sp).String())
				}
				k := strings.Join(key, ",")
				if out[k] == nil {
					out[k] = map[int64][]int64{}
				}
				b := (sp.Start - start.UnixNano()) / step.Nanoseconds()
				out[k][b] = append(out[k][b], (sp.End-sp.Start)/1000)
			}
		}
	}
	return out
}

// TestTempoMetricsAgainstBruteForce: query_range over the service
// metrics agrees with the search evaluator run over every span: counts and
// rates exact, quantiles within the sketches' accuracy, one series per
// group and quantile.
func TestTempoMetricsAgainstBruteForce(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	e.h = query.NewRouter(query.Options{Reader: e.st, Stats: e.st, Finder: e.st, Tempo: ingest.TraceQLModel{}})
	now := time.Now()
	spans := metricsSpans(rand.New(rand.NewPCG(7, 8)), now)
	if err := e.st.WriteSpans(t.Context(), spans); err != nil {
		t.Fatal(err)
	}
	step := 5 * time.Minute
	start := now.Add(-40 * time.Minute).Truncate(step)
	for _, q := range []string{
		`{} | count_over_time()`,
		`{ true } | rate() with(sample=true)`,
		`{ resource.service.name = "web" } | rate()`,
		`{ status = error } | count_over_time() by (resource.service.name)`,
		`{ kind = server && name = "get" } | count_over_time() by (resource.service.name, name)`,
		`{ resource.service.name != nil } | quantile_over_time(duration, .5, .9, .99) by (resource.service.name)`,
		`{ name = "charge" } | avg_over_time(duration) by (kind)`,
		`{ resource.service.name = "cart" } | max_over_time(duration)`,
		`{ resource.service.name = "cart" && resource.service.name = "web" } | count_over_time()`,
		// Answered by scanning the spans: the service metrics do not have these.
		`{ span.region = "eu" } | count_over_time() by (resource.service.name)`,
		`{ resource.service.name = "web" } >> { status = error } | rate()`,
		`{ duration > 10ms } | min_over_time(duration) by (name)`,
		`{ status = error } | quantile_over_time(duration, .5, .9)`,
		`{ } | sum_over_time(duration) by (span.region, kind)`,
		`{ kind = client } | max_over_time(duration) by (span.region)`,
		`{nestedSetParent<0 && true} | rate() by (resource.service.name)`, // Traces Drilldown's root spans
	} {
		t.Run(q, func(t *testing.T) {
			m, _ := traceql.ParseMetrics(q)
			want := oracle(t, spans, q, start, step)
			target := "/api/metrics/query_range?" + url.Values{"q": {q}, "start": {strconv.FormatInt(start.Unix(), 10)},
				"end": {strconv.FormatInt(now.Add(time.Minute).Unix(), 10)}, "step": {step.String()}}.Encode()
			rec := e.get(t, target)
			if rec.Code != 200 {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
			got := decodeJSON[tempoMetricsAnswer](t, rec)
			qs := max(1, len(m.Quantiles))
			if len(got.Series) != len(want)*qs {
				t.Fatalf("%d series, want %d × %d: %s", len(got.Series), len(want), qs, rec.Body)
			}
			for _, s := range got.Series {
				var key []string
				qi := 0
				for _, l := range s.Labels {
					switch l.Key {
					case "__name__":
					case "p":
						qi = slices.Index(m.Quantiles, l.Value.DoubleValue)
					default:
						key = append(key, l.Value.StringValue)
					}
				}
				buckets := want[strings.Join(key, ",")]
				if len(s.Samples) != len(buckets) {
					t.Fatalf("series %v: %d samples, want %d", key, len(s.Samples), len(buckets))
				}
				for _, smp := range s.Samples {
					ms, _ := strconv.ParseInt(smp.TimestampMs, 10, 64)
					d := buckets[(ms*1e6-start.UnixNano())/step.Nanoseconds()]
					slices.Sort(d)
					var sum int64
					for _, v := range d {
						sum += v
					}
					exact := map[string]float64{
						"count_over_time": float64(len(d)), "rate": float64(len(d)) / step.Seconds(),
						"avg_over_time": float64(sum) / float64(len(d)) / 1e6, "max_over_time": float64(d[len(d)-1]) / 1e6,
						"min_over_time": float64(d[0]) / 1e6, "sum_over_time": float64(sum) / 1e6,
					}[m.Func]
					tolerance := 1e-9
					if m.Func == "quantile_over_time" {
						exact = float64(d[int(m.Quantiles[qi]*float64(len(d)-1))]) / 1e6
						tolerance = 0.01 * exact
					}
					if math.Abs(smp.Value-exact) > tolerance {
						t.Fatalf("series %v at %s: %v, exact %v", key, time.UnixMilli(ms), smp.Value, exact)
					}
				}
				if len(s.Samples) > 0 && len(s.Exemplars) == 0 && (m.Func != "quantile_over_time" || qi == len(m.Quantiles)-1) {
					t.Fatalf("series %v: no exemplars", key)
				}
			}
		})
	}
}

// TestTempoMetricsRefusals: what the service metrics cannot answer, and
// what is not TraceQL, is a 400 saying what and where.
func TestTempoMetricsRefusals(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	e.h = query.NewRouter(query.Options{Reader: e.st, Stats: e.st, Finder: e.st, Tempo: ingest.TraceQLModel{}})
	for _, c := range []struct{ q, params, says string }{
		{`{} | rate() | topk(5)`, "", "unsupported: a second stage"},
		{`{} | compare({status = error})`, "", "unsupported: compare()"},
		{`{ name = "x" }`, "", "a metrics query is a search"},
		{`{} | quantile_over_time(duration, 1.5)`, "", "at column 35"},
		{`{} | rate(`, "", "invalid TraceQL"},
		{`{} | rate()`, "&step=soon", "step"},
		{`{} | rate()`, "&start=yesterday", "start"},
		{`{} | rate()`, "&start=2000&end=1000", "before end"},
	} {
		rec := e.get(t, "/api/metrics/query_range?q="+url.QueryEscape(c.q)+c.params)
		if rec.Code != 400 || !strings.Contains(rec.Body.String(), c.says) {
			t.Errorf("%s%s: %d %s; want 400 with %q", c.q, c.params, rec.Code, rec.Body, c.says)
		}
	}
	// The instant query: one value per series.
	now := time.Now()
	spans := metricsSpans(rand.New(rand.NewPCG(9, 10)), now)
	if err := e.st.WriteSpans(t.Context(), spans); err != nil {
		t.Fatal(err)
	}
	got := decodeJSON[tempoMetricsAnswer](t, e.get(t, "/api/metrics/query?q="+url.QueryEscape(`{} | count_over_time()`)+
		fmt.Sprintf("&start=%d&end=%d", now.Add(-time.Hour).Unix(), now.Add(time.Minute).Unix())))
	if len(got.Series) != 1 || got.Series[0].Value == nil || *got.Series[0].Value != float64(len(spans)) {
		t.Fatalf("instant count %+v, want %d", got.Series, len(spans))
	}
}

// TestTempoMetricsScan: a scanned query's histogram puts every span in
// one power-of-two bucket, and a window holding more traces than the scan
// may read is a 400 saying what to narrow, not a partial answer.
func TestTempoMetricsScan(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	opts := query.Options{Reader: e.st, Stats: e.st, Finder: e.st, Tempo: ingest.TraceQLModel{}}
	opts.MetricsScanTraces = 50
	e.h = query.NewRouter(opts)
	now := time.Now()
	spans := metricsSpans(rand.New(rand.NewPCG(11, 12)), now)
	if err := e.st.WriteSpans(t.Context(), spans); err != nil {
		t.Fatal(err)
	}
	window := fmt.Sprintf("&start=%d&end=%d", now.Add(-time.Hour).Unix(), now.Add(time.Minute).Unix())

	// 400 traces in the window, 50 may be scanned; the aggregates still answer.
	rec := e.get(t, "/api/metrics/query?q="+url.QueryEscape(`{ span.region = "eu" } | count_over_time()`)+window)
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "more than 50 traces (or 2500 matching spans): narrow start/end or the filter") {
		t.Fatalf("scan past the limit: %d %s", rec.Code, rec.Body)
	}
	if rec := e.get(t, "/api/metrics/query?q="+url.QueryEscape(`{ } | count_over_time()`)+window); rec.Code != 200 {
		t.Fatalf("from the aggregates: %d %s", rec.Code, rec.Body)
	}

	// A narrow window scans few traces: the histogram of the spans in it.
	from := now.Add(-3 * time.Minute)
	var inWindow []int64
	for _, sp := range spans {
		if sp.Timestamp >= from.UnixMicro() && sp.Timestamp < now.Add(time.Minute).UnixMicro() {
			inWindow = append(inWindow, sp.Duration)
		}
	}
	got := decodeJSON[tempoMetricsAnswer](t, e.get(t, "/api/metrics/query?q="+url.QueryEscape(`{ } | histogram_over_time(duration)`)+
		fmt.Sprintf("&start=%d&end=%d", from.Unix(), now.Add(time.Minute).Unix())))
	want := map[float64]float64{}
	for _, us := range inWindow {
		want[math.Pow(2, math.Ceil(math.Log2(float64(us)/1e6)))]++
	}
	have := map[float64]float64{}
	for _, s := range got.Series {
		if len(s.Labels) != 1 || s.Labels[0].Key != "__bucket" || s.Value == nil {
			t.Fatalf("series %+v", s)
		}
		have[s.Labels[0].Value.DoubleValue] = *s.Value
	}
	if len(inWindow) == 0 || !maps.Equal(have, want) {
		t.Fatalf("histogram %v, want %v (%d spans)", have, want, len(inWindow))
	}
}
