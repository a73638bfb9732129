package testenv

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zipq/zipq/storage"
	"github.com/zipq/zipq/zipkin"
)

// ServicesDay fills st with the Services-page benchmarks' day: services ×
// ops server operations ("service-N", "op-N"), perCell calls of each in
// every minute of the 24 hours up to now (a minute), durations spread
// over 100 µs–300 ms, then folds them as the stats job does and analyses
// the tables as autovacuum would (st's schema is dsn's). A read's cost
// depends on the services and minutes, not on how many calls a minute
// holds.
func ServicesDay(tb testing.TB, st *storage.Store, dsn string, now time.Time, services, ops, perCell int) {
	tb.Helper()
	ctx := context.Background()
	batch := make([]zipkin.Span, 0, 50_000)
	id := uint64(1)
	flush := func() {
		Must(tb, st.WriteSpans(ctx, batch))
		batch = batch[:0]
	}
	for m := range 24 * 60 {
		at := now.Add(-time.Duration(m) * time.Minute)
		for s := range services {
			for o := range ops {
				for k := range perCell {
					id++
					batch = append(batch, zipkin.Span{TraceID: zipkin.TraceID{Low: id}, ID: zipkin.SpanID(id), Name: "op-" + strconv.Itoa(o),
						Kind: zipkin.KindServer, Timestamp: at.Add(time.Duration(k) * time.Second).UnixMicro(), Duration: int64(100 + (id*7919)%300_000),
						LocalEndpoint: &zipkin.Endpoint{ServiceName: "service-" + strconv.Itoa(s)}})
				}
			}
		}
		if len(batch) >= 40_000 {
			flush()
		}
	}
	flush()
	FoldStats(tb, st, now.Add(2*time.Minute))
	conn, err := pgx.Connect(ctx, dsn)
	Must(tb, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `VACUUM ANALYZE span_stats, span_strips`)
	Must(tb, err)
}

// FoldStats runs the stats job's rounds at now until it has no more to
// fold.
func FoldStats(tb testing.TB, st *storage.Store, now time.Time) {
	tb.Helper()
	for range 10_000 {
		more, err := st.FoldStats(context.Background(), now)
		Must(tb, err)
		if !more {
			return
		}
	}
	tb.Fatal("the stats job never ran out of work")
}

// ReportLatencies reports the p50 and p99 of took (sorted in place) in
// ms: what the benchmarks of reads give beside their mean.
func ReportLatencies(b *testing.B, took []time.Duration) {
	slices.Sort(took)
	for _, p := range []int{50, 99} {
		b.ReportMetric(float64(took[len(took)*p/100].Microseconds())/1000, fmt.Sprintf("p%d-ms", p))
	}
}
