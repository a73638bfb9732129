package query_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/zipq/zipq/internal/testenv"
	"github.com/zipq/zipq/query"
	"github.com/zipq/zipq/storage"
)

// BenchmarkServicesPageRequest is issue 23's Services page request end
// to end: 50 services' day at one-minute steps with p50 and p99, asked as
// the UI asks it (columns, exemplars from 240 slices), through the
// router with the real store, plain and gzipped as browsers take it; with
// the store's cache of decoded strips (each read after the first finds
// the day's whole hours decoded) and without (every read as the first
// after a restart). p50/p99 over the reads.
func BenchmarkServicesPageRequest(b *testing.B) {
	dsn := testenv.Schema(b)
	now := time.Now().UTC().Truncate(time.Minute)
	open := func(cacheBytes int64) *storage.Store {
		st, err := storage.Open(context.Background(), storage.Config{URL: dsn, StatsCacheBytes: cacheBytes}, nil)
		testenv.Must(b, err)
		b.Cleanup(st.Close)
		return st
	}
	warm, cold := open(0), open(-1)
	testenv.ServicesDay(b, warm, dsn, now, 50, 10, 1)
	// Up to the minute after the request's (a range older than a day
	// would be read at hour steps); the minutes since the fill have no
	// calls.
	url := func() string {
		return fmt.Sprintf("/api/zipq/stats?endTs=%d&lookback=%d&step=60000&quantile=0.5,0.99&columns=true&exemplars=240",
			time.Now().Truncate(time.Minute).Add(time.Minute).UnixMilli(), (24 * time.Hour).Milliseconds())
	}
	for _, c := range []struct {
		name string
		st   *storage.Store
	}{{"cached", warm}, {"uncached", cold}} {
		h := query.NewRouter(query.Options{Reader: c.st, Stats: c.st})
		for _, gzip := range []bool{false, true} {
			name := c.name
			if gzip {
				name += "+gzip"
			}
			b.Run(name, func(b *testing.B) {
				var took []time.Duration
				var bytes int
				serve := func() *httptest.ResponseRecorder {
					req := httptest.NewRequest(http.MethodGet, url(), nil)
					if gzip {
						req.Header.Set("Accept-Encoding", "gzip")
					}
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					return rec
				}
				serve() // the cache's first read is a cold one: the uncached cases measure those
				for b.Loop() {
					t0 := time.Now()
					rec := serve()
					took = append(took, time.Since(t0))
					if rec.Code != http.StatusOK {
						b.Fatalf("%d %s", rec.Code, rec.Body)
					}
					bytes = rec.Body.Len()
					if !gzip && len(took) == 1 {
						var a struct {
							Series []struct {
								Columns struct{ Calls []int64 }
							}
						}
						testenv.Must(b, json.Unmarshal(rec.Body.Bytes(), &a))
						if len(a.Series) != 50 || len(a.Series[0].Columns.Calls) < 23*60 {
							b.Fatalf("%d series, %d points in the first", len(a.Series), len(a.Series[0].Columns.Calls))
						}
					}
				}
				testenv.ReportLatencies(b, took)
				b.ReportMetric(float64(bytes), "B/answer")
			})
		}
	}
}
