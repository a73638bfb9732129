package query

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/zipq/zipq/storage"
	"github.com/zipq/zipq/zipkin"
)

// The columns=true answer as encoding/json writes it: the form
// writeStatsColumns must write byte for byte.

type statsColumnSeries struct {
	statsSeriesName
	Total     statsPointJSON    `json:"total"`
	Columns   statsColumns      `json:"columns"`
	Exemplars []statsExemplarAt `json:"exemplars"`
}

// statsColumns are a series' points, one array per field, in the order
// of the points; quantiles has one array per quantile asked.
type statsColumns struct {
	Bucket    []int64   `json:"bucket"` // the point's step: its start is start + bucket × step
	Calls     []int64   `json:"calls"`
	Errors    []int64   `json:"errors"`
	Avg       []int64   `json:"avg"` // µs
	Bytes     []int64   `json:"bytes"`
	Quantiles [][]int64 `json:"quantiles"` // µs
}

// statsColumnsOf is the columns answer of points whose exemplars were
// picked (pickExemplars) already.
func statsColumnsOf(q storage.StatsQuery, series []storage.StatsSeries) statsAnswer[statsColumnSeries] {
	out := statsAnswer[statsColumnSeries]{statsAnswerHead: statsHead(q), Series: make([]statsColumnSeries, len(series))}
	for i, s := range series {
		n := len(s.Points)
		c := statsColumns{Bucket: make([]int64, n), Calls: make([]int64, n), Errors: make([]int64, n),
			Avg: make([]int64, n), Bytes: make([]int64, n), Quantiles: make([][]int64, len(q.Quantiles))}
		for k := range c.Quantiles {
			c.Quantiles[k] = make([]int64, n)
		}
		var ex []statsExemplarAt
		for j, p := range s.Points {
			c.Bucket[j] = int64(p.Time.Sub(q.Start) / q.Step)
			c.Calls[j], c.Errors[j], c.Avg[j], c.Bytes[j] = p.Calls, p.Errors, avgUs(p), p.Bytes
			for k, v := range p.Quantiles {
				c.Quantiles[k][j] = roundUs(v)
			}
			if p.Slowest != nil || p.Failed != nil {
				ex = append(ex, statsExemplarAt{Bucket: c.Bucket[j], Slowest: exemplarJSON(p.Slowest), Failed: exemplarJSON(p.Failed)})
			}
		}
		out.Series[i] = statsColumnSeries{statsSeriesName: seriesName(q, s), Total: statsPoint(s.Total, q.End.Sub(q.Start)),
			Columns: c, Exemplars: ex}
		if ex == nil {
			out.Series[i].Exemplars = []statsExemplarAt{}
		}
	}
	return out
}

// TestStatsColumnsWritten: writeStatsColumns writes what encoding/json
// writes of the same answer built as structs, byte for byte, on random
// series: empty ones, points without quantiles or exemplars, any
// number of exemplar slices, names that need escaping.
func TestStatsColumnsWritten(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	start := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	names := []string{"web", "cart \"<b>\" ü", "", "db\n"}
	for round := range 300 {
		step := time.Duration(1+rng.IntN(60)) * time.Minute
		buckets := 1 + rng.IntN(200)
		q := storage.StatsQuery{Start: start, End: start.Add(time.Duration(buckets) * step), Step: step,
			By: storage.StatsBy(rng.IntN(16)), Quantiles: []float64{0.5, 0.99, 0.999}[:rng.IntN(4)]}
		series := make([]storage.StatsSeries, rng.IntN(4))
		for i := range series {
			s := &series[i]
			s.Service, s.Name, s.Remote, s.Kind = names[rng.IntN(4)], names[rng.IntN(4)], names[rng.IntN(4)], zipkin.Kind(rng.IntN(5))
			for b := range buckets {
				if rng.IntN(3) == 0 {
					continue
				}
				p := storage.StatsPoint{Time: start.Add(time.Duration(b) * step), Calls: rng.Int64N(1000), Errors: rng.Int64N(10),
					DurationSumMic: rng.Int64N(1 << 40), Bytes: rng.Int64N(1 << 30)}
				if rng.IntN(5) > 0 {
					for range q.Quantiles {
						p.Quantiles = append(p.Quantiles, rng.Float64()*1e6)
					}
				}
				ex := func() *storage.StatsExemplar {
					if rng.IntN(3) == 0 {
						return nil
					}
					return &storage.StatsExemplar{TraceID: zipkin.TraceID{High: rng.Uint64(), Low: rng.Uint64()}, SpanID: zipkin.SpanID(rng.Uint64()),
						DurationMic: rng.Int64N(1e7), Time: p.Time.Add(time.Duration(rng.Int64N(int64(step))))}
				}
				p.Slowest, p.Failed = ex(), ex()
				s.Points = append(s.Points, p)
			}
			s.Total = storage.StatsPoint{Time: start, Calls: rng.Int64N(1e6), Quantiles: []float64{1.5}, Slowest: nil}
		}
		n := rng.IntN(buckets+3) - 1 // -1: none, 0: all
		picked := make([]storage.StatsSeries, len(series))
		for i, s := range series {
			picked[i] = s
			picked[i].Points = pickExemplars(s.Points, n, q)
		}
		var want, got bytes.Buffer
		if err := json.NewEncoder(&want).Encode(statsColumnsOf(q, picked)); err != nil {
			t.Fatal(err)
		}
		if err := writeStatsColumns(&got, q, series, n); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("round %d: written\n%s\nencoding/json\n%s", round, got.Bytes(), want.Bytes())
		}
	}
}
