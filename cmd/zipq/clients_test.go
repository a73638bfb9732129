package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	zipkingo "github.com/openzipkin/zipkin-go"
	"github.com/openzipkin/zipkin-go/model"
	"github.com/openzipkin/zipkin-go/reporter"
	zipkinamqp "github.com/openzipkin/zipkin-go/reporter/amqp"
	zipkinhttp "github.com/openzipkin/zipkin-go/reporter/http"
	"go.opentelemetry.io/otel/attribute"
	otelzipkin "go.opentelemetry.io/otel/exporters/zipkin" //nolint:staticcheck // deprecated upstream, still a client users run: tested as required
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/zipq/zipq/internal/testenv"
	"github.com/zipq/zipq/zipkin"
)

// recording tees a zipkin-go reporter so the test knows exactly what the
// client sent.
type recording struct {
	reporter.Reporter
	sent []model.SpanModel
}

func (r *recording) Send(s model.SpanModel) {
	r.sent = append(r.sent, s)
	r.Reporter.Send(s)
}

// checkoutTrace is a three-service trace as zipkin-go instruments it: an
// HTTP server calling payments (client and shared server halves), which
// calls an uninstrumented database.
func checkoutTrace(t *testing.T, rep reporter.Reporter, prefix string) model.TraceID {
	t.Helper()
	tracer := func(service string) *zipkingo.Tracer {
		ep, err := zipkingo.NewEndpoint(service, "127.0.0.1:8080")
		testenv.Must(t, err)
		tr, err := zipkingo.NewTracer(rep, zipkingo.WithLocalEndpoint(ep), zipkingo.WithSharedSpans(true))
		testenv.Must(t, err)
		return tr
	}
	front, pay := tracer(prefix+"-frontend"), tracer(prefix+"-payments")
	root := front.StartSpan("get /checkout", zipkingo.Kind(model.Server), zipkingo.Tags(map[string]string{"http.method": "GET"}))
	call := front.StartSpan("post /charge", zipkingo.Kind(model.Client), zipkingo.Parent(root.Context()),
		zipkingo.RemoteEndpoint(&model.Endpoint{ServiceName: prefix + "-payments"}))
	serve := pay.StartSpan("post /charge", zipkingo.Kind(model.Server), zipkingo.Parent(call.Context()))
	db := pay.StartSpan("insert", zipkingo.Kind(model.Client), zipkingo.Parent(serve.Context()),
		zipkingo.RemoteEndpoint(&model.Endpoint{ServiceName: prefix + "-postgres"}))
	db.Tag("error", "deadlock detected")
	db.Annotate(time.Now(), "retry")
	for _, s := range []zipkingo.Span{db, serve, call, root} {
		time.Sleep(time.Millisecond)
		s.Finish()
	}
	return root.Context().TraceID
}

func getJSON(t testing.TB, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	testenv.Must(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	testenv.Must(t, err)
	if resp.StatusCode == http.StatusOK {
		testenv.Must(t, json.Unmarshal(b, v))
	}
	return resp.StatusCode
}

// sameSpans compares what a client sent with what the API returns, as
// Zipkin's model: every field, order aside.
func sameSpans(t *testing.T, sent []model.SpanModel, got []byte) {
	t.Helper()
	js, err := json.Marshal(sent)
	testenv.Must(t, err)
	want, err := zipkin.DecodeJSON(js)
	testenv.Must(t, err)
	have, err := zipkin.DecodeJSON(got)
	testenv.Must(t, err)
	key := func(s []zipkin.Span) func(i, j int) bool {
		return func(i, j int) bool {
			if s[i].ID != s[j].ID {
				return s[i].ID < s[j].ID
			}
			return !s[i].Shared && s[j].Shared
		}
	}
	sort.Slice(want, key(want))
	sort.Slice(have, key(have))
	if !reflect.DeepEqual(want, have) {
		t.Fatalf("API returned\n%s\nclient sent\n%s", got, js)
	}
}

// TestRealClientsEndToEnd sends multi-service traces with zipkin-go's HTTP
// and AMQP reporters and the OpenTelemetry SDK's Zipkin exporter into a
// running zipq (through RabbitMQ into PostgreSQL) and reads everything
// back through the API.
func TestRealClientsEndToEnd(t *testing.T) {
	t.Parallel()
	// zipkin-go's AMQP reporter always uses the fixed queue "zipkin", so the
	// test gets a vhost of its own.
	vhost := testenv.VHost(t)
	env := []string{"POSTGRES_URL=" + testenv.Schema(t), "RABBIT_URI=" + vhost, "RABBIT_PARKED_QUEUE_TYPE=classic",
		"ZIPQ_LOG_LEVEL=warn", "ZIPQ_LINK_INTERVAL=100ms", "COLLECTOR_BATCH_INTERVAL=50ms", "ZIPQ_SPAN_METRICS=true"}
	p := startZipq(t, env, "serve")
	base := "http://" + p.addr + "/api/v2"

	httpRep := &recording{Reporter: zipkinhttp.NewReporter(base+"/spans", zipkinhttp.BatchInterval(50*time.Millisecond))}
	httpTrace := checkoutTrace(t, httpRep, "h")
	testenv.Must(t, httpRep.Close())

	// zipkin-go's AMQP reporter publishes without confirms: a channel closed
	// right after publishing to a quorum queue can lose what the broker had
	// not enqueued yet (seen under CI's load). A service keeps its reporter
	// open for its lifetime, so the test closes it once the trace is stored.
	amqpInner, err := zipkinamqp.NewReporter(vhost)
	testenv.Must(t, err)
	amqpRep := &recording{Reporter: amqpInner}
	amqpTrace := checkoutTrace(t, amqpRep, "a")

	otelTrace := otelTrace(t, base+"/spans")

	for _, c := range []struct {
		name string
		id   string
		sent []model.SpanModel
	}{{"zipkin-go http", httpTrace.String(), httpRep.sent}, {"zipkin-go amqp", amqpTrace.String(), amqpRep.sent}} {
		var raw json.RawMessage
		defer func() {
			if t.Failed() {
				t.Logf("%s: the API's last answer for trace %s: %s", c.name, c.id, raw)
			}
		}()
		testenv.Eventually(t, 20*time.Second, c.name+" trace stored", func() bool {
			return getJSON(t, base+"/trace/"+c.id, &raw) == http.StatusOK && strings.Count(string(raw), `"id"`) == len(c.sent)
		})
		sameSpans(t, c.sent, raw)
	}
	testenv.Must(t, amqpRep.Close())

	var otelSpans []map[string]any
	testenv.Eventually(t, 20*time.Second, "otel trace stored", func() bool {
		return getJSON(t, base+"/trace/"+otelTrace, &otelSpans) == http.StatusOK && len(otelSpans) == 3
	})
	kinds := map[string]string{}
	for _, s := range otelSpans {
		svc := s["localEndpoint"].(map[string]any)["serviceName"].(string)
		kinds[svc+" "+s["name"].(string)] += s["kind"].(string)
		if tags, _ := s["tags"].(map[string]any); svc == "o-gateway" && s["kind"] == "SERVER" && tags["http.request.method"] != "GET" {
			t.Errorf("otel attribute lost: %v", tags)
		}
	}
	wantKinds := map[string]string{"o-gateway get /": "SERVER", "o-gateway get /items": "CLIENT", "o-catalog get /items": "SERVER"}
	if !reflect.DeepEqual(kinds, wantKinds) {
		t.Fatalf("otel spans: %v", kinds)
	}

	var services, names, remotes []string
	getJSON(t, base+"/services", &services)
	wantServices := []string{"a-frontend", "a-payments", "h-frontend", "h-payments", "o-catalog", "o-gateway"}
	if !reflect.DeepEqual(services, wantServices) {
		t.Fatalf("services %v", services)
	}
	getJSON(t, base+"/spans?serviceName=h-payments", &names)
	if !reflect.DeepEqual(names, []string{"insert", "post /charge"}) {
		t.Fatalf("span names %v", names)
	}
	getJSON(t, base+"/remoteServices?serviceName=a-frontend", &remotes)
	if !reflect.DeepEqual(remotes, []string{"a-payments"}) {
		t.Fatalf("remote services %v", remotes)
	}
	var found [][]map[string]any
	getJSON(t, base+"/traces?serviceName=h-payments&annotationQuery=error", &found)
	if len(found) != 1 || found[0][0]["traceId"] != httpTrace.String() {
		t.Fatalf("search found %d traces", len(found))
	}

	want := []zipkin.DependencyLink{
		{Parent: "a-frontend", Child: "a-payments", CallCount: 1},
		{Parent: "a-payments", Child: "a-postgres", CallCount: 1, ErrorCount: 1},
		{Parent: "h-frontend", Child: "h-payments", CallCount: 1},
		{Parent: "h-payments", Child: "h-postgres", CallCount: 1, ErrorCount: 1},
		{Parent: "o-gateway", Child: "o-catalog", CallCount: 1},
	}
	var links []zipkin.DependencyLink
	defer func() {
		if t.Failed() {
			t.Logf("the last dependency links: %+v", links)
		}
	}()
	testenv.Eventually(t, 10*time.Second, "dependency links", func() bool {
		getJSON(t, base+"/dependencies?endTs="+strconv.FormatInt(time.Now().UnixMilli(), 10), &links)
		return reflect.DeepEqual(links, want)
	})

	// The same spans and links as the connectors' Prometheus series:
	// every span counted once, the links' calls and errors per edge.
	spans := len(httpRep.sent) + len(amqpRep.sent) + len(otelSpans)
	var series map[string]float64
	testenv.Eventually(t, 10*time.Second, "span metrics", func() bool {
		series = p.metrics(t)
		return sumSeries(series, "traces_span_metrics_calls_total{") == float64(spans) &&
			sumSeries(series, "traces_service_graph_request_total{") == 5
	})
	for k, v := range map[string]float64{
		`traces_span_metrics_calls_total{otel_metric_overflow="",service_name="h-payments",span_kind="SPAN_KIND_CLIENT",span_name="insert",status_code="STATUS_CODE_ERROR"}`:                    1,
		`traces_span_metrics_duration_milliseconds_count{otel_metric_overflow="",service_name="o-catalog",span_kind="SPAN_KIND_SERVER",span_name="get /items",status_code="STATUS_CODE_UNSET"}`: 1,
		`traces_service_graph_request_failed_total{client="a-payments",connection_type="",otel_metric_overflow="",server="a-postgres"}`:                                                         1,
		`traces_service_graph_request_total{client="o-gateway",connection_type="",otel_metric_overflow="",server="o-catalog"}`:                                                                  1,
	} {
		if series[k] != v {
			t.Errorf("%s = %v, want %v", k, series[k], v)
		}
	}
	if f := sumSeries(series, "traces_service_graph_request_failed_total{"); f != 2 {
		t.Errorf("%v failed calls in the service graph, want 2", f)
	}
	if c := (fixture{dsn: env[0][len("POSTGRES_URL="):]}).counted(t); c != spans {
		t.Errorf("the service metrics counted %d spans, want %d", c, spans)
	}

	// TraceQL on what real clients sent, through Tempo's API: the mapping
	// of README's table on spans no generator of ours made.
	h, a, o := httpTrace.String(), amqpTrace.String(), otelTrace
	for q, want := range map[string][]string{
		`{ resource.service.name = "h-payments" && status = error }`:                  {h},
		`{ resource.service.name =~ "[ah]-frontend" } >> { status = error }`:          {a, h},
		`{ span.http.method = "GET" && kind = server }`:                               {a, h},
		`{ event:name = "retry" }`:                                                    {a, h},
		`{ span.peer.service = "h-payments" }`:                                        {h},
		`{ resource.service.name = "o-gateway" && span.http.request.method = "GET" }`: {o},
		`{ kind = client } > { resource.service.name = "o-catalog" }`:                 {o},
		`{ rootServiceName = "o-gateway" } | count() = 3`:                             {o},
		`{ span.http.method = 200 }`:                                                  nil, // a string compared with a number
	} {
		var got struct {
			Traces []struct {
				TraceID string `json:"traceID"`
			} `json:"traces"`
		}
		if code := getJSON(t, "http://"+p.addr+"/api/search?q="+url.QueryEscape(q), &got); code != http.StatusOK {
			t.Fatalf("%s: %d", q, code)
		}
		var ids []string
		for _, tr := range got.Traces {
			ids = append(ids, strings.TrimLeft(tr.TraceID, "0"))
		}
		slices.Sort(ids)
		var wantIDs []string
		for _, id := range want {
			wantIDs = append(wantIDs, strings.TrimLeft(id, "0"))
		}
		slices.Sort(wantIDs)
		if !slices.Equal(ids, wantIDs) {
			t.Errorf("%s: found %v, want %v", q, ids, wantIDs)
		}
	}
}

// otelTrace records gateway → catalog with the OpenTelemetry SDK and its
// Zipkin exporter (two tracer providers, as two processes would have).
func otelTrace(t *testing.T, url string) string {
	t.Helper()
	provider := func(service string) *sdktrace.TracerProvider {
		exp, err := otelzipkin.New(url)
		testenv.Must(t, err)
		return sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
			sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))))
	}
	gw, cat := provider("o-gateway"), provider("o-catalog")
	ctx := context.Background()
	ctx, root := gw.Tracer("test").Start(ctx, "GET /", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", "GET")))
	_, call := gw.Tracer("test").Start(ctx, "GET /items", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("peer.service", "o-catalog")))
	remote := trace.ContextWithRemoteSpanContext(context.Background(), call.SpanContext())
	_, serve := cat.Tracer("test").Start(remote, "GET /items", trace.WithSpanKind(trace.SpanKindServer))
	serve.End()
	call.End()
	root.End()
	testenv.Must(t, gw.Shutdown(ctx))
	testenv.Must(t, cat.Shutdown(ctx))
	return root.SpanContext().TraceID().String()
}

// TestSelfTracing: with SELF_TRACING_ENABLED zipq's API requests and batch
// writes show up as service "zipq", and tracing its own batches does not
// feed itself.
func TestSelfTracing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	otlpAddr := freeAddr(t)
	p := startZipq(t, append(f.env, "SELF_TRACING_ENABLED=true", "COLLECTOR_BATCH_INTERVAL=50ms", "ZIPQ_OTLP_HTTP_ADDR="+otlpAddr), "serve")
	base := "http://" + p.addr + "/api/v2"
	resp, err := http.Post(base+"/spans", "application/json",
		strings.NewReader(`[{"traceId":"1","id":"1","name":"app","localEndpoint":{"serviceName":"app"},"timestamp":`+strconv.FormatInt(time.Now().UnixMicro(), 10)+`}]`))
	testenv.Must(t, err)
	resp.Body.Close()
	// OTLP export requests are traced too (an empty one: nothing to store).
	resp, err = http.Post("http://"+otlpAddr+"/v1/traces", "application/json", strings.NewReader(`{}`))
	testenv.Must(t, err)
	resp.Body.Close()
	var names []string
	testenv.Eventually(t, 20*time.Second, "zipq's own spans", func() bool {
		getJSON(t, base+"/spans?serviceName=zipq", &names)
		return reflect.DeepEqual(names, []string{"get /api/v2/spans", "post /api/v2/spans", "post /v1/traces", "write batch"})
	})
	// Only batches holding someone else's spans are traced: one here.
	var found [][]map[string]any
	getJSON(t, base+"/traces?serviceName=zipq&spanName=write+batch", &found)
	if len(found) != 1 {
		t.Fatalf("%d write-batch traces, want 1 (self-tracing must not trace its own batches)", len(found))
	}
}
