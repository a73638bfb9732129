package query

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"testing"
	"time"

	kgzip "github.com/klauspost/compress/gzip"

	"github.com/zipq/zipq/storage"
	"github.com/zipq/zipq/zipkin"
)

// BenchmarkStatsAnswer is what /api/zipq/stats adds to the storage read
// (storage's BenchmarkServicesPage) for the Services page's day of 50
// services: building the answer and encoding it as JSON, plain and as
// the gzip level the route's middleware uses for browsers, a JSON object
// a point beside columns in the same run. Each point has
// the two quantiles and a slowest exemplar, one in ten a failed one, as
// in a day of real calls.
func BenchmarkStatsAnswer(b *testing.B) {
	day := time.Now().UTC().Truncate(time.Hour).Add(-24 * time.Hour)
	for _, c := range []struct {
		name string
		step time.Duration
	}{{"minutes", time.Minute}, {"hours", time.Hour}} {
		q := storage.StatsQuery{Start: day, End: day.Add(24 * time.Hour), Step: c.step, By: storage.ByService, Quantiles: []float64{0.5, 0.99}}
		series := make([]storage.StatsSeries, 50)
		for s := range series {
			series[s].Service = "service-" + string(rune('a'+s%26)) + string(rune('a'+s/26))
			for at := q.Start; at.Before(q.End); at = at.Add(c.step) {
				n := int64(len(series[s].Points))
				slow := &storage.StatsExemplar{TraceID: zipkin.TraceID{Low: uint64(n)*7919 + 1}, SpanID: zipkin.SpanID(n + 3), DurationMic: 300_000 + n, Time: at.Add(17 * time.Second)}
				p := storage.StatsPoint{Time: at, Calls: 20 + n%7, Errors: n % 3, DurationSumMic: 2_000_000 + n, Bytes: 4_000 + n,
					Quantiles: []float64{1_234.5 + float64(n), 234_567.8}, Slowest: slow}
				if n%10 == 0 {
					p.Failed = slow
				}
				series[s].Points = append(series[s].Points, p)
			}
		}
		// The answers: a JSON object per point with every point's
		// exemplars (as before columns=true), and columns with exemplars
		// from 100 slices (columns=true&exemplars=100, what the UI asks).
		shapes := []struct {
			name   string
			answer func(io.Writer) error
		}{
			{"json", func(w io.Writer) error { return json.NewEncoder(w).Encode(statsAnswerOf(q, series)) }},
			// Columns as encoding/json wrote them before (the baseline) and
			// as writeStatsColumns writes them now (the same bytes).
			{"columns-encoding-json", func(w io.Writer) error {
				picked := make([]storage.StatsSeries, len(series))
				for i, s := range series {
					picked[i] = s
					picked[i].Points = pickExemplars(s.Points, 100, q)
				}
				return json.NewEncoder(w).Encode(statsColumnsOf(q, picked))
			}},
			{"columns", func(w io.Writer) error { return writeStatsColumns(w, q, series, 100) }},
		}
		// Compressed as the route's middleware does (compress: klauspost's
		// gzip at level 1), at the level it used before (5), and with the
		// standard library's gzip (before klauspost's).
		encodings := []struct {
			name string
			wrap func(io.Writer) io.WriteCloser
		}{
			{"", nil},
			{"+gzip", func(w io.Writer) io.WriteCloser { zw, _ := kgzip.NewWriterLevel(w, 1); return zw }},
			{"+gzip5", func(w io.Writer) io.WriteCloser { zw, _ := kgzip.NewWriterLevel(w, 5); return zw }},
			{"+stdgzip", func(w io.Writer) io.WriteCloser { zw, _ := gzip.NewWriterLevel(w, 5); return zw }},
		}
		for _, sh := range shapes {
			for _, enc := range encodings {
				b.Run(c.name+"/"+sh.name+enc.name, func(b *testing.B) {
					var bytes counter
					for b.Loop() {
						bytes = 0
						var w io.Writer = &bytes
						var zw io.WriteCloser
						if enc.wrap != nil {
							zw = enc.wrap(w)
							w = zw
						}
						if err := sh.answer(w); err != nil {
							b.Fatal(err)
						}
						if zw != nil {
							_ = zw.Close()
						}
					}
					b.ReportMetric(float64(bytes), "B/answer")
				})
			}
		}
	}
}

type counter int64

func (c *counter) Write(p []byte) (int, error) { *c += counter(len(p)); return len(p), nil }
