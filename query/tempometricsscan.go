package query

// TraceQL metrics that the service metrics cannot answer — a filter on
// any other field, a structural or multi-stage search, by() any field,
// min_over_time, histogram_over_time, functions of fields other than
// duration — are answered by scanning the stored traces of the window
// with the search evaluator, as Tempo does: exact, but bounded by
// Config.MetricsScanTraces, past which the query is refused with what to
// narrow rather than answered from part of the window.

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zipq/zipq/traceql"
	"github.com/zipq/zipq/zipkin"
)

// scanChunk is how many traces the scan reads from storage at a time.
const scanChunk = 100

// scanSpansPerTrace bounds the matched spans a scan counts, per trace it
// may read: the values a quantile needs are kept, so a few huge traces
// must not hold what 20,000 ordinary ones would not.
const scanSpansPerTrace = 50

// scanSeries is one series of a scanned metrics query: a group of by()
// values (and, for histogram_over_time, a duration bucket).
type scanSeries struct {
	labels  []tempoKeyValue
	key     string
	buckets map[int64]*scanBucket // by step index from the start
}

type scanBucket struct {
	values []float64 // the field's values (durations in seconds); counts only for rate and count_over_time
	n      int
	// the slowest span of the bucket, as the exemplar
	exTrace, exSpan string
	exAt, exDur     int64 // ns
}

// scanMetrics answers m over [start, end) in steps of step (one bucket
// when instant) from the spans the search part of m matches.
func (t *tempoAPI) scanMetrics(ctx context.Context, m *traceql.Metrics, start, end time.Time, step time.Duration, instant bool) ([]tempoMetricsSeries, int, error) {
	q := traceql.New(m.Search)
	groups := map[string]*scanSeries{}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	inspected, counted, tooLarge := 0, 0, false
	from, to := start.UnixNano(), end.UnixNano()
	_, err := t.walk(ctx, hinted(q, start, end, scanChunk), q.Prefilter(), func(tr *traceql.Trace, _ []zipkin.Span) bool {
		if inspected++; inspected > t.a.o.MetricsScanTraces {
			tooLarge = true
			cancel()
			return false
		}
		for _, set := range q.Run(tr) {
			for _, sp := range set.Spans {
				if sp.Start < from || sp.Start >= to {
					continue
				}
				v := 1.0
				if m.Of != nil {
					val := q.Eval(m.Of, tr, sp)
					f, ok := val.Number()
					if !ok {
						continue // the span has no such number: not counted, as in Tempo
					}
					if val.Type() == traceql.TypeDuration {
						f /= 1e9 // seconds, as Tempo answers durations
					}
					v = f
				}
				g := scanGroup(groups, q, m, tr, sp, v)
				idx := int64(0)
				if !instant {
					idx = (sp.Start - from) / step.Nanoseconds()
				}
				if counted++; counted > scanSpansPerTrace*t.a.o.MetricsScanTraces {
					tooLarge = true // the values kept for quantiles are bounded too
					cancel()
					return false
				}
				b := g.buckets[idx]
				if b == nil {
					b = &scanBucket{}
					g.buckets[idx] = b
				}
				b.n++
				if m.Of != nil && m.Func != "histogram_over_time" {
					b.values = append(b.values, v)
				}
				if d := sp.End - sp.Start; b.exTrace == "" || d > b.exDur {
					b.exTrace, b.exSpan, b.exAt, b.exDur = traceIDOf(tr.ID), sp.ID, sp.Start, d
				}
			}
		}
		return false // nothing kept: the buckets hold what the answer needs
	})
	switch {
	case tooLarge:
		return nil, inspected - 1, badf("q: this query needs a scan of the stored spans (only filters on resource.service.name, name, kind and status = error, "+
			"grouped by those, are answered from the service metrics), and the window holds more than %d traces (or %d matching spans): narrow start/end or the filter",
			t.a.o.MetricsScanTraces, scanSpansPerTrace*t.a.o.MetricsScanTraces)
	case err != nil:
		return nil, inspected, err
	}
	return scanSeriesOut(groups, m, start, step, instant), inspected, nil
}

// scanGroup is the series a span counts in: its by() values and, for
// histogram_over_time, the power-of-two bucket (seconds) its value is in.
func scanGroup(groups map[string]*scanSeries, q *traceql.Query, m *traceql.Metrics, tr *traceql.Trace, sp *traceql.Span, v float64) *scanSeries {
	var labels []tempoKeyValue
	var key strings.Builder
	for _, f := range m.By {
		val := q.Eval(f, tr, sp)
		fmt.Fprintf(&key, "%d:%s\x00", val.Type(), val.String())
		if val.Type() != traceql.TypeNil { // a span without the field: the label is absent
			labels = append(labels, tempoKeyValue{Key: traceql.FieldName(f), Value: anyValue(val)})
		}
	}
	if m.Func == "histogram_over_time" {
		b := math.Pow(2, math.Ceil(math.Log2(v)))
		if v <= 0 {
			b = 0
		}
		fmt.Fprintf(&key, "%020.9f", b)
		labels = append(labels, tempoKeyValue{Key: "__bucket", Value: map[string]any{"doubleValue": b}})
	}
	k := key.String()
	g := groups[k]
	if g == nil {
		if len(m.By) == 0 && m.Func != "histogram_over_time" {
			labels = []tempoKeyValue{{Key: "__name__", Value: map[string]any{"stringValue": m.Func}}}
		}
		g = &scanSeries{labels: labels, key: k, buckets: map[int64]*scanBucket{}}
		groups[k] = g
	}
	return g
}

// scanSeriesOut renders the groups as Tempo's series, one per group (and
// quantile), buckets in time order.
func scanSeriesOut(groups map[string]*scanSeries, m *traceql.Metrics, start time.Time, step time.Duration, instant bool) []tempoMetricsSeries {
	qs := m.Quantiles
	if m.Func != "quantile_over_time" {
		qs = []float64{math.NaN()}
	}
	out := []tempoMetricsSeries{}
	for _, g := range groups {
		idxs := make([]int64, 0, len(g.buckets))
		for i := range g.buckets {
			idxs = append(idxs, i)
		}
		slices.Sort(idxs)
		for qi, quant := range qs {
			s := tempoMetricsSeries{Labels: g.labels, key: g.key}
			if !math.IsNaN(quant) {
				l, k := quantileLabel(quant)
				s.Labels, s.key = append(slices.Clone(g.labels), l), s.key+k
			}
			for _, i := range idxs {
				b := g.buckets[i]
				v := scanValue(m.Func, b, quant, step)
				if instant {
					s.Value = &v
					continue
				}
				at := start.Add(time.Duration(i) * step).UnixMilli()
				s.Samples = append(s.Samples, tempoSample{TimestampMs: strconv.FormatInt(at, 10), Value: v})
				if qi == len(qs)-1 {
					s.Exemplars = append(s.Exemplars, newExemplar(m.Func, v, b.exTrace, b.exSpan, float64(b.exDur)/1e9, b.exAt/1e6))
				}
			}
			out = append(out, s)
		}
	}
	slices.SortStableFunc(out, func(a, b tempoMetricsSeries) int { return cmp.Compare(a.key, b.key) })
	return out
}

// scanValue is a bucket's value for fn: the same definitions as the
// aggregates' (metricsPlan.value), computed exactly; a quantile is the
// value at rank ⌊q·(n−1)⌋ of the sorted values.
func scanValue(fn string, b *scanBucket, q float64, step time.Duration) float64 {
	switch fn {
	case "rate":
		return float64(b.n) / step.Seconds()
	case "count_over_time", "histogram_over_time":
		return float64(b.n)
	}
	vs := b.values
	switch fn {
	case "min_over_time":
		return slices.Min(vs)
	case "max_over_time":
		return slices.Max(vs)
	case "sum_over_time", "avg_over_time":
		sum := 0.0
		for _, v := range vs {
			sum += v
		}
		if fn == "avg_over_time" {
			return sum / float64(len(vs))
		}
		return sum
	case "quantile_over_time":
		slices.Sort(vs)
		return vs[int(q*float64(len(vs)-1))]
	}
	return math.NaN()
}
