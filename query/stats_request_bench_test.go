package query_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/zipq/zipq/internal/testenv"
	"github.com/zipq/zipq/query"
	"github.com/zipq/zipq/storage"
)

// BenchmarkServicesPageRequest is issue 23's Services page request end
// to end: 50 services' day at one-minute steps with p50 and p99, asked as
// the UI asks it (columns, exemplars from 240 slices), through the
// router with the real store, plain and gzipped as browsers take it, into
// httptest's recorder and over a loopback connection to a server; with
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
		// Through httptest's recorder (the whole body kept in a growing
		// buffer) and over a loopback connection to a real server, as a
		// client takes it (the body read into a buffer reused between
		// requests, as the server's buffer is).
		srv := httptest.NewServer(h)
		b.Cleanup(srv.Close)
		client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
		b.Cleanup(client.CloseIdleConnections)
		var body bytes.Buffer
		for _, mode := range []string{"", "+gzip", "+tcp", "+tcp+gzip"} {
			gzip, tcp := strings.Contains(mode, "gzip"), strings.Contains(mode, "tcp")
			b.Run(c.name+mode, func(b *testing.B) {
				var took []time.Duration
				serve := func() (int, []byte) {
					req := httptest.NewRequest(http.MethodGet, url(), nil)
					if tcp {
						var err error
						req, err = http.NewRequest(http.MethodGet, srv.URL+url(), nil)
						testenv.Must(b, err)
					}
					if gzip {
						req.Header.Set("Accept-Encoding", "gzip")
					}
					if !tcp {
						rec := httptest.NewRecorder()
						h.ServeHTTP(rec, req)
						return rec.Code, rec.Body.Bytes()
					}
					resp, err := client.Do(req)
					testenv.Must(b, err)
					defer resp.Body.Close()
					body.Reset()
					_, err = body.ReadFrom(resp.Body)
					testenv.Must(b, err)
					return resp.StatusCode, body.Bytes()
				}
				serve() // the cache's first read is a cold one: the uncached cases measure those
				var size int
				for b.Loop() {
					t0 := time.Now()
					code, answer := serve()
					took = append(took, time.Since(t0))
					if code != http.StatusOK {
						b.Fatalf("%d %s", code, answer)
					}
					size = len(answer)
					if !gzip && len(took) == 1 {
						var a struct {
							Series []struct {
								Columns struct{ Calls []int64 }
							}
						}
						testenv.Must(b, json.Unmarshal(answer, &a))
						if len(a.Series) != 50 || len(a.Series[0].Columns.Calls) < 23*60 {
							b.Fatalf("%d series, %d points in the first", len(a.Series), len(a.Series[0].Columns.Calls))
						}
					}
				}
				testenv.ReportLatencies(b, took)
				b.ReportMetric(float64(size), "B/answer")
			})
		}
	}
}
