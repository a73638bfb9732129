package spanmetrics

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/zipq/zipq/zipkin"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// gather is every sample of the collector, keyed by metric name and its
// labels as name{k=v,...}, histograms as their _count, _sum and _bucket.
func gather(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, mt := range f.GetMetric() {
			var l []string
			for _, p := range mt.GetLabel() {
				l = append(l, p.GetName()+"="+p.GetValue())
			}
			key := func(suffix string, extra ...string) string {
				return f.GetName() + suffix + "{" + strings.Join(append(l, extra...), ",") + "}"
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key("")] = mt.GetCounter().GetValue()
			case dto.MetricType_HISTOGRAM:
				h := mt.GetHistogram()
				out[key("_count")] = float64(h.GetSampleCount())
				out[key("_sum")] = h.GetSampleSum()
				for _, b := range h.GetBucket() {
					out[key("_bucket", fmt.Sprintf("le=%g", b.GetUpperBound()))] = float64(b.GetCumulativeCount())
				}
			}
		}
	}
	return out
}

func randomSpans(r *rand.Rand, n int) []*zipkin.Span {
	kinds := []zipkin.Kind{zipkin.KindUnspecified, zipkin.KindClient, zipkin.KindServer, zipkin.KindProducer, zipkin.KindConsumer}
	out := make([]*zipkin.Span, n)
	for i := range out {
		sp := &zipkin.Span{
			TraceID: zipkin.TraceID{Low: r.Uint64()}, ID: zipkin.SpanID(r.Uint64() | 1),
			Name:          fmt.Sprintf("op%d", r.IntN(4)),
			Kind:          kinds[r.IntN(len(kinds))],
			LocalEndpoint: &zipkin.Endpoint{ServiceName: fmt.Sprintf("svc%d", r.IntN(3))},
			// around the bucket bounds too: 2 ms exactly belongs to le=2
			Duration: []int64{int64(r.IntN(20_000_000)), 2000, 2001, 15_000_000, 15_000_001, 1}[r.IntN(6)],
		}
		switch r.IntN(5) {
		case 0:
			sp.Tags = map[string]string{"error": "boom"}
		case 1:
			sp.Tags = map[string]string{"otel.status_code": "OK"}
		case 2:
			sp.Tags = map[string]string{"span.kind": "internal"}
		}
		out[i] = sp
	}
	return out
}

// TestSpanSeriesAgainstBruteForce: every series equals a count over the
// spans themselves, bucket by bucket, whatever the batches they came in.
func TestSpanSeriesAgainstBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	spans := randomSpans(r, 3000)
	m := New(Config{Enabled: true, MaxSeries: 1000})
	for i := 0; i < len(spans); {
		j := min(len(spans), i+1+r.IntN(200))
		m.SpansCounted("t", spans[i:j])
		i = j
	}
	got := gather(t, m)

	want := map[string]float64{}
	for _, sp := range spans {
		l := fmt.Sprintf("otel_metric_overflow=,service_name=%s,span_kind=%s,span_name=%s,status_code=%s",
			sp.LocalServiceName(), SpanKind(sp), sp.Name, StatusCode(sp))
		want["traces_span_metrics_calls_total{"+l+"}"]++
		want["traces_span_metrics_duration_milliseconds_count{"+l+"}"]++
		want["traces_span_metrics_duration_milliseconds_sum{"+l+"}"] += float64(sp.Duration) / 1000
		for _, b := range BucketsMs {
			if float64(sp.Duration)/1000 <= b {
				want[fmt.Sprintf("traces_span_metrics_duration_milliseconds_bucket{%s,le=%g}", l, b)]++
			} else {
				want[fmt.Sprintf("traces_span_metrics_duration_milliseconds_bucket{%s,le=%g}", l, b)] += 0
			}
		}
	}
	want["zipq_span_metrics_overflow_total{what=spans}"] = 0
	want["zipq_span_metrics_overflow_total{what=edges}"] = 0
	want["zipq_span_metrics_unpaired_total{}"] = 0 // random IDs: no halves match, none waited 10 s
	if len(got) != len(want) {
		t.Errorf("%d samples, want %d", len(got), len(want))
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || math.Abs(g-w) > 1e-6*math.Max(1, w) {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, w)
		}
	}
	if got[`traces_span_metrics_calls_total{otel_metric_overflow=,service_name=svc0,span_kind=SPAN_KIND_SERVER,span_name=op0,status_code=STATUS_CODE_ERROR}`] == 0 {
		t.Error("the random spans should include a failed server span of svc0 op0")
	}
}

// TestOverflow: past MaxSeries label sets, new ones go to one overflow
// series and are counted; existing series keep counting; nothing is lost.
func TestOverflow(t *testing.T) {
	m := New(Config{Enabled: true, MaxSeries: 2})
	span := func(name string) *zipkin.Span {
		return &zipkin.Span{Name: name, Kind: zipkin.KindServer, Duration: 5000, LocalEndpoint: &zipkin.Endpoint{ServiceName: "a"}}
	}
	m.SpansCounted("t", []*zipkin.Span{span("x"), span("y"), span("z"), span("w"), span("x")})
	m.LinksAdded("t", []zipkin.DependencyLink{{Parent: "a", Child: "b", CallCount: 3, ErrorCount: 1},
		{Parent: "a", Child: "c", CallCount: 2}, {Parent: "b", Child: "c", CallCount: 4, ErrorCount: 4}})
	m.LinksAdded("t", []zipkin.DependencyLink{{Parent: "a", Child: "b", CallCount: 1}})
	got := gather(t, m)
	for k, w := range map[string]float64{
		`traces_span_metrics_calls_total{otel_metric_overflow=,service_name=a,span_kind=SPAN_KIND_SERVER,span_name=x,status_code=STATUS_CODE_UNSET}`:                       2,
		`traces_span_metrics_calls_total{otel_metric_overflow=,service_name=a,span_kind=SPAN_KIND_SERVER,span_name=y,status_code=STATUS_CODE_UNSET}`:                       1,
		`traces_span_metrics_calls_total{otel_metric_overflow=true,service_name=,span_kind=,span_name=,status_code=}`:                                                      2,
		`traces_span_metrics_duration_milliseconds_bucket{otel_metric_overflow=true,service_name=,span_kind=,span_name=,status_code=,le=6}`:                                2,
		`traces_span_metrics_duration_milliseconds_bucket{otel_metric_overflow=,service_name=a,span_kind=SPAN_KIND_SERVER,span_name=x,status_code=STATUS_CODE_UNSET,le=4}`: 0,
		`zipq_span_metrics_overflow_total{what=spans}`:                                                          2,
		`traces_service_graph_request_total{client=a,connection_type=,otel_metric_overflow=,server=b}`:          4,
		`traces_service_graph_request_failed_total{client=a,connection_type=,otel_metric_overflow=,server=b}`:   1,
		`traces_service_graph_request_total{client=,connection_type=,otel_metric_overflow=true,server=}`:        4,
		`traces_service_graph_request_failed_total{client=,connection_type=,otel_metric_overflow=true,server=}`: 4,
		`zipq_span_metrics_overflow_total{what=edges}`:                                                          4,
	} {
		if got[k] != w {
			t.Errorf("%s = %v, want %v", k, got[k], w)
		}
	}
	if n := testutil.CollectAndCount(m, "traces_span_metrics_calls_total"); n != 3 {
		t.Errorf("%d call series, want 2 and the overflow", n)
	}
}

func TestValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Config{MaxSeries: 0}).Validate(); err == nil || !strings.Contains(err.Error(), "max series 0") {
		t.Fatalf("MaxSeries 0: %v", err)
	}
}

// TestInvalidUTF8: a name that is not UTF-8 (a protobuf or Thrift span
// may carry any bytes) is a valid label value, not a panic at scrape.
func TestInvalidUTF8(t *testing.T) {
	m := New(Config{Enabled: true, MaxSeries: 10})
	m.SpansCounted("t", []*zipkin.Span{{Name: "get \xff", Duration: 1, LocalEndpoint: &zipkin.Endpoint{ServiceName: "svc\xc3"}}})
	m.LinksAdded("t", []zipkin.DependencyLink{{Parent: "a\xff", Child: "b", CallCount: 1}})
	got := gather(t, m)
	if got["traces_span_metrics_calls_total{otel_metric_overflow=,service_name=svc\ufffd,span_kind=SPAN_KIND_UNSPECIFIED,span_name=get \ufffd,status_code=STATUS_CODE_UNSET}"] != 1 ||
		got["traces_service_graph_request_total{client=a\ufffd,connection_type=,otel_metric_overflow=,server=b}"] != 1 {
		t.Fatalf("%v", got)
	}
}

// TestTenants: with several tenants every series carries its tenant, each
// tenant has its own bound (MaxSeriesOf, else MaxSeries), and one
// tenant's overflow never takes another's room.
func TestTenants(t *testing.T) {
	m := New(Config{Enabled: true, MaxSeries: 2, Tenanted: true, MaxSeriesOf: map[string]int{"small": 1}})
	span := func(name string) *zipkin.Span {
		return &zipkin.Span{Name: name, Kind: zipkin.KindServer, Duration: 5000, LocalEndpoint: &zipkin.Endpoint{ServiceName: "a"}}
	}
	m.SpansCounted("small", []*zipkin.Span{span("x"), span("y"), span("z")})
	m.SpansCounted("big", []*zipkin.Span{span("x"), span("y"), span("z")})
	m.LinksAdded("big", []zipkin.DependencyLink{{Parent: "a", Child: "b", CallCount: 3}})
	got := gather(t, m)
	for k, w := range map[string]float64{
		`traces_span_metrics_calls_total{otel_metric_overflow=,service_name=a,span_kind=SPAN_KIND_SERVER,span_name=x,status_code=STATUS_CODE_UNSET,tenant=small}`: 1,
		`traces_span_metrics_calls_total{otel_metric_overflow=true,service_name=,span_kind=,span_name=,status_code=,tenant=small}`:                                2,
		`traces_span_metrics_calls_total{otel_metric_overflow=,service_name=a,span_kind=SPAN_KIND_SERVER,span_name=y,status_code=STATUS_CODE_UNSET,tenant=big}`:   1,
		`traces_span_metrics_calls_total{otel_metric_overflow=true,service_name=,span_kind=,span_name=,status_code=,tenant=big}`:                                  1,
		`zipq_span_metrics_overflow_total{tenant=small,what=spans}`:                                                                                               2,
		`zipq_span_metrics_overflow_total{tenant=big,what=spans}`:                                                                                                 1,
		`traces_service_graph_request_total{client=a,connection_type=,otel_metric_overflow=,server=b,tenant=big}`:                                                 3,
	} {
		if got[k] != w {
			t.Errorf("%s = %v, want %v", k, got[k], w)
		}
	}
}

// TestServiceGraphLatencies: the client and server halves of calls are
// paired whichever batch and order they come in — Zipkin's shared span
// IDs, and OpenTelemetry's server span a child of its client — and each
// paired call's two durations land in the edge's histograms, counted as a
// brute force over the calls counts them; halves whose other side never
// comes are dropped after the wait and counted, and the store of waiting
// halves stays bounded.
func TestServiceGraphLatencies(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	at := time.Unix(1_700_000_000, 0)
	m := New(Config{Enabled: true, MaxSeries: 1000})
	m.now = func() time.Time { return at }
	type call struct{ client, server *zipkin.Span }
	var calls []call
	var spans []*zipkin.Span
	services := []string{"web", "cart", "db-proxy"}
	for i := range 2000 {
		id := zipkin.TraceID{Low: r.Uint64()}
		caller, callee := services[r.IntN(3)], services[r.IntN(3)]
		c := &zipkin.Span{TraceID: id, ID: zipkin.SpanID(i + 1), Kind: zipkin.KindClient, Duration: 1 + r.Int64N(20_000_000),
			LocalEndpoint: &zipkin.Endpoint{ServiceName: caller}}
		s := &zipkin.Span{TraceID: id, Kind: zipkin.KindServer, Duration: 1 + r.Int64N(20_000_000),
			LocalEndpoint: &zipkin.Endpoint{ServiceName: callee}}
		if i%2 == 0 { // Zipkin: both halves under the client's ID
			s.ID, s.Shared = c.ID, true
		} else { // OpenTelemetry, B3 multi: the server is the client's child
			s.ID, s.ParentID = zipkin.SpanID(1_000_000+i), c.ID
		}
		if i%5 == 0 {
			c.Kind, s.Kind = zipkin.KindProducer, zipkin.KindConsumer
		}
		calls = append(calls, call{c, s})
		spans = append(spans, c, s)
	}
	// Halves that never meet their other side: a client nobody served,
	// a server whose client was not instrumented.
	orphans := []*zipkin.Span{
		{TraceID: zipkin.TraceID{Low: 7}, ID: 77, Kind: zipkin.KindClient, Duration: 5, LocalEndpoint: &zipkin.Endpoint{ServiceName: "web"}},
		{TraceID: zipkin.TraceID{Low: 8}, ID: 88, ParentID: 87, Kind: zipkin.KindServer, Duration: 5, LocalEndpoint: &zipkin.Endpoint{ServiceName: "cart"}},
	}
	spans = append(spans, orphans...)
	r.Shuffle(len(spans), func(i, j int) { spans[i], spans[j] = spans[j], spans[i] })
	for i := 0; i < len(spans); {
		j := min(len(spans), i+1+r.IntN(300))
		m.SpansCounted("t", spans[i:j])
		at = at.Add(100 * time.Millisecond) // all within the wait
		i = j
	}
	at = at.Add(pairWait) // the orphans expire at the next batch
	m.SpansCounted("t", nil)

	got := gather(t, m)
	want := map[string]float64{}
	for _, c := range calls {
		l := fmt.Sprintf("client=%s,connection_type=,otel_metric_overflow=,server=%s", c.client.LocalServiceName(), c.server.LocalServiceName())
		for _, side := range []struct {
			name string
			us   int64
		}{{"client", c.client.Duration}, {"server", c.server.Duration}} {
			name := "traces_service_graph_request_" + side.name + "_seconds"
			want[name+"_count{"+l+"}"]++
			want[name+"_sum{"+l+"}"] += float64(side.us) / 1e6
			for _, b := range BucketsMs {
				k := fmt.Sprintf("%s_bucket{%s,le=%g}", name, l, b/1000)
				if float64(side.us)/1000 <= b {
					want[k]++
				} else {
					want[k] += 0
				}
			}
		}
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || math.Abs(g-w) > 1e-6*math.Max(1, w) {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, w)
		}
	}
	if u := got["zipq_span_metrics_unpaired_total{}"]; u != 2 {
		t.Errorf("%v halves counted unpaired, want the 2 orphans", u)
	}
	m.mu.Lock()
	if n := len(m.byTenant["t"].pairs.waiting); n != 0 {
		t.Errorf("%d halves still waiting", n)
	}
	m.mu.Unlock()

	// Bounded: a flood of halves that never pair keeps maxUnpaired.
	flood := make([]*zipkin.Span, 3*maxUnpaired)
	for i := range flood {
		flood[i] = &zipkin.Span{TraceID: zipkin.TraceID{Low: uint64(i + 100)}, ID: zipkin.SpanID(i + 1), Kind: zipkin.KindClient,
			LocalEndpoint: &zipkin.Endpoint{ServiceName: "web"}}
	}
	m.SpansCounted("t", flood)
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := len(m.byTenant["t"].pairs.waiting); n > maxUnpaired {
		t.Errorf("%d halves waiting, bound %d", n, maxUnpaired)
	}
}
