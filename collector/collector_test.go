package collector_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openzipkin/zipkin-go/model"
	zipkinamqp "github.com/openzipkin/zipkin-go/reporter/amqp"
	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.uber.org/goleak"

	"github.com/zipq/zipq/broker"
	"github.com/zipq/zipq/collector"
	"github.com/zipq/zipq/ingest"
	"github.com/zipq/zipq/internal/testenv"
	"github.com/zipq/zipq/storage"
	"github.com/zipq/zipq/zipkin"
)

func TestMain(m *testing.M) {
	testenv.VerifyNoLeaks(m,
		// zipkin-go's AMQP reporter never stops its error goroutine (its Close
		// leaves the error channel open); the client is what we test against.
		goleak.IgnoreTopFunction("github.com/openzipkin/zipkin-go/reporter/amqp.(*rmqReporter).logErrors"),
	)
}

type env struct {
	t     *testing.T
	store *storage.Store
	dsn   string
	cfg   collector.Config
	lim   ingest.Limits // what start's collectors decode messages with
	reg   *prometheus.Registry
}

// newEnv gives a test its own schema and queue; storeURL overrides the DSN
// the collector writes through (a fault proxy).
func newEnv(t *testing.T, cfg collector.Config) *env {
	t.Helper()
	dsn := testenv.Schema(t)
	st, err := storage.Open(context.Background(), storage.Config{URL: dsn}, nil)
	testenv.Must(t, err)
	t.Cleanup(st.Close)
	if cfg.Broker.URL == "" {
		cfg.Broker.URL = testenv.AMQPURL()
	}
	if cfg.Broker.Queue == "" {
		cfg.Broker.Queue = testenv.Queue(t)
	}
	cfg.Broker.ParkedQueueType = "classic"
	if cfg.Broker.ManagementURL == "" {
		// Never a policy in the shared vhost "/": only tests on a vhost
		// of their own give the management API.
		cfg.Broker.ManagementURL = broker.ManagementOff
	}
	return &env{t: t, store: st, dsn: dsn, cfg: cfg.WithDefaults(), lim: ingest.DefaultLimits()}
}

// start runs a collector until the test ends and checks it stopped cleanly.
func (e *env) start(cfg collector.Config, w collector.SpanWriter) *collector.Collector {
	e.t.Helper()
	e.reg = prometheus.NewRegistry() // the latest collector's metrics
	c, err := collector.New(cfg, e.lim, w, nil, e.reg)
	testenv.Must(e.t, err)
	errc := make(chan error, 1)
	go func() { errc <- c.Run(context.Background()) }()
	e.t.Cleanup(func() {
		c.Stop()
		if err := <-errc; err != nil {
			e.t.Errorf("Run: %v", err)
		}
	})
	testenv.Eventually(e.t, 10*time.Second, "collector connected", c.Connected)
	return c
}

// count is the number of distinct spans readers see.
func (e *env) count() int {
	_, n, err := e.store.CountSpans(context.Background())
	if err != nil {
		return -1
	}
	return n
}

// waitCount waits for n spans stored (cheaply, by the segments' counts),
// then for n distinct spans (CountSpans decodes every segment: every
// 250 ms, not every 20), and fails unless exactly n are stored.
func (e *env) waitCount(n int, timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	testenv.StoredAtLeast(e.t, e.dsn, n, timeout)
	testenv.EventuallyEvery(e.t, max(time.Until(deadline), time.Second), 250*time.Millisecond,
		fmt.Sprintf("%d distinct spans stored", n), func() bool { return e.count() >= n })
	if got := e.count(); got != n {
		e.t.Fatalf("%d spans stored, want exactly %d", got, n)
	}
}

// publish sends bodies as Brave does: default exchange, routing key = queue.
func publish(t *testing.T, url, queue string, bodies ...[]byte) {
	t.Helper()
	msgs := make([]amqp.Publishing, len(bodies))
	for i, b := range bodies {
		msgs[i] = amqp.Publishing{Body: b}
	}
	publishMessages(t, url, queue, msgs...)
}

// publishMessages is publish with each message's properties given.
func publishMessages(t *testing.T, url, queue string, msgs ...amqp.Publishing) {
	t.Helper()
	conn, err := amqp.Dial(url)
	testenv.Must(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	testenv.Must(t, err)
	testenv.Must(t, ch.Confirm(false))
	// Declare as zipkin-go does, so the queue exists before the collector.
	_, err = ch.QueueDeclare(queue, true, false, false, false, nil)
	testenv.Must(t, err)
	for i, m := range msgs {
		conf, err := ch.PublishWithDeferredConfirm("", queue, false, false, m)
		testenv.Must(t, err)
		if i%500 == 499 || i == len(msgs)-1 {
			if ok, err := conf.WaitContext(context.Background()); !ok || err != nil {
				t.Fatalf("publish not confirmed: %v", err)
			}
		}
	}
}

var seq atomic.Uint64

// spansBody makes n spans of one trace in the given format.
func spansBody(t *testing.T, f zipkin.Format, trace uint64, n int) []byte {
	t.Helper()
	spans := make([]zipkin.Span, n)
	now := time.Now().UnixMicro()
	for i := range spans {
		spans[i] = zipkin.Span{
			TraceID: zipkin.TraceID{Low: trace}, ID: zipkin.SpanID(seq.Add(1)), Name: "op", Kind: zipkin.KindServer,
			Timestamp: now, Duration: 100 + int64(i),
			LocalEndpoint: &zipkin.Endpoint{ServiceName: "svc"},
			Tags:          map[string]string{"i": fmt.Sprint(i)},
		}
	}
	b, err := zipkin.Encode(f, spans)
	testenv.Must(t, err)
	return b
}

func TestZipkinGoAMQPReporterFieldsIntact(t *testing.T) {
	t.Parallel()
	url := testenv.VHost(t) // zipkin-go always uses the fixed queue "zipkin"
	e := newEnv(t, collector.Config{Broker: broker.Config{URL: url, Queue: "zipkin"}})
	e.start(e.cfg, e.store)

	rep, err := zipkinamqp.NewReporter(url)
	testenv.Must(t, err)
	parent := model.ID(0x1111)
	now := time.UnixMicro(time.Now().UnixMicro())
	sent := []model.SpanModel{
		{
			SpanContext: model.SpanContext{TraceID: model.TraceID{High: 0xabc, Low: 0xdef}, ID: 0x2222, ParentID: &parent, Debug: true},
			Name:        "GET /Users", Kind: model.Client, Timestamp: now, Duration: 1500 * time.Microsecond,
			LocalEndpoint:  &model.Endpoint{ServiceName: "frontend", IPv4: []byte{10, 0, 0, 1}, Port: 8080},
			RemoteEndpoint: &model.Endpoint{ServiceName: "users", IPv6: []byte{0x20, 1, 0xd, 0xb8, 15: 1}, Port: 9000},
			Annotations:    []model.Annotation{{Timestamp: now.Add(time.Millisecond), Value: "ws"}},
			Tags:           map[string]string{"http.method": "GET", "error": "500"},
		},
		{
			SpanContext: model.SpanContext{TraceID: model.TraceID{High: 0xabc, Low: 0xdef}, ID: 0x2222, ParentID: &parent},
			Name:        "get /users", Kind: model.Server, Timestamp: now.Add(100 * time.Microsecond), Duration: time.Millisecond,
			Shared: true, LocalEndpoint: &model.Endpoint{ServiceName: "users"},
		},
	}
	for _, s := range sent {
		rep.Send(s)
	}
	testenv.Must(t, rep.Close())

	e.waitCount(2, 20*time.Second)
	body, err := json.Marshal(sent)
	testenv.Must(t, err)
	want, _, err := zipkin.Decode(body)
	testenv.Must(t, err)
	traces, err := e.store.Traces(t.Context(), []zipkin.TraceID{want[0].TraceID}, true)
	testenv.Must(t, err)
	if len(traces) != 1 {
		t.Fatalf("%d traces", len(traces))
	}
	got := traces[0]
	bySharedFlag := func(s []zipkin.Span) { sort.Slice(s, func(i, j int) bool { return !s[i].Shared && s[j].Shared }) }
	bySharedFlag(got)
	bySharedFlag(want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("stored spans differ from sent:\n got %+v\nwant %+v", got, want)
	}
	if !got[0].Debug || !got[1].Shared || got[0].RemoteEndpoint.Port != 9000 || got[0].Tags["error"] != "500" {
		t.Fatalf("flags lost: %+v", got)
	}
}

func TestBraveStyleMultiSpanMessages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, collector.Config{BatchSpans: 250})
	e.start(e.cfg, e.store)
	var bodies [][]byte
	for i := range 20 {
		f := zipkin.FormatJSON
		if i%2 == 1 {
			f = zipkin.FormatProto3
		}
		bodies = append(bodies, spansBody(t, f, uint64(1000+i), 100))
	}
	publish(t, e.cfg.Broker.URL, e.cfg.Broker.Queue, bodies...)
	e.waitCount(2000, 30*time.Second)
	if got := metric(t, e.reg, "zipq_collector_messages_received_total"); got != 20 {
		t.Errorf("messages received metric %v", got)
	}
}

// metric sums every series of a counter or gauge in reg.
func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	testenv.Must(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
		return sum
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

func TestMalformedMessagesAreParkedThenReplayed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, collector.Config{})
	e.lim.MaxBytes = 2000
	c := e.start(e.cfg, e.store)
	_ = c
	big := spansBody(t, zipkin.FormatJSON, 7, 20) // > 2000 bytes
	bad := map[zipkin.Reason][]byte{
		zipkin.ReasonEmpty:          {},
		zipkin.ReasonUnknownFormat:  []byte("hello"),
		zipkin.ReasonUnsupported:    []byte(`[{"traceId":"1","id":"1","binaryAnnotations":[]}]`),
		zipkin.ReasonMalformedJSON:  []byte(`[{"traceId":"1"`),
		zipkin.ReasonWrongType:      []byte(`[{"traceId":12345,"id":"1"}]`),
		zipkin.ReasonMalformedProto: []byte("\x0a\xff\xff"),
		zipkin.ReasonMissingTraceID: []byte(`[{"id":"1"}]`),
		zipkin.ReasonInvalidTraceID: []byte(`[{"traceId":"xyz","id":"1"}]`),
		zipkin.ReasonMissingSpanID:  []byte(`[{"traceId":"1"}]`),
		zipkin.ReasonInvalidSpanID:  []byte(`[{"traceId":"1","id":"nothex"}]`),
		zipkin.ReasonInvalidField:   []byte(`[{"traceId":"1","id":"1","kind":"SIDEWAYS"}]`),
		zipkin.ReasonTooLarge:       big,
	}
	var bodies [][]byte
	for _, b := range bad {
		bodies = append(bodies, b, spansBody(t, zipkin.FormatJSON, 8, 1)) // good ones interleaved
	}
	publish(t, e.cfg.Broker.URL, e.cfg.Broker.Queue, bodies...)
	e.waitCount(len(bad), 20*time.Second) // bad messages did not block the good

	conn := testenv.Dial(t)
	testenv.Eventually(t, 10*time.Second, "all bad messages parked", func() bool {
		q, err := broker.Inspect(conn, e.cfg.Broker.ParkedQueue)
		return err == nil && q.Messages == len(bad)
	})
	// Every parked message says why, and keeps its body.
	ch, err := conn.Channel()
	testenv.Must(t, err)
	seen := map[zipkin.Reason]bool{}
	for range bad {
		d, ok, err := ch.Get(e.cfg.Broker.ParkedQueue, false)
		if err != nil || !ok {
			t.Fatalf("get parked: %v %v", ok, err)
		}
		r := broker.ParkedReason(d.Headers)
		seen[r] = true
		if string(d.Body) != string(bad[r]) {
			t.Errorf("%s: parked body changed", r)
		}
		if d.Headers[broker.HeaderParkedAt] == nil || d.Headers[broker.HeaderError] == nil ||
			d.Headers[broker.HeaderSourceQueue] != e.cfg.Broker.Queue {
			t.Errorf("%s: headers %v", r, d.Headers)
		}
	}
	testenv.Must(t, ch.Close()) // unacked: back to the parking queue
	for r := range bad {
		if !seen[r] {
			t.Errorf("nothing parked for %s", r)
		}
	}

	// Fix the cause (raise the size limit) and replay only the too-large one.
	c.Stop()
	cfg := e.cfg
	e.lim.MaxBytes = 1 << 20
	e.start(cfg, e.store)
	n, err := broker.Replay(t.Context(), conn, cfg.Broker, broker.ReplayOptions{Reason: zipkin.ReasonTooLarge})
	testenv.Must(t, err)
	if n != 1 {
		t.Fatalf("replayed %d, want 1", n)
	}
	e.waitCount(len(bad)+20, 20*time.Second)
	q, err := broker.Inspect(conn, e.cfg.Broker.ParkedQueue)
	testenv.Must(t, err)
	if q.Messages != len(bad)-1 {
		t.Fatalf("%d left parked, want %d (unselected ones must stay)", q.Messages, len(bad)-1)
	}
	// Replay with a limit moves exactly that many; the rest park again.
	n, err = broker.Replay(t.Context(), conn, cfg.Broker, broker.ReplayOptions{Limit: 3})
	testenv.Must(t, err)
	if n != 3 {
		t.Fatalf("replayed %d, want 3", n)
	}
	testenv.Eventually(t, 10*time.Second, "replayed bad messages parked again", func() bool {
		q, err := broker.Inspect(conn, e.cfg.Broker.ParkedQueue)
		return err == nil && q.Messages == len(bad)-1
	})
	// Replaying everything while the causes are unfixed moves each message
	// once: the ones parked again behind them are not picked up again.
	n, err = broker.Replay(t.Context(), conn, cfg.Broker, broker.ReplayOptions{})
	testenv.Must(t, err)
	if n != len(bad)-1 {
		t.Fatalf("replayed %d, want %d (each parked message once)", n, len(bad)-1)
	}
}

func TestDatabaseOutageLosesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, collector.Config{BatchSpans: 200, RetryMax: 200 * time.Millisecond})
	proxy := testenv.NewProxy(t, "127.0.0.1:5432")
	viaProxy := strings.Replace(e.dsn, "127.0.0.1:5432", proxy.Addr(), 1)
	st, err := storage.Open(context.Background(), storage.Config{URL: viaProxy}, nil)
	testenv.Must(t, err)
	t.Cleanup(st.Close)
	e.start(e.cfg, st)

	const messages = 60
	for i := range messages {
		publish(t, e.cfg.Broker.URL, e.cfg.Broker.Queue, spansBody(t, zipkin.FormatJSON, uint64(500+i), 50))
		if i == 20 {
			proxy.Cut()
		}
		if i == 40 {
			time.Sleep(time.Second) // the collector retries against a dead database meanwhile
			proxy.Restore()
		}
	}
	e.waitCount(messages*50, 60*time.Second)
	if got := metric(t, e.reg, "zipq_collector_write_retries_total"); got == 0 {
		t.Error("no retries recorded: the outage did not hit the write path")
	}
}

func TestRabbitMQConnectionDropReconnects(t *testing.T) {
	t.Parallel()
	e := newEnv(t, collector.Config{})
	proxy := testenv.NewProxy(t, "127.0.0.1:5672")
	cfg := e.cfg
	cfg.Broker.URL = strings.Replace(testenv.AMQPURL(), "127.0.0.1:5672", proxy.Addr(), 1)
	cfg.RetryMax = 200 * time.Millisecond
	c := e.start(cfg, e.store)

	publish(t, e.cfg.Broker.URL, e.cfg.Broker.Queue, spansBody(t, zipkin.FormatJSON, 1, 100))
	e.waitCount(100, 20*time.Second)
	proxy.Cut()
	testenv.Eventually(t, 10*time.Second, "collector notices the drop", func() bool { return !c.Connected() })
	publish(t, e.cfg.Broker.URL, e.cfg.Broker.Queue, spansBody(t, zipkin.FormatProto3, 2, 100)) // publishers are unaffected
	time.Sleep(300 * time.Millisecond)
	proxy.Restore()
	e.waitCount(200, 30*time.Second)
}

func TestStopCommitsAndAcksInFlight(t *testing.T) {
	t.Parallel()
	// A long batch interval: spans sit in an open batch when Stop comes.
	e := newEnv(t, collector.Config{BatchInterval: time.Hour, BatchSpans: 1 << 20})
	c := e.start(e.cfg, e.store)
	publish(t, e.cfg.Broker.URL, e.cfg.Broker.Queue, spansBody(t, zipkin.FormatJSON, 3, 10), spansBody(t, zipkin.FormatJSON, 4, 10))
	conn := testenv.Dial(t)
	testenv.Eventually(t, 10*time.Second, "messages delivered", func() bool {
		q, err := broker.Inspect(conn, e.cfg.Broker.Queue)
		return err == nil && q.Messages == 0
	})
	c.Stop()
	if n := e.count(); n != 20 {
		t.Fatalf("after Stop %d spans stored, want 20", n)
	}
	q, err := broker.Inspect(conn, e.cfg.Broker.Queue)
	testenv.Must(t, err)
	if q.Messages != 0 {
		t.Fatalf("%d messages back in the queue: Stop did not ack after commit", q.Messages)
	}
}

// refusing is a writer whose store refuses one trace's spans outright.
type refusing struct{ collector.SpanWriter }

type permanentErr struct{}

func (permanentErr) Error() string   { return "refused" }
func (permanentErr) Permanent() bool { return true }

func (r refusing) WriteSpans(ctx context.Context, spans []zipkin.Span) error {
	for _, s := range spans {
		if s.TraceID.Low == 666 {
			return permanentErr{}
		}
	}
	return r.SpanWriter.WriteSpans(ctx, spans)
}

func TestStoreRefusalParksOnlyTheCulprit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, collector.Config{BatchInterval: 500 * time.Millisecond})
	e.start(e.cfg, refusing{e.store})
	publish(t, e.cfg.Broker.URL, e.cfg.Broker.Queue,
		spansBody(t, zipkin.FormatJSON, 1, 5), spansBody(t, zipkin.FormatJSON, 666, 5), spansBody(t, zipkin.FormatJSON, 2, 5))
	e.waitCount(10, 20*time.Second)
	conn := testenv.Dial(t)
	testenv.Eventually(t, 10*time.Second, "culprit parked", func() bool {
		q, err := broker.Inspect(conn, e.cfg.Broker.ParkedQueue)
		return err == nil && q.Messages == 1
	})
}

// TestPrefetchFollowsMessageSize: with no fixed RABBIT_PREFETCH the window
// is sized in bytes. One-span messages (zipkin-go's AMQP reporter) raise
// the prefetch count far past its start, so batches are not capped at half
// of 1,000 messages; large messages lower it, so memory stays bounded.
func TestPrefetchFollowsMessageSize(t *testing.T) {
	t.Parallel()
	t.Run("tiny messages batch like big ones", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, collector.Config{BatchInterval: 2 * time.Second})
		bodies := make([][]byte, 20000)
		for i := range bodies {
			bodies[i] = spansBody(t, zipkin.FormatJSON, uint64(i+1), 1)
		}
		publish(t, e.cfg.Broker.URL, e.cfg.Broker.Queue, bodies...)
		e.start(e.cfg, e.store)
		e.waitCount(len(bodies), 60*time.Second)
		if p := metric(t, e.reg, "zipq_collector_prefetch"); p < 10000 {
			t.Fatalf("prefetch %v: the window did not grow for ~300-byte messages", p)
		}
		if largest := largestBatch(t, e.reg); largest < 4096 { // a batch of more than 1,024 spans
			t.Fatalf("largest batch %v spans: still capped by a 1,000-message window", largest)
		}
	})
	t.Run("large messages shrink it", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, collector.Config{WindowBytes: 1 << 20})
		bodies := make([][]byte, 600)
		for i := range bodies {
			bodies[i] = spansBody(t, zipkin.FormatJSON, uint64(i+1), 40) // ~10 KB
		}
		publish(t, e.cfg.Broker.URL, e.cfg.Broker.Queue, bodies...)
		e.start(e.cfg, e.store)
		e.waitCount(len(bodies)*40, 60*time.Second)
		if p := metric(t, e.reg, "zipq_collector_prefetch"); p > 200 {
			t.Fatalf("prefetch %v for ~10 KB messages and a 1 MiB window", p)
		}
	})
}

// largestBatch is the upper bound of the highest non-empty bucket of the
// batch size histogram.
func largestBatch(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	testenv.Must(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "zipq_collector_batch_spans" {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		prev, largest := uint64(0), 0.0
		for _, b := range h.GetBucket() {
			if b.GetCumulativeCount() > prev {
				largest = b.GetUpperBound()
			}
			prev = b.GetCumulativeCount()
		}
		return largest
	}
	t.Fatal("no batch histogram")
	return 0
}

// TestOneRefusedSpanIsParkedAlone: in a message of many spans where the
// store refuses one, the others are stored and the parked message holds
// only the refused span, with the reason and the original headers.
func TestOneRefusedSpanIsParkedAlone(t *testing.T) {
	t.Parallel()
	e := newEnv(t, collector.Config{BatchInterval: 200 * time.Millisecond})
	e.start(e.cfg, refusingSpan{e.store})
	good := spansBody(t, zipkin.FormatJSON, 1, 5)
	spans, _, err := zipkin.Decode(spansBody(t, zipkin.FormatJSON, 2, 10))
	testenv.Must(t, err)
	spans[4].Name = "refuse-me"
	mixed, err := zipkin.Encode(zipkin.FormatJSON, spans)
	testenv.Must(t, err)
	publish(t, e.cfg.Broker.URL, e.cfg.Broker.Queue, good, mixed)
	e.waitCount(5+9, 20*time.Second)

	conn := testenv.Dial(t)
	ch, err := conn.Channel()
	testenv.Must(t, err)
	defer ch.Close()
	var d amqp.Delivery
	testenv.Eventually(t, 10*time.Second, "refused span parked", func() bool {
		var ok bool
		d, ok, err = ch.Get(e.cfg.Broker.ParkedQueue, true)
		return err == nil && ok
	})
	parked, _, err := zipkin.Decode(d.Body)
	testenv.Must(t, err)
	if len(parked) != 1 || parked[0].Name != "refuse-me" {
		t.Fatalf("parked %d spans (%v), want only the refused one", len(parked), parked)
	}
	if r := broker.ParkedReason(d.Headers); r != broker.ReasonStoreRejected {
		t.Fatalf("reason %q", r)
	}
	if q, err := broker.Inspect(conn, e.cfg.Broker.ParkedQueue); err != nil || q.Messages != 0 {
		t.Fatalf("more parked than the one message: %v, %v", q.Messages, err)
	}
}

// refusingSpan refuses, permanently, any write holding a span named
// "refuse-me".
type refusingSpan struct{ collector.SpanWriter }

func (r refusingSpan) WriteSpans(ctx context.Context, spans []zipkin.Span) error {
	for _, s := range spans {
		if s.Name == "refuse-me" {
			return permanentErr{}
		}
	}
	return r.SpanWriter.WriteSpans(ctx, spans)
}

// failing is a writer that fails transiently (as PostgreSQL does when an
// INSERT is revoked or the disk is full) while broken is set, and hangs
// while hang is set.
type failing struct {
	collector.SpanWriter
	broken, hang *atomic.Bool
}

func (f failing) WriteSpans(ctx context.Context, spans []zipkin.Span) error {
	for f.hang.Load() && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if f.broken.Load() {
		return errors.New("could not extend file: No space left on device")
	}
	return f.SpanWriter.WriteSpans(ctx, spans)
}

// TestStalledWriterIsReported: a writer that keeps failing, or hangs,
// while messages wait is reported by Stalled with the cause, and the
// messages it holds are counted as unacked; both clear once it writes.
func TestStalledWriterIsReported(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, want string
		broken     bool
	}{
		{"writes fail", "No space left on device", true},
		{"writes hang", "no batch committed for", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, collector.Config{BatchInterval: 50 * time.Millisecond, RetryMin: 10 * time.Millisecond,
				RetryMax: 50 * time.Millisecond, StallAfter: time.Second})
			var broken, hang atomic.Bool
			broken.Store(tc.broken)
			hang.Store(!tc.broken)
			c := e.start(e.cfg, failing{e.store, &broken, &hang})
			if err := c.Stalled(); err != nil {
				t.Fatalf("stalled before any message: %v", err)
			}
			publish(t, e.cfg.Broker.URL, e.cfg.Broker.Queue, spansBody(t, zipkin.FormatJSON, 1, 3), spansBody(t, zipkin.FormatJSON, 2, 3))
			testenv.Eventually(t, 10*time.Second, "stall reported", func() bool {
				err := c.Stalled()
				return err != nil && strings.Contains(err.Error(), tc.want)
			})
			if n := metric(t, e.reg, "zipq_collector_unacked_messages"); n != 2 {
				t.Fatalf("unacked %v, want the 2 messages held", n)
			}
			broken.Store(false)
			hang.Store(false)
			e.waitCount(6, 10*time.Second)
			testenv.Eventually(t, 5*time.Second, "stall cleared", func() bool { return c.Stalled() == nil })
			if n := metric(t, e.reg, "zipq_collector_unacked_messages"); n != 0 {
				t.Fatalf("unacked %v after the commit", n)
			}
		})
	}
}

// TestOTLPMessagesOnTheQueue: a service can publish an OTLP export
// request (protobuf or JSON) to the span queue, marked by its content
// type, and forget it: the collector translates and stores it like a
// Zipkin list. One that does not decode is parked as malformed_otlp with
// its content type kept, so a replay decodes it the same way.
func TestOTLPMessagesOnTheQueue(t *testing.T) {
	t.Parallel()
	e := newEnv(t, collector.Config{BatchInterval: 100 * time.Millisecond})
	e.start(e.cfg, e.store)
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "queue-otlp")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for i := range 4 {
		sp := spans.AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{15: 7})
		sp.SetSpanID(pcommon.SpanID{7: byte(i + 1)})
		sp.SetName("op")
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	}
	req := ptraceotlp.NewExportRequestFromTraces(td)
	pbBody, err := req.MarshalProto()
	testenv.Must(t, err)
	spans.At(0).SetSpanID(pcommon.SpanID{7: 9}) // the JSON copy: one more distinct span
	jsBody, err := req.MarshalJSON()
	testenv.Must(t, err)
	conn := testenv.Dial(t)
	ch, err := conn.Channel()
	testenv.Must(t, err)
	defer ch.Close()
	for _, m := range []amqp.Publishing{
		{ContentType: ingest.ContentTypeOTLPProto, Body: pbBody},
		{ContentType: ingest.ContentTypeOTLPJSON, Body: jsBody},
		{ContentType: ingest.ContentTypeOTLPProto, Body: []byte("not otlp")},
	} {
		testenv.Must(t, ch.PublishWithContext(t.Context(), "", e.cfg.Broker.Queue, false, false, m))
	}
	e.waitCount(5, 20*time.Second)
	var d amqp.Delivery
	testenv.Eventually(t, 10*time.Second, "garbage parked", func() bool {
		var ok bool
		d, ok, err = ch.Get(e.cfg.Broker.ParkedQueue, true)
		return err == nil && ok
	})
	if broker.ParkedReason(d.Headers) != zipkin.ReasonMalformedOTLP || d.ContentType != ingest.ContentTypeOTLPProto {
		t.Fatalf("parked as %q with content type %q", broker.ParkedReason(d.Headers), d.ContentType)
	}
}

// TestUndecodableMessageIsDeadLetteredAndOthersFlow: a message whose AMQP
// headers the client library cannot decode (40 nested tables, which
// RabbitMQ accepts) drops the collector's connection every time it is
// delivered. The collector gives the span queue a delivery-limit policy
// (through the management API: a queue argument would break clients'
// declarations), so it alone is dead-lettered to the poison queue after
// the limit — the collector takes one message at a time after such a
// close, so the messages delivered with it are stored rather than
// redelivered to the limit with it — and the messages after it flow. The
// collector then moves it, read through the management API and without
// its headers, to the parking queue, from which a replay stores its spans.
func TestUndecodableMessageIsDeadLetteredAndOthersFlow(t *testing.T) {
	t.Parallel()
	url := testenv.VHost(t)
	queue := "zipkin"
	e := newEnv(t, collector.Config{Broker: broker.Config{URL: url, Queue: queue, ManagementURL: testenv.ManagementURL(), DeliveryLimit: 3},
		RetryMin: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond, BatchInterval: 50 * time.Millisecond})
	e.start(e.cfg, e.store)
	deep := amqp.Table{"x": "y"}
	for range 40 {
		deep = amqp.Table{"n": deep}
	}
	publishMessages(t, url, queue,
		amqp.Publishing{Body: spansBody(t, zipkin.FormatJSON, 1, 5)},
		amqp.Publishing{Headers: deep, Body: spansBody(t, zipkin.FormatJSON, 2, 5)},
		amqp.Publishing{Body: spansBody(t, zipkin.FormatJSON, 3, 5)})
	conn, err := amqp.Dial(url)
	testenv.Must(t, err)
	defer conn.Close()
	e.waitCount(10, 60*time.Second) // both good messages, before and after it
	publish(t, url, queue, spansBody(t, zipkin.FormatJSON, 4, 5))
	e.waitCount(15, 30*time.Second) // and what comes next
	testenv.Eventually(t, 60*time.Second, "the undecodable message moved from the poison queue to the parking queue", func() bool {
		p, err1 := broker.Inspect(conn, e.cfg.Broker.PoisonQueue())
		q, err2 := broker.Inspect(conn, e.cfg.Broker.ParkedQueue)
		return err1 == nil && err2 == nil && p.Messages == 0 && q.Messages == 1
	})
	n, err := broker.Replay(t.Context(), conn, e.cfg.Broker, broker.ReplayOptions{Reason: zipkin.ReasonDeliveryLimit})
	if err != nil || n != 1 {
		t.Fatalf("replayed %d (%v), want the one message parked with reason %s", n, err, zipkin.ReasonDeliveryLimit)
	}
	e.waitCount(20, 30*time.Second) // its spans, stored once its headers are gone
}
