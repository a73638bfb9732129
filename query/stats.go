package query

// Service health: rates, error ratios, latency quantiles and exemplars
// per service, operation or edge, from the metrics the collectors compute
// at ingest (storage.Store.Stats), at /api/zipq/stats.

import (
	"cmp"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/zipq/zipq/storage"
	"github.com/zipq/zipq/zipkin"
)

// StatsReader reads the service metrics (storage.Store.ReadStats): fn
// gets the series, lent until it returns, and every answer is written
// within it. The query and series are storage's value types: this API is
// their one reader.
type StatsReader interface {
	ReadStats(ctx context.Context, q storage.StatsQuery, fn func([]storage.StatsSeries) error) error
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

// statsShape is how an answer is laid out, beyond what it holds: a JSON
// object per point, or (columns=true) per series one array per field,
// a fifth of the bytes, for ranges of thousands of steps; and exemplars
// from at most how many slices of the range (exemplars=N; every point's
// when not given).
type statsShape struct {
	columns bool
	slices  int // 0: every point's exemplars (not given); -1: none (exemplars=0)
}

func statsShapeOf(r *http.Request) (statsShape, error) {
	v := r.URL.Query()
	var sh statsShape
	if s := v.Get("columns"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return sh, badf("columns must be true or false, got %q", truncate(s))
		}
		sh.columns = b
	}
	if s := v.Get("exemplars"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > maxStatsPoints {
			return sh, badf("exemplars must be a number of slices from 0 to %d, got %q", maxStatsPoints, truncate(s))
		}
		sh.slices = n
		if n == 0 {
			sh.slices = -1 // none
		}
	}
	return sh, nil
}

func (a *api) stats(w http.ResponseWriter, r *http.Request) {
	q, err := a.statsRequest(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	sh, err := statsShapeOf(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	q.ExemplarSlices = max(sh.slices, 0) // storage may leave out what the pick below drops
	err = a.o.Stats.ReadStats(r.Context(), q, func(series []storage.StatsSeries) error {
		if sh.columns {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			_ = writeStatsColumns(w, q, series, sh.slices) // as writeJSON: an error here is the client gone, after the status
			return nil
		}
		for i := range series {
			series[i].Points = pickExemplars(series[i].Points, sh.slices, q)
		}
		writeJSON(w, http.StatusOK, statsAnswerOf(q, series))
		return nil
	})
	if err != nil {
		a.fail(w, r, err)
	}
}

// pickExemplars keeps, of a series' exemplars, each slice's slowest span
// and slowest failed span when the range is cut into n equal slices (by
// bucket); n < 0 keeps none, 0 every point's. A chart has room for a few
// hundred marks, not one per minute of a day, and exemplars are half the
// bytes of an answer that has one a point; the slowest of each slice are
// the ones a person looks for, spread over the range. The points are
// copied, not changed.
func pickExemplars(points []storage.StatsPoint, n int, q storage.StatsQuery) []storage.StatsPoint {
	if n == 0 {
		return points
	}
	out := slices.Clone(points)
	slow, failed := exemplarPicks(points, n, q)
	for i := range out {
		if !slow[i] {
			out[i].Slowest = nil
		}
		if !failed[i] {
			out[i].Failed = nil
		}
	}
	return out
}

// exemplarPicks is pickExemplars' choice, without copying the points:
// whether each point keeps its slowest and its failed exemplar.
func exemplarPicks(points []storage.StatsPoint, n int, q storage.StatsQuery) (slow, failed []bool) {
	slow, failed = make([]bool, len(points)), make([]bool, len(points))
	if n <= 0 {
		for i := range points {
			slow[i], failed[i] = n == 0, n == 0
		}
		return slow, failed
	}
	buckets := int(max(1, (q.End.Sub(q.Start)+q.Step-1)/q.Step))
	type best struct{ slow, failed int }
	keep := make([]best, min(n, buckets))
	for i := range keep {
		keep[i] = best{-1, -1}
	}
	slower := func(a, b *storage.StatsExemplar) bool { return a != nil && (b == nil || a.DurationMic > b.DurationMic) }
	for i, p := range points {
		at := min(buckets-1, max(0, int(p.Time.Sub(q.Start)/q.Step)))
		b := &keep[at*len(keep)/buckets]
		if b.slow < 0 || slower(p.Slowest, points[b.slow].Slowest) {
			b.slow = i
		}
		if p.Failed != nil && (b.failed < 0 || slower(p.Failed, points[b.failed].Failed)) {
			b.failed = i
		}
	}
	for _, b := range keep {
		if b.slow < 0 {
			continue // a slice without points
		}
		slow[b.slow] = true
		if b.failed >= 0 {
			failed[b.failed] = true
		}
	}
	return slow, failed
}

// statsAnswerOf is a read's series as the API's JSON answer.
func statsAnswerOf(q storage.StatsQuery, series []storage.StatsSeries) statsAnswer[statsSeries] {
	out := statsAnswer[statsSeries]{statsAnswerHead: statsHead(q), Series: make([]statsSeries, len(series))}
	for i, s := range series {
		o := statsSeries{statsSeriesName: seriesName(q, s), Total: statsPoint(s.Total, q.End.Sub(q.Start)),
			Points: make([]statsPointJSON, len(s.Points))}
		for j, p := range s.Points {
			o.Points[j] = statsPoint(p, q.Step)
		}
		out.Series[i] = o
	}
	return out
}

// writeStatsColumns writes the answer in columns (columns=true): a point
// is its bucket's index and one number in each column (rate and error
// ratio follow from calls, errors and the step); exemplars are listed
// apart with their bucket, only where a point keeps one (exemplarPicks
// with slices). Written by hand around encoding/json's pieces, with the
// same bytes as encoding/json gives the statsColumnSeries form
// (TestStatsColumnsWritten): a day of 50 services at one-minute steps is
// 500,000 numbers, and encoding/json's reflected call per number and
// buffering of the whole answer were most of the request's time beside
// the storage read (docs/BENCHMARKS.md).
func writeStatsColumns(w io.Writer, q storage.StatsQuery, series []storage.StatsSeries, exemplarSlices int) error {
	head, err := json.Marshal(statsHead(q))
	if err != nil {
		return err
	}
	if _, err := w.Write(append(head[:len(head)-1:len(head)-1], `,"series":[`...)); err != nil {
		return err
	}
	// A worker per core writes the series, each handed to w in order as
	// soon as it is done: w (the route's gzip) compresses one while the
	// workers write the next. A worker never waits (each series' channel
	// holds its answer), so stopping early only leaves them to finish.
	type written struct {
		b   []byte
		err error
	}
	done := make([]chan written, len(series))
	for i := range done {
		done[i] = make(chan written, 1)
	}
	var next atomic.Int64
	stop := make(chan struct{})
	var eg errgroup.Group
	defer func() { _ = eg.Wait() }()
	defer close(stop)
	for range min(runtime.GOMAXPROCS(0), len(series)) {
		eg.Go(func() error {
			for i := int(next.Add(1) - 1); i < len(series); i = int(next.Add(1) - 1) {
				select {
				case <-stop:
					return nil
				default:
				}
				b := (*seriesBufs.Get().(*[]byte))[:0]
				if i > 0 {
					b = append(b, ',')
				}
				b, err := appendSeriesColumns(b, q, series[i], exemplarSlices)
				done[i] <- written{b, err}
			}
			return nil
		})
	}
	for i := range series {
		r := <-done[i]
		if r.err != nil {
			return r.err
		}
		_, err := w.Write(r.b)
		seriesBufs.Put(&r.b) // w copied it (a ResponseWriter's or gzip's buffer)
		if err != nil {
			return err
		}
	}
	_, err = w.Write([]byte("]}\n"))
	return err
}

// seriesBufs holds writeStatsColumns' per-series buffers between
// requests: a day at one-minute steps is about 80 kB a series, 4 MB an
// answer, and allocating them anew was a fifth of what a request left to
// the garbage collector (docs/BENCHMARKS.md).
var seriesBufs = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// appendSeriesColumns appends one series of writeStatsColumns' answer.
func appendSeriesColumns(b []byte, q storage.StatsQuery, s storage.StatsSeries, exemplarSlices int) ([]byte, error) {
	name, err := json.Marshal(struct {
		statsSeriesName
		Total statsPointJSON `json:"total"`
	}{seriesName(q, s), statsPoint(s.Total, q.End.Sub(q.Start))})
	if err != nil {
		return nil, err
	}
	b = append(b, name[:len(name)-1]...)
	ps := s.Points
	bucket := func(p *storage.StatsPoint) int64 { return int64(p.Time.Sub(q.Start) / q.Step) }
	b = appendColumn(append(b, `,"columns":{"bucket":`...), ps, bucket)
	b = appendColumn(append(b, `,"calls":`...), ps, func(p *storage.StatsPoint) int64 { return p.Calls })
	b = appendColumn(append(b, `,"errors":`...), ps, func(p *storage.StatsPoint) int64 { return p.Errors })
	b = appendColumn(append(b, `,"avg":`...), ps, func(p *storage.StatsPoint) int64 { return avgUs(*p) })
	b = appendColumn(append(b, `,"bytes":`...), ps, func(p *storage.StatsPoint) int64 { return p.Bytes })
	b = append(b, `,"quantiles":[`...)
	for k := range q.Quantiles {
		if k > 0 {
			b = append(b, ',')
		}
		b = appendColumn(b, ps, func(p *storage.StatsPoint) int64 {
			if k < len(p.Quantiles) {
				return roundUs(p.Quantiles[k])
			}
			return 0
		})
	}
	ex := []statsExemplarAt{}
	slow, failed := exemplarPicks(ps, exemplarSlices, q)
	for j := range ps {
		p := &ps[j]
		e := statsExemplarAt{Bucket: bucket(p)}
		if slow[j] {
			e.Slowest = exemplarJSON(p.Slowest)
		}
		if failed[j] {
			e.Failed = exemplarJSON(p.Failed)
		}
		if e.Slowest != nil || e.Failed != nil {
			ex = append(ex, e)
		}
	}
	exs, err := json.Marshal(ex)
	if err != nil {
		return nil, err
	}
	return append(append(append(b, `]},"exemplars":`...), exs...), '}'), nil
}

// appendColumn appends one field of every point as a JSON array.
func appendColumn(b []byte, points []storage.StatsPoint, field func(*storage.StatsPoint) int64) []byte {
	b = append(b, '[')
	for j := range points {
		if j > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, field(&points[j]), 10)
	}
	return append(b, ']')
}

func statsHead(q storage.StatsQuery) statsAnswerHead {
	return statsAnswerHead{Start: q.Start.UnixMilli(), End: q.End.UnixMilli(), Step: q.Step.Milliseconds(),
		Quantiles: q.Quantiles, Accuracy: storage.SketchAccuracy}
}

func seriesName(q storage.StatsQuery, s storage.StatsSeries) statsSeriesName {
	o := statsSeriesName{Service: s.Service, SpanName: s.Name, RemoteService: s.Remote}
	if q.By&storage.ByKind != 0 {
		o.Kind = kindName(s.Kind)
	}
	return o
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
	var rows []storage.UsageRow
	var spans, bytes int64
	err = a.o.Stats.ReadStats(r.Context(), q, func(series []storage.StatsSeries) error {
		rows, spans, bytes = storage.UsageRows(series)
		return nil
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
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

type statsAnswer[S any] struct {
	statsAnswerHead
	Series []S `json:"series"`
}

type statsAnswerHead struct {
	Start     int64     `json:"start"` // epoch ms
	End       int64     `json:"end"`
	Step      int64     `json:"step"` // ms
	Quantiles []float64 `json:"quantiles"`
	Accuracy  float64   `json:"relativeAccuracy"` // of every quantile
}

type statsSeriesName struct {
	Service       string `json:"serviceName,omitempty"`
	SpanName      string `json:"spanName,omitempty"`
	Kind          string `json:"kind,omitempty"`
	RemoteService string `json:"remoteServiceName,omitempty"`
}

type statsSeries struct {
	statsSeriesName
	Total  statsPointJSON   `json:"total"`
	Points []statsPointJSON `json:"points"`
}

type statsExemplarAt struct {
	Bucket  int64          `json:"bucket"`
	Slowest *statsExemplar `json:"slowest,omitempty"`
	Failed  *statsExemplar `json:"failed,omitempty"`
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
	}
	o.AvgUs = avgUs(p)
	for i, v := range p.Quantiles {
		o.Quantiles[i] = roundUs(v)
	}
	return o
}

func avgUs(p storage.StatsPoint) int64 {
	if p.Calls == 0 {
		return 0
	}
	return p.DurationSumMic / p.Calls
}

// roundUs is a quantile in whole µs: the sketch's value is within 1 %,
// its fraction says nothing.
func roundUs(v float64) int64 { return int64(v + 0.5) }

func exemplarJSON(e *storage.StatsExemplar) *statsExemplar {
	if e == nil {
		return nil
	}
	return &statsExemplar{TraceID: e.TraceID.String(), SpanID: e.SpanID.String(), Duration: e.DurationMic, Timestamp: e.Time.UnixMicro()}
}
