package query_test

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zipq/zipq/internal/testenv"
	"github.com/zipq/zipq/query"
)

type statsAnswer struct {
	Start     int64     `json:"start"`
	End       int64     `json:"end"`
	Step      int64     `json:"step"`
	Quantiles []float64 `json:"quantiles"`
	Series    []struct {
		Service                           string `json:"serviceName"`
		SpanName, Kind, RemoteServiceName string
		Total                             statsPoint
		Points                            []statsPoint
	} `json:"series"`
}

type statsPoint struct {
	Timestamp, Calls, Errors int64
	Rate, ErrorRatio         float64
	Quantiles                []int64
	Slowest, Failed          *statsExemplarJSON
}

type statsExemplarJSON struct {
	TraceID  string `json:"traceId"`
	ID       string `json:"id"`
	Duration int64  `json:"duration"`
}

// newStatsAPI is the API over a store holding apiSeed, with the service
// metrics on.
func newStatsAPI(t *testing.T) *apiEnv {
	t.Helper()
	e := newAPI(t, nil)
	e.h = query.NewRouter(query.Options{Reader: e.st, Stats: e.st})
	e.seed(t, apiSeed)
	return e
}

// TestStatsAPI: /api/zipq/stats answers the metrics counted as the seed
// was stored, grouped as asked, with exemplars naming the spans.
func TestStatsAPI(t *testing.T) {
	t.Parallel()
	e := newStatsAPI(t)
	base := "/api/zipq/stats?endTs=" + strconv.FormatInt(now.UnixMilli(), 10)

	a := decodeJSON[statsAnswer](t, e.get(t, base+"&lookback=600000&step=600000"))
	if a.Step != 600000 || len(a.Quantiles) != 3 {
		t.Fatalf("step %d, quantiles %v", a.Step, a.Quantiles)
	}
	got := map[string]statsPoint{}
	for _, s := range a.Series {
		if len(s.Points) != 1 || s.Points[0].Calls != s.Total.Calls {
			t.Fatalf("%s: points %+v, total %+v", s.Service, s.Points, s.Total)
		}
		got[s.Service] = s.Total
	}
	if w := got["web"]; w.Calls != 2 || w.Errors != 0 || w.Slowest == nil || w.Slowest.Duration != 2000 || w.Slowest.TraceID != traceID || w.Failed != nil {
		t.Fatalf("web: %+v", w)
	}
	u := got["users"]
	if u.Calls != 1 || u.Errors != 1 || u.ErrorRatio != 1 || u.Failed == nil || u.Failed.ID != "0000000000000002" {
		t.Fatalf("users: %+v", u)
	}
	if math.Abs(float64(u.Quantiles[0])-700) > 7 || math.Abs(u.Rate-1000/float64(a.End-a.Start)) > 1e-9 || a.Start%a.Step != 0 {
		t.Fatalf("users: p50 %d µs (want 700 within 1%%), rate %v", u.Quantiles[0], u.Rate)
	}
	if b := got["batch"]; b.Calls != 1 || len(got) != 3 {
		t.Fatalf("series %+v", got)
	}

	// One service's cells: web's client call to users.
	a = decodeJSON[statsAnswer](t, e.get(t, base+"&lookback=600000&serviceName=Web&kind=client&by=service,spanName,kind,remoteService&quantile=0.99"))
	if len(a.Series) != 1 {
		t.Fatalf("series %+v", a.Series)
	}
	s := a.Series[0]
	if s.Service != "web" || s.SpanName != "get /users" || s.Kind != "CLIENT" || s.RemoteServiceName != "users" || s.Total.Calls != 1 || len(s.Total.Quantiles) != 1 {
		t.Fatalf("cell %+v", s)
	}

	// Several kinds: web's server and client spans, one series each.
	a = decodeJSON[statsAnswer](t, e.get(t, base+"&lookback=600000&serviceName=web&kind=CLIENT,server&by=kind"))
	if len(a.Series) != 2 || a.Series[0].Kind != "CLIENT" || a.Series[1].Kind != "SERVER" {
		t.Fatalf("kinds %+v", a.Series)
	}

	for _, c := range []struct{ query, says string }{
		{"&lookback=600000&kind=client,sideways", "sideways"},
		{"&lookback=600000&kind=sideways", "kind"},
		{"&lookback=600000&by=colour", "by"},
		{"&lookback=600000&quantile=1.5", "quantile"},
		{"&lookback=600000&quantile=NaN", "quantile"},
		{"&lookback=600000&step=0", "step"},
		{"&lookback=600000&step=-5", "step"},
		{"&lookback=63072000000&step=60000", "buckets"},
		{"&lookback=x", "lookback"},
		{"&lookback=600000&columns=maybe", "columns"},
		{"&lookback=600000&exemplars=-1", "exemplars"},
		{"&lookback=600000&exemplars=x", "exemplars"},
		{"&lookback=600000&exemplars=99999", "exemplars"},
	} {
		rec := e.get(t, base+c.query)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), c.says) {
			t.Errorf("%s: %d %s; want 400 naming %s", c.query, rec.Code, rec.Body.String(), c.says)
		}
	}
}

// TestStatsColumns: columns=true answers the same points as the answer of
// a JSON object per point, one array per field, exemplars apart with their
// bucket; exemplars=N keeps each of N slices' slowest (N=1: the series'
// slowest, the total's), exemplars=0 none. Bad values: TestStatsAPI.
func TestStatsColumns(t *testing.T) {
	t.Parallel()
	e := newStatsAPI(t)
	base := "/api/zipq/stats?endTs=" + strconv.FormatInt(now.UnixMilli(), 10) + "&lookback=600000&step=60000"
	type columnsAnswer struct {
		Start, Step int64
		Series      []struct {
			Service  string `json:"serviceName"`
			SpanName string
			Total    statsPoint
			Columns  struct {
				Bucket, Calls, Errors, Avg []int64
				Quantiles                  [][]int64
			}
			Exemplars []struct {
				Bucket          int64
				Slowest, Failed *statsExemplarJSON
			}
		}
	}
	for _, by := range []string{"service", "service,spanName,kind"} {
		points := decodeJSON[statsAnswer](t, e.get(t, base+"&by="+by))
		cols := decodeJSON[columnsAnswer](t, e.get(t, base+"&by="+by+"&columns=true"))
		if len(points.Series) == 0 || len(cols.Series) != len(points.Series) || cols.Start != points.Start {
			t.Fatalf("by %s: %d series in columns, %d in points", by, len(cols.Series), len(points.Series))
		}
		exemplars := 0
		for i, ps := range points.Series {
			cs := cols.Series[i]
			c := cs.Columns
			if cs.Service != ps.Service || cs.SpanName != ps.SpanName || cs.Total.Calls != ps.Total.Calls || len(c.Bucket) != len(ps.Points) {
				t.Fatalf("by %s, series %d: %+v against %+v", by, i, cs, ps)
			}
			ex := 0
			for j, p := range ps.Points {
				if cols.Start+c.Bucket[j]*cols.Step != p.Timestamp || c.Calls[j] != p.Calls || c.Errors[j] != p.Errors || c.Quantiles[2][j] != p.Quantiles[2] {
					t.Fatalf("by %s, %s point %d: columns %+v, point %+v", by, ps.Service, j, c, p)
				}
				if p.Slowest == nil && p.Failed == nil {
					continue
				}
				x := cs.Exemplars[ex]
				ex++
				if x.Bucket != c.Bucket[j] || (x.Slowest == nil) != (p.Slowest == nil) || (x.Failed == nil) != (p.Failed == nil) ||
					x.Slowest != nil && x.Slowest.TraceID != p.Slowest.TraceID {
					t.Fatalf("by %s, %s point %d: exemplars %+v, point %+v", by, ps.Service, j, x, p)
				}
			}
			if ex != len(cs.Exemplars) {
				t.Fatalf("by %s, %s: %d exemplars listed, %d in points", by, ps.Service, len(cs.Exemplars), ex)
			}
			exemplars += ex
		}
		if exemplars == 0 {
			t.Fatalf("by %s: no exemplars to compare", by)
		}

		one := decodeJSON[columnsAnswer](t, e.get(t, base+"&by="+by+"&columns=true&exemplars=1"))
		for _, s := range one.Series {
			var slowest []*statsExemplarJSON
			for _, x := range s.Exemplars {
				if x.Slowest != nil {
					slowest = append(slowest, x.Slowest)
				}
			}
			if len(slowest) != 1 || s.Total.Slowest == nil || slowest[0].ID != s.Total.Slowest.ID || slowest[0].Duration != s.Total.Slowest.Duration {
				t.Fatalf("by %s, %s, exemplars=1: slowest %+v, total's %+v", by, s.Service, slowest, s.Total.Slowest)
			}
		}
		if body := e.get(t, base+"&by="+by+"&columns=true&exemplars=0").Body.String(); strings.Contains(body, "null") || !strings.Contains(body, `"exemplars":[]`) {
			t.Fatalf("by %s, columns without exemplars: want every list empty, not null: %s", by, body)
		}
		none := decodeJSON[statsAnswer](t, e.get(t, base+"&by="+by+"&exemplars=0"))
		for _, s := range none.Series {
			for _, p := range s.Points {
				if p.Slowest != nil || p.Failed != nil {
					t.Fatalf("by %s, exemplars=0: %+v", by, p)
				}
			}
		}
	}
}

// TestPercentileAndTraceDurationSearch: /api/v2/traces finds the traces of
// an operation slower than its quantile (minDurationQuantile, from the
// service metrics) and bounds the whole trace's duration apart from a
// span's (minTraceDuration, maxTraceDuration); bad values are 400s.
func TestPercentileAndTraceDurationSearch(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	e.h = query.NewRouter(query.Options{Reader: e.st, Stats: e.st})
	// 100 traces: a root of svc "op" lasting i ms, and a child starting at
	// its end lasting 100 - i ms, so every trace lasts 100 ms... except the
	// child of trace 100, which lasts 5 s.
	var b strings.Builder
	b.WriteString("[")
	start := now.Add(-time.Minute).UnixMicro()
	for i := 1; i <= 100; i++ {
		child := int64(100-i) * 1000
		if i == 100 {
			child = 5_000_000
		}
		if i > 1 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"traceId":"%016x","id":"%016x","name":"op","timestamp":%d,"duration":%d,"localEndpoint":{"serviceName":"svc"}},`, i, i, start, i*1000)
		fmt.Fprintf(&b, `{"traceId":"%016x","parentId":"%016x","id":"%016x","name":"child","timestamp":%d,"duration":%d,"localEndpoint":{"serviceName":"other"}}`, i, i, 1000+i, start+int64(i)*1000, max(child, 1))
	}
	b.WriteString("]")
	e.seed(t, b.String())
	base := "/api/v2/traces?limit=1000&endTs=" + strconv.FormatInt(now.UnixMilli(), 10) + "&lookback=600000"
	found := func(q string) []int {
		t.Helper()
		rec := e.get(t, base+q)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", q, rec.Code, rec.Body)
		}
		var ids []int
		for _, tr := range decodeJSON[[][]struct{ TraceID string }](t, rec) {
			n, err := strconv.ParseInt(tr[0].TraceID, 16, 64)
			testenv.Must(t, err)
			ids = append(ids, int(n))
		}
		slices.Sort(ids)
		return ids
	}

	// The p95 of op is 95 ms, known within the sketch's 1 %: every trace
	// whose op lasted 95 ms or more is found, none below 93 ms.
	got := found("&serviceName=svc&spanName=op&minDurationQuantile=0.95")
	if !slices.Contains(got, 95) || got[len(got)-1] != 100 || got[0] < 93 || len(got) != 100-got[0]+1 {
		t.Fatalf("slower than op's p95: %v", got)
	}
	// The same with a span name nobody used: nothing, not everything.
	if got := found("&serviceName=svc&spanName=nope&minDurationQuantile=0.95"); len(got) != 0 {
		t.Fatalf("no spans, no quantile: %v", got)
	}

	// Whole-trace durations: 99 traces last 100 ms, trace 100 lasts 5.1 s.
	if got := found("&minTraceDuration=1000000"); !slices.Equal(got, []int{100}) {
		t.Fatalf("traces of 1 s or more: %v", got)
	}
	if got := found("&serviceName=svc&minDuration=90000&maxTraceDuration=200000"); !slices.Equal(got, []int{90, 91, 92, 93, 94, 95, 96, 97, 98, 99}) {
		t.Fatalf("op of 90 ms or more in traces of at most 200 ms: %v", got)
	}

	for q, want := range map[string]string{
		"&serviceName=svc&minDurationQuantile=1.5":               "minDurationQuantile must be a number between 0 and 1",
		"&minDurationQuantile=0.9":                               "minDurationQuantile needs serviceName",
		"&serviceName=svc&minDuration=5&minDurationQuantile=0.9": "minDuration and minDurationQuantile: give one",
		"&minTraceDuration=-1":                                   "minTraceDuration must be a non-negative number of microseconds",
		"&minTraceDuration=2000&maxTraceDuration=1000":           "maxTraceDuration should be >= minTraceDuration",
	} {
		rec := e.get(t, base+q)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("%s: %d %s, want 400 %q", q, rec.Code, rec.Body, want)
		}
	}
}

// TestUsageAPI: /api/zipq/usage lists whose spans the disk holds, most
// bytes first, per service or per operation, adding up to the window's
// total; a bad parameter is a 400 naming it.
func TestUsageAPI(t *testing.T) {
	t.Parallel()
	e := newStatsAPI(t)
	type answer struct {
		Spans, Bytes int64
		Rows         []struct {
			Service      string `json:"serviceName"`
			SpanName     string
			Spans, Bytes int64
			BytesPerSpan float64
			Share        float64
		}
	}
	base := "/api/zipq/usage?lookback=600000&endTs=" + strconv.FormatInt(now.UnixMilli(), 10)
	for _, by := range []string{"", "&by=service,spanName"} {
		a := decodeJSON[answer](t, e.get(t, base+by))
		if len(a.Rows) < 3 || a.Spans != 4 || a.Bytes <= 0 {
			t.Fatalf("by %q: %+v", by, a)
		}
		var spans, bytes int64
		var share float64
		for i, r := range a.Rows {
			if i > 0 && r.Bytes > a.Rows[i-1].Bytes || r.Spans == 0 || r.BytesPerSpan != float64(r.Bytes)/float64(r.Spans) || (by != "") != (r.SpanName != "") {
				t.Fatalf("by %q: row %d %+v of %+v", by, i, r, a.Rows)
			}
			spans, bytes, share = spans+r.Spans, bytes+r.Bytes, share+r.Share
		}
		if spans != a.Spans || bytes != a.Bytes || math.Abs(share-1) > 1e-9 {
			t.Fatalf("by %q: rows add up to %d spans, %d bytes, %v of the total; answer %d, %d", by, spans, bytes, share, a.Spans, a.Bytes)
		}
	}
	if rec := e.get(t, base+"&by=colour"); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "by") {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}
