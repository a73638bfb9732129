package query

// Service health: rates, error ratios, latency quantiles and exemplars
// per service, operation or edge, from the metrics the collectors compute
// at ingest (storage.Store.Stats), at /api/zipq/stats.

import (
	"cmp"
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/zipq/zipq/storage"
	"github.com/zipq/zipq/zipkin"
)

// StatsReader reads the service metrics (storage.Store.Stats). The query
// and series are storage's value types: this API is their one reader.
type StatsReader interface {
	Stats(ctx context.Context, q storage.StatsQuery) ([]storage.StatsSeries, error)
}

// Limits of /api/zipq/stats.
const (
	maxStatsPoints       = 11_000 // buckets per series, Prometheus' limit on query_range
	defaultStatsBuckets  = 60     // buckets when step is not given
	defaultStatsQuantile = "0.5,0.9,0.99"
)

var statsKinds = map[string]zipkin.Kind{"CLIENT": zipkin.KindClient, "SERVER": zipkin.KindServer,
	"PRODUCER": zipkin.KindProducer, "CONSUMER": zipkin.KindConsumer, "UNSPECIFIED": zipkin.KindUnspecified}

var statsGroups = map[string]storage.StatsBy{"service": storage.ByService, "spanName": storage.ByName,
	"kind": storage.ByKind, "remoteService": storage.ByRemote}

// statsRequest reads /api/zipq/stats' parameters: serviceName, spanName,
// remoteServiceName and kind (Zipkin's names; kind may list several)
// select; endTs and lookback
// (ms, as /api/v2/dependencies) and step (ms) cut the range; by lists
// what to group by (service, spanName, kind, remoteService; default
// service); quantile lists quantiles in [0, 1].
func (a *api) statsRequest(r *http.Request) (storage.StatsQuery, error) {
	v := r.URL.Query()
	end, lookback, err := a.window(r)
	if err != nil {
		return storage.StatsQuery{}, err
	}
	name := func(p string) string { return strings.ToLower(strings.TrimSpace(v.Get(p))) } // as stored, as /api/v2/traces reads them
	q := storage.StatsQuery{Service: name("serviceName"), Name: name("spanName"), Remote: name("remoteServiceName"),
		Start: end.Add(-lookback), End: end, Step: lookback / defaultStatsBuckets, By: storage.ByService}
	if s := v.Get("kind"); s != "" {
		for _, name := range strings.Split(s, ",") {
			k, ok := statsKinds[strings.ToUpper(strings.TrimSpace(name))]
			if !ok {
				return q, badf("kind %q: want CLIENT, SERVER, PRODUCER, CONSUMER or UNSPECIFIED, or several joined by commas", truncate(name))
			}
			q.Kinds = append(q.Kinds, k)
		}
	}
	if s := v.Get("step"); s != "" {
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil || ms <= 0 {
			return q, badf("step must be a positive number of milliseconds, got %q", truncate(s))
		}
		q.Step = time.Duration(min(ms, int64(lookback/time.Millisecond))) * time.Millisecond
	}
	q.Step = statsStep(q.Start, q.Step)
	q.Start = q.Start.Truncate(q.Step) // buckets aligned to the step, as Prometheus' and Tempo's
	if n := lookback / q.Step; n > maxStatsPoints {
		return q, badf("lookback/step is %d buckets: at most %d", n, maxStatsPoints)
	}
	if s, ok := v["by"]; ok {
		q.By = 0
		for _, g := range strings.Split(strings.Join(s, ","), ",") {
			if g = strings.TrimSpace(g); g == "" {
				continue
			}
			by, ok := statsGroups[g]
			if !ok {
				return q, badf("by %q: want service, spanName, kind or remoteService", truncate(g))
			}
			q.By |= by
		}
	}
	for _, s := range strings.Split(cmp.Or(v.Get("quantile"), defaultStatsQuantile), ",") {
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || !(f >= 0 && f <= 1) {
			return q, badf("quantile %q: want a number in [0, 1]", truncate(s))
		}
		q.Quantiles = append(q.Quantiles, f)
	}
	return q, nil
}

func (a *api) stats(w http.ResponseWriter, r *http.Request) {
	q, err := a.statsRequest(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	series, err := a.o.Stats.Stats(r.Context(), q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, statsAnswerOf(q, series))
}

// statsAnswerOf is a read's series as the API's JSON answer.
func statsAnswerOf(q storage.StatsQuery, series []storage.StatsSeries) statsAnswer {
	out := statsAnswer{Start: q.Start.UnixMilli(), End: q.End.UnixMilli(), Step: q.Step.Milliseconds(),
		Quantiles: q.Quantiles, Accuracy: storage.SketchAccuracy, Series: make([]statsSeries, len(series))}
	for i, s := range series {
		o := statsSeries{Service: s.Service, SpanName: s.Name, RemoteService: s.Remote,
			Total: statsPoint(s.Total, q.End.Sub(q.Start)), Points: make([]statsPointJSON, len(s.Points))}
		if q.By&storage.ByKind != 0 {
			o.Kind = kindName(s.Kind)
		}
		for j, p := range s.Points {
			o.Points[j] = statsPoint(p, q.Step)
		}
		out.Series[i] = o
	}
	return out
}

// usage answers "whose spans take the disk": per service (by=service,
// the default) or per operation (by=service,spanName), the spans stored in
// the window and their segments' bytes, most bytes first: whom to ask to
// sample. The same parameters as /api/zipq/stats but step and quantile.
func (a *api) usage(w http.ResponseWriter, r *http.Request) {
	q, err := a.statsRequest(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	// One bucket, the window (statsRequest checked it).
	_, lookback, _ := a.window(r)
	q.Start, q.Step, q.Quantiles = q.End.Add(-lookback), lookback, nil
	series, err := a.o.Stats.Stats(r.Context(), q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rows, spans, bytes := storage.UsageRows(series)
	out := usageAnswer{Start: q.Start.UnixMilli(), End: q.End.UnixMilli(), Spans: spans, Bytes: bytes, Rows: make([]usageRow, len(rows))}
	for i, r := range rows {
		out.Rows[i] = usageRow{Service: r.Service, SpanName: r.Name, Spans: r.Spans, Bytes: r.Bytes, BytesPerSpan: r.BytesPerSpan, Share: r.Share}
	}
	writeJSON(w, http.StatusOK, out)
}

type usageAnswer struct {
	Start int64      `json:"start"` // epoch ms
	End   int64      `json:"end"`
	Spans int64      `json:"spans"`
	Bytes int64      `json:"bytes"`
	Rows  []usageRow `json:"rows"`
}

type usageRow struct {
	Service      string  `json:"serviceName"`
	SpanName     string  `json:"spanName,omitempty"`
	Spans        int64   `json:"spans"`
	Bytes        int64   `json:"bytes"`
	BytesPerSpan float64 `json:"bytesPerSpan"`
	Share        float64 `json:"share"` // of the window's bytes, in [0, 1]
}

// statsStep is the step a read of the service metrics uses: at least the
// minute they are kept at, and at least an hour when the range reaches
// back beyond the day after which they are kept by the hour (a smaller
// step would put an hour's calls in one of its buckets).
func statsStep(start time.Time, step time.Duration) time.Duration {
	if start.Before(time.Now().Add(-24 * time.Hour)) {
		return max(step, time.Hour)
	}
	return max(step, time.Minute)
}

func kindName(k zipkin.Kind) string {
	for name, v := range statsKinds {
		if v == k {
			return name
		}
	}
	return ""
}

type statsAnswer struct {
	Start     int64         `json:"start"` // epoch ms
	End       int64         `json:"end"`
	Step      int64         `json:"step"` // ms
	Quantiles []float64     `json:"quantiles"`
	Accuracy  float64       `json:"relativeAccuracy"` // of every quantile
	Series    []statsSeries `json:"series"`
}

type statsSeries struct {
	Service       string           `json:"serviceName,omitempty"`
	SpanName      string           `json:"spanName,omitempty"`
	Kind          string           `json:"kind,omitempty"`
	RemoteService string           `json:"remoteServiceName,omitempty"`
	Total         statsPointJSON   `json:"total"`
	Points        []statsPointJSON `json:"points"`
}

type statsPointJSON struct {
	Timestamp  int64          `json:"timestamp"` // epoch ms, start of the bucket
	Calls      int64          `json:"calls"`
	Errors     int64          `json:"errors"`
	Rate       float64        `json:"rate"` // calls per second over the bucket
	ErrorRatio float64        `json:"errorRatio"`
	Quantiles  []int64        `json:"quantiles"` // µs, one per quantile asked
	AvgUs      int64          `json:"avg"`       // µs
	Bytes      int64          `json:"bytes"`     // stored segments' bytes of these spans (storage.StatsPoint.Bytes)
	Slowest    *statsExemplar `json:"slowest,omitempty"`
	Failed     *statsExemplar `json:"failed,omitempty"`
}

type statsExemplar struct {
	TraceID   string `json:"traceId"`
	SpanID    string `json:"id"`
	Duration  int64  `json:"duration"`  // µs
	Timestamp int64  `json:"timestamp"` // epoch µs, as Zipkin's spans
}

func statsPoint(p storage.StatsPoint, over time.Duration) statsPointJSON {
	o := statsPointJSON{Timestamp: p.Time.UnixMilli(), Calls: p.Calls, Errors: p.Errors, Bytes: p.Bytes,
		Rate: float64(p.Calls) / over.Seconds(), Quantiles: make([]int64, len(p.Quantiles)),
		Slowest: exemplarJSON(p.Slowest), Failed: exemplarJSON(p.Failed)}
	if p.Calls > 0 {
		o.ErrorRatio = float64(p.Errors) / float64(p.Calls)
		o.AvgUs = p.DurationSumMic / p.Calls
	}
	for i, v := range p.Quantiles {
		o.Quantiles[i] = int64(v + 0.5)
	}
	return o
}

func exemplarJSON(e *storage.StatsExemplar) *statsExemplar {
	if e == nil {
		return nil
	}
	return &statsExemplar{TraceID: e.TraceID.String(), SpanID: e.SpanID.String(), Duration: e.DurationMic, Timestamp: e.Time.UnixMicro()}
}
