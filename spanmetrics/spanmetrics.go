// Package spanmetrics exposes the spans zipq stores as the Prometheus
// series of the OpenTelemetry Collector's spanmetrics and servicegraph
// connectors, so that Jaeger's Monitor tab, Grafana's service graph and
// dashboards written for those connectors work against a Prometheus that
// scrapes zipq's /metrics.
//
// It counts what storage counted (storage.Observer): each span once,
// after its batch committed, and each dependency edge's calls as the
// linker adds them, paired from both sides of the call. Series are
// bounded: past MaxSeries distinct label sets, spans are counted in one
// overflow series per metric (the connector's otel.metric.overflow="true")
// and in zipq_span_metrics_overflow_spans_total, so memory never grows
// with the number of operations.
package spanmetrics

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zipq/zipq/internal/tenant"
	"github.com/zipq/zipq/zipkin"
)

// Config is the exporter's settings; DefaultConfig is their one source.
type Config struct {
	// Enabled exposes the series (ZIPQ_SPAN_METRICS). Off by default: a
	// scrape of thousands of histograms is not free, and most installs
	// read the same figures from zipq's own Services page.
	Enabled bool
	// MaxSeries bounds the distinct (service, span name, kind, status)
	// label sets, and separately the (client, server) edges, of each
	// tenant.
	MaxSeries int
	// Tenanted labels every series with its tenant (an installation with
	// several); MaxSeriesOf gives a tenant a bound of its own.
	Tenanted    bool
	MaxSeriesOf map[string]int
}

// DefaultConfig is off, with the connector's default cardinality limit
// raised from unlimited to a bound.
func DefaultConfig() Config { return Config{MaxSeries: 5000} }

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.MaxSeries < 1 {
		errs = append(errs, fmt.Errorf("span metrics max series %d: want at least 1", c.MaxSeries))
	}
	return errors.Join(errs...)
}

// BucketsMs are the duration histogram's upper bounds in milliseconds:
// the spanmetrics connector's defaults, so its dashboards' le values match.
var BucketsMs = []float64{2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10000, 15000}

// Label values of what does not fit under MaxSeries.
const overflowLabel = "otel_metric_overflow"

type spanKey struct {
	service, name, kind, status string
}

// histogram is durations counted in BucketsMs: a span series', and each
// side of an edge's paired calls.
type histogram struct {
	count   uint64
	sumMs   float64
	buckets []uint64 // per BucketsMs bound, not cumulative; the last is +Inf
}

func newHistogram() *histogram { return &histogram{buckets: make([]uint64, len(BucketsMs)+1)} }

func (h *histogram) observe(us int64) {
	ms := float64(us) / 1000
	h.count++
	h.sumMs += ms
	h.buckets[sort.SearchFloat64s(BucketsMs, ms)]++
}

// clone is a copy for Collect to send without the lock; nil stays nil.
func (h *histogram) clone() *histogram {
	if h == nil {
		return nil
	}
	c := *h
	c.buckets = slices.Clone(h.buckets)
	return &c
}

// metric is h as a Prometheus histogram in ms (unit 1) or seconds (1000).
func (h *histogram) metric(d *prometheus.Desc, unit float64, labels []string) prometheus.Metric {
	cum, buckets := uint64(0), make(map[float64]uint64, len(BucketsMs))
	for i, b := range BucketsMs {
		cum += h.buckets[i]
		buckets[b/unit] = cum
	}
	return prometheus.MustNewConstHistogram(d, h.count, h.sumMs/unit, buckets, labels...)
}

type edgeKey struct{ client, server string }

type edgeSeries struct {
	calls, failed uint64
	// The paired calls' durations (pairs.go); nil until a call is paired.
	client, server *histogram
}

// Metrics is a prometheus.Collector of the span and service graph series.
type Metrics struct {
	cfg Config

	mu       sync.Mutex
	byTenant map[string]*series

	calls, duration, requests, failed, overflow *prometheus.Desc
	clientSeconds, serverSeconds, unpaired      *prometheus.Desc
	now                                         func() time.Time
}

// series are one tenant's.
type series struct {
	max      int
	spans    map[spanKey]*histogram
	spanOver *histogram
	edges    map[edgeKey]*edgeSeries
	edgeOver *edgeSeries
	// spans and edge calls counted in the overflow series
	overSpans, overEdges uint64
	// halves of calls waiting for the other (pairs.go), and how many
	// never met it
	pairs    pairs
	unpaired uint64
}

// New returns an empty collector; register it and pass it to
// storage.Store.SetObserver.
func New(cfg Config) *Metrics {
	labels := []string{"service_name", "span_name", "span_kind", "status_code", overflowLabel}
	edge := []string{"client", "server", "connection_type", overflowLabel}
	over := []string{"what"}
	if cfg.Tenanted {
		labels, edge, over = append(labels, "tenant"), append(edge, "tenant"), append(over, "tenant")
	}
	return &Metrics{
		cfg:      cfg,
		byTenant: map[string]*series{},
		calls: prometheus.NewDesc("traces_span_metrics_calls_total",
			"Spans stored, by service, span name, kind and status (as the OpenTelemetry Collector's spanmetrics connector counts them).", labels, nil),
		duration: prometheus.NewDesc("traces_span_metrics_duration_milliseconds",
			"Durations of the spans stored, in milliseconds.", labels, nil),
		requests: prometheus.NewDesc("traces_service_graph_request_total",
			"Calls between services, from dependency links (both sides of a call paired), as the servicegraph connector names them.", edge, nil),
		failed: prometheus.NewDesc("traces_service_graph_request_failed_total",
			"Failed calls between services.", edge, nil),
		overflow: prometheus.NewDesc("zipq_span_metrics_overflow_total",
			"Spans (what=spans) and edge calls (what=edges) counted in an overflow series because MaxSeries label sets existed already.", over, nil),
		clientSeconds: prometheus.NewDesc("traces_service_graph_request_client_seconds",
			"Durations of calls between services as their clients saw them, in seconds, from the client and server spans of a call paired as they were stored.", edge, nil),
		serverSeconds: prometheus.NewDesc("traces_service_graph_request_server_seconds",
			"Durations of calls between services as their servers saw them, in seconds.", edge, nil),
		unpaired: prometheus.NewDesc("zipq_span_metrics_unpaired_total",
			"Client or server halves of calls whose other half was not stored by this process within 10 s (or that waited among 10,000 others): in no latency histogram.", over[1:], nil),
		now: time.Now,
	}
}

// SpanKind is the span_kind label of a Zipkin span: the OpenTelemetry
// kind its zipkin receiver gives it.
func SpanKind(sp *zipkin.Span) string {
	switch sp.Kind {
	case zipkin.KindClient:
		return "SPAN_KIND_CLIENT"
	case zipkin.KindServer:
		return "SPAN_KIND_SERVER"
	case zipkin.KindProducer:
		return "SPAN_KIND_PRODUCER"
	case zipkin.KindConsumer:
		return "SPAN_KIND_CONSUMER"
	}
	if sp.Tags["span.kind"] == "internal" {
		return "SPAN_KIND_INTERNAL"
	}
	return "SPAN_KIND_UNSPECIFIED"
}

// StatusCode is the status_code label: error as zipkin.Span.Failed
// decides (what the Services page counts), OK where OTLP said so.
func StatusCode(sp *zipkin.Span) string {
	switch {
	case sp.Failed():
		return "STATUS_CODE_ERROR"
	case sp.Tags["otel.status_code"] == "OK" || sp.Tags["otel.status_code"] == "STATUS_CODE_OK":
		return "STATUS_CODE_OK"
	}
	return "STATUS_CODE_UNSET"
}

// of is tenant's series (the caller holds the lock).
func (m *Metrics) of(tenant string) *series {
	t := m.byTenant[tenant]
	if t == nil {
		t = &series{max: m.cfg.MaxSeries, spans: map[spanKey]*histogram{}, edges: map[edgeKey]*edgeSeries{},
			pairs: pairs{waiting: map[callKey]half{}}}
		if n := m.cfg.MaxSeriesOf[tenant]; n > 0 {
			t.max = n
		}
		m.byTenant[tenant] = t
	}
	return t
}

// SpansCounted counts a tenant's spans (storage.Observer).
func (m *Metrics) SpansCounted(tenant string, spans []*zipkin.Span) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.of(tenant)
	for _, sp := range spans {
		k := spanKey{label(sp.LocalServiceName()), label(sp.Name), SpanKind(sp), StatusCode(sp)}
		s := t.spans[k]
		if s == nil {
			if len(t.spans) >= t.max {
				if t.spanOver == nil {
					t.spanOver = newHistogram()
				}
				s = t.spanOver
				t.overSpans++
			} else {
				s = newHistogram()
				t.spans[k] = s
			}
		}
		s.observe(sp.Duration)
	}
	now := m.now()
	t.unpaired += uint64(t.pairs.expire(now, pairWait, maxUnpaired))
	for _, sp := range spans {
		client, server, ok := t.pairs.pair(sp, now)
		if !ok {
			continue
		}
		e := t.edge(edgeKey{label(client.service), label(server.service)}, 0)
		if e.client == nil {
			e.client, e.server = newHistogram(), newHistogram()
		}
		e.client.observe(client.us)
		e.server.observe(server.us)
	}
	t.unpaired += uint64(t.pairs.expire(now, pairWait, maxUnpaired))
}

// edge is the series of an edge, or the overflow series when MaxSeries
// edges exist already (calls counted there are added to overEdges).
func (t *series) edge(k edgeKey, calls int64) *edgeSeries {
	e := t.edges[k]
	if e != nil {
		return e
	}
	if len(t.edges) >= t.max {
		if t.edgeOver == nil {
			t.edgeOver = &edgeSeries{}
		}
		t.overEdges += uint64(calls)
		return t.edgeOver
	}
	e = &edgeSeries{}
	t.edges[k] = e
	return e
}

// label is a label value Prometheus accepts: valid UTF-8 (a span decoded
// from protobuf or Thrift may carry any bytes, and a constant metric with
// an invalid label value would panic the scrape).
func label(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// LinksAdded counts a tenant's dependency calls (storage.Observer).
func (m *Metrics) LinksAdded(tenant string, links []zipkin.DependencyLink) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.of(tenant)
	for _, l := range links {
		e := t.edge(edgeKey{label(l.Parent), label(l.Child)}, l.CallCount)
		e.calls += uint64(l.CallCount)
		e.failed += uint64(l.ErrorCount)
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.calls, m.duration, m.requests, m.failed, m.overflow, m.clientSeconds, m.serverSeconds, m.unpaired} {
		ch <- d
	}
}

// Collect implements prometheus.Collector; the lock is held while the
// series are copied, not while they are sent.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	type spanRow struct {
		labels []string
		s      *histogram
	}
	type edgeRow struct {
		labels []string
		e      edgeSeries
	}
	type overRow struct {
		labels                []string
		spans, edge, unpaired uint64
	}
	var spans []spanRow
	var edges []edgeRow
	var overs []overRow
	m.mu.Lock()
	if len(m.byTenant) == 0 {
		m.of(tenant.Default) // the overflow counters from the start, at 0
	}
	for name, t := range m.byTenant {
		with := func(l ...string) []string {
			if m.cfg.Tenanted {
				return append(l, name)
			}
			return l
		}
		for k, s := range t.spans {
			spans = append(spans, spanRow{with(k.service, k.name, k.kind, k.status, ""), s.clone()})
		}
		if t.spanOver != nil {
			spans = append(spans, spanRow{with("", "", "", "", "true"), t.spanOver.clone()})
		}
		for k, e := range t.edges {
			edges = append(edges, edgeRow{with(k.client, k.server, "", ""), copyEdge(e)})
		}
		if t.edgeOver != nil {
			edges = append(edges, edgeRow{with("", "", "", "true"), copyEdge(t.edgeOver)})
		}
		overs = append(overs, overRow{with(), t.overSpans, t.overEdges, t.unpaired})
	}
	m.mu.Unlock()

	for _, r := range spans {
		ch <- prometheus.MustNewConstMetric(m.calls, prometheus.CounterValue, float64(r.s.count), r.labels...)
		ch <- r.s.metric(m.duration, 1, r.labels)
	}
	for _, r := range edges {
		ch <- prometheus.MustNewConstMetric(m.requests, prometheus.CounterValue, float64(r.e.calls), r.labels...)
		ch <- prometheus.MustNewConstMetric(m.failed, prometheus.CounterValue, float64(r.e.failed), r.labels...)
		if r.e.client != nil {
			ch <- r.e.client.metric(m.clientSeconds, 1000, r.labels)
			ch <- r.e.server.metric(m.serverSeconds, 1000, r.labels)
		}
	}
	for _, o := range overs {
		ch <- prometheus.MustNewConstMetric(m.overflow, prometheus.CounterValue, float64(o.spans), append([]string{"spans"}, o.labels...)...)
		ch <- prometheus.MustNewConstMetric(m.overflow, prometheus.CounterValue, float64(o.edge), append([]string{"edges"}, o.labels...)...)
		ch <- prometheus.MustNewConstMetric(m.unpaired, prometheus.CounterValue, float64(o.unpaired), o.labels...)
	}
}

func copyEdge(e *edgeSeries) edgeSeries {
	c := *e
	c.client, c.server = e.client.clone(), e.server.clone()
	return c
}
