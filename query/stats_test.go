package query_test

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"

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
	Slowest, Failed          *struct {
		TraceID  string `json:"traceId"`
		ID       string `json:"id"`
		Duration int64  `json:"duration"`
	}
}

// TestStatsAPI: /api/zipq/stats answers the metrics counted as the seed
// was stored, grouped as asked, with exemplars naming the spans.
func TestStatsAPI(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	e.h = query.NewRouter(query.Options{Reader: e.st, Stats: e.st})
	e.seed(t, apiSeed)
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
	} {
		rec := e.get(t, base+c.query)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), c.says) {
			t.Errorf("%s: %d %s; want 400 naming %s", c.query, rec.Code, rec.Body.String(), c.says)
		}
	}
}
