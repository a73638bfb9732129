package query

// TraceQL metrics on Tempo's paths (/api/metrics/query_range and
// /api/metrics/query), answered from the service metrics computed at
// ingest (storage.Store.Stats) when the filter selects only the local
// service, the span name, the kind and status = error and groups by the
// first three; any other query by scanning the window's spans
// (tempometricsscan.go).

import (
	"cmp"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zipq/zipq/storage"
	"github.com/zipq/zipq/traceql"
	"github.com/zipq/zipq/zipkin"
)

// TempoMetricsDefaultPoints is how many steps a query_range without step
// is cut into (and a step is never under the metrics' minute).
const TempoMetricsDefaultPoints = 100

// metricsPlan is a TraceQL metrics query as a read of the service
// metrics: which cells, which groups, and what to compute per bucket.
type metricsPlan struct {
	q          storage.StatsQuery
	errorsOnly bool     // status = error: count the failed calls
	none       bool     // contradictory equalities: nothing can match
	fn         string   // the metrics function
	by         []string // the label of each group field, in by()'s order
	byFields   []storage.StatsBy
}

// unsupportedMetrics says why the service metrics cannot answer a query
// (which is then answered by a scan).
func unsupportedMetrics(format string, args ...any) error {
	return badf("q: unsupported: "+format, args...)
}

// planMetrics maps a metrics query onto the service metrics, or says
// what of it they cannot answer.
func planMetrics(m *traceql.Metrics) (*metricsPlan, error) {
	p := &metricsPlan{fn: m.Func}
	if len(m.Search.Elements) != 1 {
		return nil, unsupportedMetrics("a search pipeline of more than one spanset filter")
	}
	f, ok := m.Search.Elements[0].(*traceql.Filter)
	if !ok {
		return nil, unsupportedMetrics("%s before a metrics function", m.Search)
	}
	if f.Expr != nil {
		if err := p.filter(f.Expr); err != nil {
			return nil, err
		}
	}
	for _, b := range m.By {
		label, by, ok := groupField(b)
		if !ok {
			return nil, unsupportedMetrics("by(%s)", traceql.FieldString(b))
		}
		p.by, p.byFields = append(p.by, label), append(p.byFields, by)
		p.q.By |= by
	}
	switch m.Func {
	case "rate", "count_over_time":
	case "quantile_over_time", "avg_over_time", "sum_over_time", "max_over_time":
		if in, ok := m.Of.(*traceql.Intrinsic); !ok || in.Name != "span:duration" {
			return nil, unsupportedMetrics("%s of a field other than duration", m.Func)
		}
		if p.errorsOnly {
			return nil, unsupportedMetrics("%s with status = error (the latency sketches hold every call)", m.Func)
		}
		p.q.Quantiles = m.Quantiles
	default:
		return nil, unsupportedMetrics("%s()", m.Func)
	}
	return p, nil
}

// groupField is a by() field the service metrics are kept by.
func groupField(f traceql.Field) (label string, by storage.StatsBy, ok bool) {
	switch f := f.(type) {
	case *traceql.Attribute:
		if f.Scope == "resource" && f.Name == "service.name" {
			return "resource.service.name", storage.ByService, true
		}
	case *traceql.Intrinsic:
		switch f.Name {
		case "span:name":
			return "name", storage.ByName, true
		case "span:kind":
			return "kind", storage.ByKind, true
		}
	}
	return "", 0, false
}

// filter reads a spanset filter's conditions, joined by &&.
func (p *metricsPlan) filter(e traceql.Field) error {
	b, ok := e.(*traceql.Binary)
	if s, isStatic := e.(*traceql.Static); isStatic && s.Type == traceql.TypeBool && s.B {
		return nil // true, as Grafana's Traces Drilldown writes an empty filter
	}
	if !ok {
		return unsupportedMetrics("the condition %s", traceql.FieldString(e))
	}
	if b.Op == "&&" {
		return cmp.Or(p.filter(b.L), p.filter(b.R))
	}
	s, _ := b.R.(*traceql.Static)
	if s == nil {
		return unsupportedMetrics("the condition %s", traceql.FieldString(e))
	}
	label, _, _ := groupField(b.L)
	switch {
	case label != "" && b.Op == "!=" && s.Type == traceql.TypeNil:
		return nil // every counted span has its service, name and kind
	case label == "resource.service.name" && b.Op == "=" && s.Type == traceql.TypeString:
		return p.set(&p.q.Service, s.S, e)
	case label == "name" && b.Op == "=" && s.Type == traceql.TypeString:
		return p.set(&p.q.Name, s.S, e)
	case label == "kind" && b.Op == "=" && s.Type == traceql.TypeKind:
		// TraceQL's kinds are /api/zipq/stats' in lower case; internal is
		// not one: Zipkin has no such kind, its local spans are unspecified.
		k, ok := statsKinds[strings.ToUpper(s.S)]
		if !ok {
			return unsupportedMetrics("kind = %s", s.S)
		}
		p.none = p.none || len(p.q.Kinds) > 0 && p.q.Kinds[0] != k
		p.q.Kinds = []zipkin.Kind{k}
		return nil
	}
	if in, ok := b.L.(*traceql.Intrinsic); ok && in.Name == "span:status" && b.Op == "=" && s.Type == traceql.TypeStatus && s.S == "error" {
		p.errorsOnly = true
		return nil
	}
	return unsupportedMetrics("the condition %s", traceql.FieldString(e))
}

// set applies an equality; two different values select nothing.
func (p *metricsPlan) set(dst *string, v string, e traceql.Field) error {
	if v == "" {
		return unsupportedMetrics("the condition %s (an empty value)", traceql.FieldString(e))
	}
	p.none = p.none || *dst != "" && *dst != v
	*dst = v
	return nil
}

// tempoMetricsSeries is one series of Tempo's QueryRangeResponse (proto
// JSON: 64-bit integers as strings).
type tempoMetricsSeries struct {
	Labels    []tempoKeyValue `json:"labels"`
	Samples   []tempoSample   `json:"samples,omitempty"`
	Exemplars []tempoExemplar `json:"exemplars,omitempty"`
	Value     *float64        `json:"value,omitempty"` // instant queries
	key       string
}

type tempoSample struct {
	TimestampMs string  `json:"timestampMs"`
	Value       float64 `json:"value"`
}

type tempoExemplar struct {
	Labels      []tempoKeyValue `json:"labels"`
	Value       float64         `json:"value"`
	TimestampMs string          `json:"timestampMs"`
}

// metricsWindow reads start, end (unix seconds, or nanoseconds when longer
// than 10 digits; RFC 3339 too) and step (seconds or a Go duration).
func metricsWindow(r *http.Request) (start, end time.Time, step time.Duration, err error) {
	v := r.URL.Query()
	end = time.Now()
	if s := v.Get("end"); s != "" {
		if end, err = metricsTime("end", s); err != nil {
			return
		}
	}
	start = end.Add(-time.Hour)
	if s := v.Get("since"); s != "" {
		d, perr := time.ParseDuration(s)
		if perr != nil || d <= 0 {
			return start, end, 0, badf("since %q: want a positive duration such as 1h", truncate(s))
		}
		start = end.Add(-d)
	}
	if s := v.Get("start"); s != "" {
		if start, err = metricsTime("start", s); err != nil {
			return
		}
	}
	if !start.Before(end) {
		return start, end, 0, badf("start %d must be before end %d", start.Unix(), end.Unix())
	}
	step = end.Sub(start) / TempoMetricsDefaultPoints
	if s := v.Get("step"); s != "" {
		d, perr := time.ParseDuration(s)
		if perr != nil {
			f, ferr := strconv.ParseFloat(s, 64)
			if ferr != nil || !(f > 0) || f > math.MaxInt64/1e9 {
				return start, end, 0, badf("step %q: want seconds or a duration such as 30s", truncate(s))
			}
			d = time.Duration(f * 1e9)
		}
		if d <= 0 {
			return start, end, 0, badf("step %q: want a positive duration", truncate(s))
		}
		step = d
	}
	step = statsStep(start, step)
	if n := end.Sub(start) / step; n > maxStatsPoints {
		return start, end, 0, badf("(end-start)/step is %d steps: at most %d", n, maxStatsPoints)
	}
	return start, end, step, nil
}

func metricsTime(name, s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
		if len(s) > 10 {
			return time.Unix(0, n), nil
		}
		return time.Unix(n, 0), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 && f < 1e11 {
		return time.Unix(0, int64(f*1e9)), nil
	}
	return time.Time{}, badf("%s %q: want unix seconds, nanoseconds or RFC 3339", name, truncate(s))
}

// metrics serves query_range (instant false) and query (instant: one
// value per series over the whole range).
func (t *tempoAPI) metrics(instant bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		m, err := traceql.ParseMetrics(r.URL.Query().Get("q"))
		if err != nil {
			t.a.fail(w, r, badf("q: %v", err))
			return
		}
		start, end, step, err := metricsWindow(r)
		if err != nil {
			t.a.fail(w, r, err)
			return
		}
		// Buckets aligned to the step, as Tempo's; an instant query is one
		// bucket of the whole range.
		from := start.Truncate(step)
		if instant {
			from, step = start, end.Sub(start)
		}
		p, err := planMetrics(m)
		if err != nil { // not the service metrics' to answer: scan the spans
			out, inspected, err := t.scanMetrics(r.Context(), m, from, end, step, instant)
			if err != nil {
				t.a.fail(w, r, err)
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"series": out, "metrics": map[string]any{"inspectedTraces": inspected}})
			return
		}
		p.q.Start, p.q.End, p.q.Step = from, end, step
		var out []tempoMetricsSeries
		if p.none {
			out = p.series(nil, instant)
		} else if err := t.stats.ReadStats(r.Context(), p.q, func(series []storage.StatsSeries) error {
			out = p.series(series, instant) // copies the points it keeps
			return nil
		}); err != nil {
			t.a.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"series": out, "metrics": map[string]any{}})
	}
}

// series renders the groups as Tempo's series: one per group, or per
// group and quantile (label p).
func (p *metricsPlan) series(groups []storage.StatsSeries, instant bool) []tempoMetricsSeries {
	out := []tempoMetricsSeries{}
	qs := p.q.Quantiles
	if len(qs) == 0 {
		qs = []float64{math.NaN()} // one series per group
	}
	for _, g := range groups {
		for qi, q := range qs {
			labels, key := p.labels(g, q)
			s := tempoMetricsSeries{Labels: labels, key: key}
			points := g.Points
			if instant {
				points = []storage.StatsPoint{g.Total}
			}
			for _, pt := range points {
				v, ok := p.value(pt, qi)
				if !ok {
					continue
				}
				if instant {
					s.Value = &v
					continue
				}
				s.Samples = append(s.Samples, tempoSample{TimestampMs: strconv.FormatInt(pt.Time.UnixMilli(), 10), Value: v})
				// The slowest span of the bucket, or the slowest failed one
				// when counting errors; on the highest quantile only.
				e := pt.Slowest
				if p.errorsOnly {
					e = pt.Failed
				}
				if e != nil && qi == len(qs)-1 {
					s.Exemplars = append(s.Exemplars, newExemplar(p.fn, v, e.TraceID.String(), e.SpanID.String(),
						float64(e.DurationMic)/1e6, e.Time.UnixMilli()))
				}
			}
			if s.Samples == nil && s.Value == nil {
				continue
			}
			out = append(out, s)
		}
	}
	slices.SortStableFunc(out, func(a, b tempoMetricsSeries) int { return cmp.Compare(a.key, b.key) })
	return out
}

// newExemplar is a span as Tempo gives it beside a sample: its trace and
// span IDs, its start, and as value its duration (s) for functions of a
// field, the sample's value for counts and rates.
func newExemplar(fn string, sample float64, traceID, spanID string, seconds float64, startMs int64) tempoExemplar {
	v := seconds
	if fn == "rate" || fn == "count_over_time" {
		v = sample
	}
	return tempoExemplar{
		Labels: []tempoKeyValue{{Key: "trace:id", Value: map[string]any{"stringValue": traceID}},
			{Key: "span:id", Value: map[string]any{"stringValue": spanID}}},
		Value: v, TimestampMs: strconv.FormatInt(startMs, 10)}
}

// quantileLabel is the p label of a quantile's series and its sort key.
func quantileLabel(q float64) (tempoKeyValue, string) {
	return tempoKeyValue{Key: "p", Value: map[string]any{"doubleValue": q}}, fmt.Sprintf("%020.6f", q)
}

func (p *metricsPlan) labels(g storage.StatsSeries, q float64) ([]tempoKeyValue, string) {
	var labels []tempoKeyValue
	var key strings.Builder
	for i, name := range p.by {
		var v string
		switch p.byFields[i] {
		case storage.ByService:
			v = g.Service
		case storage.ByName:
			v = g.Name
		case storage.ByKind:
			v = strings.ToLower(kindName(g.Kind))
		}
		labels = append(labels, tempoKeyValue{Key: name, Value: map[string]any{"stringValue": v}})
		fmt.Fprintf(&key, "%s\x00", v)
	}
	if len(labels) == 0 {
		labels = append(labels, tempoKeyValue{Key: "__name__", Value: map[string]any{"stringValue": p.fn}})
	}
	if !math.IsNaN(q) {
		l, k := quantileLabel(q)
		labels = append(labels, l)
		key.WriteString(k)
	}
	return labels, key.String()
}

// value is a bucket's value for the query's function; false when the
// bucket has none (no calls, or no failed call when counting errors).
func (p *metricsPlan) value(pt storage.StatsPoint, qi int) (float64, bool) {
	n := pt.Calls
	if p.errorsOnly {
		n = pt.Errors
	}
	if n == 0 {
		return 0, false
	}
	switch p.fn {
	case "rate":
		return float64(n) / p.q.Step.Seconds(), true
	case "count_over_time":
		return float64(n), true
	case "quantile_over_time":
		if qi >= len(pt.Quantiles) {
			return 0, false
		}
		return pt.Quantiles[qi] / 1e6, true
	case "avg_over_time":
		return float64(pt.DurationSumMic) / float64(n) / 1e6, true
	case "sum_over_time":
		return float64(pt.DurationSumMic) / 1e6, true
	case "max_over_time":
		if pt.Slowest == nil {
			return 0, false
		}
		return float64(pt.Slowest.DurationMic) / 1e6, true
	}
	return 0, false
}
