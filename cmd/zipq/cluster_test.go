package main

import (
	"bytes"
	"context"
	"log"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/openzipkin/zipkin-go/model"
	zipkinamqp "github.com/openzipkin/zipkin-go/reporter/amqp"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/zipq/zipq/internal/testenv"
	"github.com/zipq/zipq/storage"
	"github.com/zipq/zipq/zipkin"
)

// TestClusterFailover is `make test-cluster`: a 3-node RabbitMQ cluster of
// the test's own (Debian's package, distinct node names, ports and data
// directories on 127.0.0.1), the span queue a quorum queue on all three,
// two `zipq collector` processes and one `zipq query` pointed first at
// different nodes (RABBIT_ADDRESSES), publishing from an unchanged
// zipkin-go AMQP reporter and from HTTP clients. Mid-stream the node that
// leads the span queue is stopped and later started, then the node a
// collector is connected to is stopped. Every span a publisher was told
// was accepted (HTTP 202, i.e. a broker confirm) must be stored exactly
// once; what zipkin-go's unconfirmed sends lost is reported.
func TestClusterFailover(t *testing.T) {
	if os.Getenv("ZIPQ_TEST_CLUSTER") == "" {
		t.Skip("starts a 3-node RabbitMQ cluster: run by `make test-cluster` (ZIPQ_TEST_CLUSTER=1)")
	}
	nodes := testenv.StartCluster(t, 3)
	uri := nodes[0].VHost(t, "zipq", "quorum")
	addrs := func(order ...int) string {
		var a []string
		for _, i := range order {
			a = append(a, nodes[i].Address())
		}
		return strings.Join(a, ",")
	}
	dsn := testenv.Schema(t)
	env := []string{"POSTGRES_URL=" + dsn, "RABBIT_URI=" + uri, "RABBIT_QUEUE=zipkin", "ZIPQ_LOG_LEVEL=info"}
	collA := startZipq(t, append(env, "RABBIT_ADDRESSES="+addrs(0, 1, 2)), "collector")
	startZipq(t, append(env, "RABBIT_ADDRESSES="+addrs(1, 2, 0)), "collector")
	query := startZipq(t, append(env, "RABBIT_ADDRESSES="+addrs(2, 0, 1)), "query")

	members := nodes[0].Output(t, "list_queues", "-p", "zipq", "name", "type", "members", "leader")
	if !strings.Contains(members, "quorum") || strings.Count(members, "zqt") < 4 {
		t.Fatalf("span queue is not a quorum queue on 3 nodes:\n%s", members)
	}
	leader := func() int {
		out := nodes[0].Output(t, "list_queues", "-p", "zipq", "name", "leader")
		for i, n := range nodes {
			if strings.Contains(out, "zipkin\t"+n.Node) {
				return i
			}
		}
		t.Fatalf("no leader in:\n%s", out)
		return -1
	}

	st, err := storage.Open(context.Background(), storage.Config{URL: dsn}, nil)
	testenv.Must(t, err)
	defer st.Close()
	stored := func() int { // distinct spans readers see
		_, n, err := st.CountSpans(context.Background())
		testenv.Must(t, err)
		return n
	}
	conn, err := pgx.Connect(context.Background(), dsn)
	testenv.Must(t, err)
	defer conn.Close(context.Background())
	written := func() int { // spans in segments: cheap, for the timeline
		var n int
		testenv.Must(t, conn.QueryRow(context.Background(), `SELECT coalesce(sum(span_count), 0)::int FROM segments`).Scan(&n))
		return n
	}

	// zipkin-go publishes to the node leading the span queue, which is
	// stopped first: what its fire-and-forget sends lose is measured.
	zgNode := leader()
	zgURL := strings.Replace(uri, nodes[0].Address(), nodes[zgNode].Address(), 1)

	// A malformed message, parked by a collector; replayed below while a
	// node is down.
	bad, err := amqp.Dial(zgURL)
	testenv.Must(t, err)
	badCh, err := bad.Channel()
	testenv.Must(t, err)
	testenv.Must(t, badCh.Publish("", "zipkin", false, false, amqp.Publishing{Body: []byte("[{not json")}))
	testenv.Must(t, bad.Close())
	parked := func(via *testenv.Broker) string {
		for _, line := range strings.Split(via.Output(t, "list_queues", "-p", "zipq", "name", "messages"), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "zipkin.parked" {
				return f[1]
			}
		}
		return "?"
	}
	testenv.Eventually(t, 30*time.Second, "the malformed message parked", func() bool { return parked(nodes[0]) == "1" })

	// Publishers. zipkin-go takes one URL and never reconnects; HTTP
	// clients post 10-span traces to `zipq query` and retry a 503 as a
	// client of Zipkin's API would.
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var zgSent, zgSentAtStop atomic.Int64
	// Its failed sends are counted, not logged: after its node stops, every
	// send fails and logs a line.
	var zgFailed lineCounter
	rep, err := zipkinamqp.NewReporter(zgURL, zipkinamqp.Logger(log.New(&zgFailed, "", 0)))
	testenv.Must(t, err)
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for i := uint64(1); ctx.Err() == nil; i++ {
			<-tick.C
			rep.Send(model.SpanModel{SpanContext: model.SpanContext{TraceID: model.TraceID{High: 0x2, Low: i}, ID: model.ID(i)},
				Name: "zipkin-go", Kind: model.Server, Timestamp: time.Now(), Duration: time.Millisecond,
				LocalEndpoint: &model.Endpoint{ServiceName: "amqp-client"}})
			zgSent.Add(1)
		}
	}()
	var mu sync.Mutex
	var confirmed []zipkin.TraceID
	var acceptedAt []time.Time
	var unavailable atomic.Int64
	client := &http.Client{Timeout: 10 * time.Second}
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := uint64(1); ctx.Err() == nil; i++ {
				id := zipkin.TraceID{High: uint64(w + 3), Low: i}
				spans := make([]zipkin.Span, 10)
				for j := range spans {
					spans[j] = zipkin.Span{TraceID: id, ID: zipkin.SpanID(j + 1), ParentID: zipkin.SpanID(j), Name: "http",
						Timestamp: time.Now().UnixMicro(), Duration: 10, LocalEndpoint: &zipkin.Endpoint{ServiceName: "http-client"}}
				}
				body := zipkin.EncodeJSON(spans)
				for ctx.Err() == nil {
					resp, err := client.Post("http://"+query.addr+"/api/v2/spans", "application/json", bytes.NewReader(body))
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode == http.StatusAccepted {
							mu.Lock()
							confirmed = append(confirmed, id)
							acceptedAt = append(acceptedAt, time.Now())
							mu.Unlock()
							break
						}
						unavailable.Add(1)
					}
					time.Sleep(50 * time.Millisecond)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}

	// The timeline, sampled once a second: spans stored (distinct).
	type sample struct {
		at     time.Duration
		stored int
	}
	var samples []sample
	began := time.Now()
	wait := func(d time.Duration) {
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(time.Second) {
			samples = append(samples, sample{time.Since(began), written()})
		}
	}
	rate := func(from, to time.Duration) float64 {
		var a, b *sample
		for i := range samples {
			if samples[i].at >= from && a == nil {
				a = &samples[i]
			}
			if samples[i].at <= to {
				b = &samples[i]
			}
		}
		if a == nil || b == nil || b.at <= a.at {
			return 0
		}
		return float64(b.stored-a.stored) / (b.at - a.at).Seconds()
	}
	// gap is the longest time without a 202 in [from, to]: how long HTTP
	// ingest was unavailable.
	gap := func(from, to time.Time) time.Duration {
		mu.Lock()
		defer mu.Unlock()
		longest, prev := time.Duration(0), from
		for _, at := range acceptedAt {
			if at.Before(from) || at.After(to) {
				continue
			}
			longest, prev = max(longest, at.Sub(prev)), at
		}
		return max(longest, to.Sub(prev))
	}

	wait(8 * time.Second)
	l := leader()
	stopLeader := time.Now()
	zgSentAtStop.Store(zgSent.Load())
	nodes[l].Stop(t)
	wait(8 * time.Second)
	recoverLeader := gap(stopLeader, time.Now())
	nodes[l].Start(t)
	wait(6 * time.Second)

	// The node collector A is connected to now (its log names it).
	addrRE := regexp.MustCompile(`msg="connected to rabbitmq" .*addr=(127\.0\.0\.1:\d+)`)
	m := addrRE.FindAllStringSubmatch(collA.output(), -1)
	if len(m) == 0 {
		t.Fatalf("collector A never logged its node:\n%s", tail(collA.output(), 2000))
	}
	cn := -1
	for i, n := range nodes {
		if n.Address() == m[len(m)-1][1] {
			cn = i
		}
	}
	stopCollectorNode := time.Now()
	nodes[cn].Stop(t)
	testenv.Eventually(t, 60*time.Second, "collector A reconnected to another node", func() bool {
		return len(addrRE.FindAllStringSubmatch(collA.output(), -1)) > len(m)
	})
	recoverCollector := time.Since(stopCollectorNode)
	// Parking and replay with a node down: the parked message goes back
	// to the span queue and, still malformed, is parked again.
	// Right after a node stops, a quorum queue led from it elects a new
	// leader and may report no messages for a moment, or nack a publish:
	// replay takes what is parked when it starts, and a nacked message
	// stays parked (replay says so and exits 1), so try again until it
	// moves the message.
	var out []byte
	testenv.Eventually(t, 30*time.Second, "the parked message replayed with a node down", func() bool {
		out, err = exec.Command(binary, "replay", "-rabbit-uri", uri, "-rabbit-addresses", addrs(0, 1, 2),
			"-rabbit-queue", "zipkin").CombinedOutput()
		if err != nil && strings.Contains(string(out), "broker nacked") {
			return false
		}
		if err != nil {
			t.Fatalf("replay with node %s down: %v\n%s", nodes[cn].Node, err, out)
		}
		return strings.Contains(string(out), "replayed 1 message(s)")
	})
	alive := nodes[(cn+1)%3]
	testenv.Eventually(t, 30*time.Second, "the replayed message parked again", func() bool { return parked(alive) == "1" })
	wait(6 * time.Second)
	stop()
	wg.Wait()
	_ = rep.Close()
	nodes[cn].Start(t)

	mu.Lock()
	ids := append([]zipkin.TraceID(nil), confirmed...)
	mu.Unlock()
	want := len(ids) * 10
	testenv.StoredAtLeast(t, dsn, want, 120*time.Second)
	testenv.EventuallyEvery(t, 60*time.Second, time.Second, "every confirmed span stored", func() bool {
		return stored() >= want
	})
	// Exactly once: each confirmed trace has its 10 spans, no more.
	for i := 0; i < len(ids); i += 500 {
		traces, err := st.Traces(context.Background(), ids[i:min(i+500, len(ids))], true)
		testenv.Must(t, err)
		if len(traces) != min(500, len(ids)-i) {
			t.Fatalf("%d of %d confirmed traces found", len(traces), min(500, len(ids)-i))
		}
		for _, tr := range traces {
			if len(tr) != 10 {
				t.Fatalf("trace %s has %d spans, want exactly 10", tr[0].TraceID, len(tr))
			}
		}
	}
	zg := 0
	for i := int64(1); i <= zgSent.Load(); i += 1000 {
		var batch []zipkin.TraceID
		for j := i; j < i+1000 && j <= zgSent.Load(); j++ {
			batch = append(batch, zipkin.TraceID{High: 0x2, Low: uint64(j)})
		}
		traces, err := st.Traces(context.Background(), batch, true)
		testenv.Must(t, err)
		for _, tr := range traces {
			if len(tr) != 1 {
				t.Fatalf("zipkin-go trace %s has %d spans", tr[0].TraceID, len(tr))
			}
		}
		zg += len(traces)
	}
	t.Logf("cluster: leader %s stopped at %s, longest time without an HTTP 202 after it %s; collector node %s stopped at %s, collector A reconnected after %s",
		nodes[l].Node, stopLeader.Sub(began).Round(time.Second), recoverLeader.Round(10*time.Millisecond),
		nodes[cn].Node, stopCollectorNode.Sub(began).Round(time.Second), recoverCollector.Round(10*time.Millisecond))
	ls, lc := stopLeader.Sub(began), stopCollectorNode.Sub(began)
	t.Logf("cluster: stored spans/s before %.0f, leader down %.0f, after restart %.0f, collector's node down %.0f",
		rate(0, ls), rate(ls, ls+8*time.Second), rate(ls+9*time.Second, lc), rate(lc, lc+8*time.Second))
	t.Logf("cluster: HTTP: %d traces (%d spans) accepted, all stored exactly once; %d answers were 503 (retried)",
		len(ids), want, unavailable.Load())
	// zipkin-go publishes without confirms and never reconnects: what it
	// sends once its node is gone fails (it logs each and drops it), and a
	// message accepted by a node that then dies unconfirmed would be lost
	// without a word. (Its count at the stop is taken before the stop
	// begins; the node takes a moment to go.)
	t.Logf("cluster: zipkin-go (connected to %s, the first leader%s): %d sent, %d of them before that node was told to stop; %d stored, %d lost",
		nodes[zgNode].Node, map[bool]string{true: ", stopped", false: ", which had moved: not stopped"}[l == zgNode],
		zgSent.Load(), zgSentAtStop.Load(), zg, zgSent.Load()-int64(zg))
	t.Logf("cluster: zipkin-go logged %d failed sends (of the %d lost): it drops them and never reconnects", zgFailed.n.Load(), zgSent.Load()-int64(zg))

}

// lineCounter counts the lines written to it.
type lineCounter struct{ n atomic.Int64 }

func (c *lineCounter) Write(p []byte) (int, error) {
	c.n.Add(int64(bytes.Count(p, []byte("\n"))))
	return len(p), nil
}
