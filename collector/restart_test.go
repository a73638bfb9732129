package collector_test

import (
	"context"
	"testing"
	"time"

	"github.com/openzipkin/zipkin-go/model"
	zipkinamqp "github.com/openzipkin/zipkin-go/reporter/amqp"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/zipq/zipq/broker"
	"github.com/zipq/zipq/collector"
	"github.com/zipq/zipq/internal/testenv"
	"github.com/zipq/zipq/zipkin"
)

// TestBrokerRestartKeepsQueuedSpans is the data-loss run of the README's
// "Durability" section, on a broker node of the test's own: spans wait in
// the queue while no collector runs, the whole broker restarts, then a
// collector drains what is left.
//   - an unchanged zipkin-go AMQP reporter (transient messages) into a
//     quorum span queue (vhost default queue type quorum, as `make run` and
//     compose set up "/"): every span kept;
//   - the same into a classic span queue: every span lost, which is why
//     zipq warns about classic span queues;
//   - zipq's HTTP ingest publisher (persistent, confirmed) into a classic
//     queue: every span kept.
func TestBrokerRestartKeepsQueuedSpans(t *testing.T) {
	t.Parallel()
	const n = 20000
	b := testenv.StartBroker(t)
	quorum, classic, http := b.VHost(t, "quorum", "quorum"), b.VHost(t, "classic", ""), b.VHost(t, "http", "")

	for _, url := range []string{quorum, classic} {
		rep, err := zipkinamqp.NewReporter(url)
		testenv.Must(t, err)
		now := time.Now()
		for i := range n {
			rep.Send(model.SpanModel{
				SpanContext: model.SpanContext{TraceID: model.TraceID{Low: uint64(i/10 + 1)}, ID: model.ID(i + 1)},
				Name:        "op", Kind: model.Server, Timestamp: now, Duration: time.Millisecond,
				LocalEndpoint: &model.Endpoint{ServiceName: "svc"},
			})
		}
		waitDepth(t, url, "zipkin", n) // zipkin-go has no confirms: wait until all arrived
		_ = rep.Close()
	}
	pub := broker.NewPublisher(broker.Config{URL: http, Queue: "zipkin", ParkedQueueType: "classic"})
	for i := range n / 100 {
		spans := make([]zipkin.Span, 100)
		for j := range spans {
			spans[j] = zipkin.Span{TraceID: zipkin.TraceID{Low: uint64(i + 1)}, ID: zipkin.SpanID(j + 1), Name: "op",
				Timestamp: time.Now().UnixMicro(), LocalEndpoint: &zipkin.Endpoint{ServiceName: "svc"}}
		}
		testenv.Must(t, pub.Publish(context.Background(), zipkin.EncodeJSON(spans), "application/json"))
	}
	testenv.Must(t, pub.Close())

	b.Stop(t)
	b.Start(t)

	for _, tc := range []struct {
		name, url string
		want      int
	}{{"zipkin-go into a quorum queue", quorum, n}, {"zipkin-go into a classic queue", classic, 0},
		{"HTTP ingest into a classic queue", http, n}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, collector.Config{Broker: broker.Config{URL: tc.url, Queue: "zipkin"}})
			e.start(e.cfg, e.store)
			waitDepth(t, tc.url, "zipkin", 0)
			e.waitCount(tc.want, 60*time.Second)
		})
	}
}

// waitDepth waits until a queue holds exactly n ready messages.
func waitDepth(t *testing.T, url, queue string, n int) {
	t.Helper()
	conn, err := amqp.Dial(url)
	testenv.Must(t, err)
	defer conn.Close()
	testenv.Eventually(t, 60*time.Second, "queue depth", func() bool {
		q, err := broker.Inspect(conn, queue)
		return err == nil && q.Messages == n
	})
}
