package main

import (
	"fmt"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/zipq/zipq/broker"
	"github.com/zipq/zipq/zipkin"
)

type point struct {
	t     float64 // seconds since the collectors started
	depth int
}

type drainResult struct {
	replicas, spans, msgs int
	elapsed               time.Duration
	rss                   []float64
	series                []point
}

// drain publishes n spans with no collector running, then starts
// replicas collectors and times the queue to empty and every span to be
// stored, sampling the depth every 250 ms.
func (b *bench) drain(n, perMessage, replicas int) drainResult {
	return b.drainAs(fmt.Sprintf("drain%d", replicas), n, perMessage, replicas, time.Hour, nil)
}

// drainAs is drain in a schema and queue of its own name, the spans dated
// across window, with extra environment for the collectors.
func (b *bench) drainAs(name string, n, perMessage, replicas int, window time.Duration, extra []string) drainResult {
	dsn, _ := b.schema(name)
	queue := b.queue(name)
	declare(b.amqpURL, queue)
	var bodies [][]byte
	chunks(n, 7, time.Now(), window, func(sp []zipkin.Span) { bodies = append(bodies, messages(sp, perMessage)...) })
	b.publish(queue, bodies)
	res := drainResult{replicas: replicas, spans: n, msgs: len(bodies)}
	bodies = nil

	conn, err := amqp.Dial(b.amqpURL)
	must(err)
	defer conn.Close()
	env := append([]string{"POSTGRES_URL=" + dsn, "RABBIT_URI=" + b.amqpURL, "RABBIT_QUEUE=" + queue, "RABBIT_PARKED_QUEUE_TYPE=classic"}, extra...)
	start := time.Now()
	var procs []*proc
	for i := 0; i < replicas; i++ {
		procs = append(procs, b.start(fmt.Sprintf("collector-%s-%d", name, i), env, "collector"))
	}
	for {
		q, err := broker.Inspect(conn, queue)
		must(err)
		d := q.Messages
		res.series = append(res.series, point{time.Since(start).Seconds(), d})
		if d == 0 && count(b.ctx, dsn) >= n {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	res.elapsed = time.Since(start)
	for _, p := range procs {
		res.rss = append(res.rss, p.peakRSS())
		p.stop()
	}
	return res
}

// statsCost drains the same backlog with the service metrics on and off
// (ZIPQ_NO_SERVICE_METRICS), alternating, per message shape: the cost of
// computing them at ingest, as a ratio of drain rates within one run. The
// spans are dated across window: the generator's hour makes a batch add a
// row per cell and minute of that hour (the worst case); a minute is what
// live traffic gives a batch.
func (b *bench) statsCost(n int, rounds int, window time.Duration) string {
	out := "| spans/message | metrics | run | spans | drain s | spans/s |\n|---|---|---|---|---|---|\n"
	var summary string
	for _, per := range []int{100, 1} {
		spans := n
		if per == 1 {
			spans = n / 3
		}
		rate := map[bool][]float64{}
		for r := range rounds {
			for _, on := range []bool{r%2 == 0, r%2 != 0} {
				var extra []string
				label := "on"
				if !on {
					extra, label = []string{"ZIPQ_NO_SERVICE_METRICS=true"}, "off"
				}
				logf("stats cost: %d spans/message, metrics %s, round %d", per, label, r+1)
				res := b.drainAs(fmt.Sprintf("stats%d%s%d", per, label, r), spans, per, 1, window, extra)
				sps := float64(spans) / res.elapsed.Seconds()
				rate[on] = append(rate[on], sps)
				out += fmt.Sprintf("| %d | %s | %d | %d | %.1f | %.0f |\n", per, label, r+1, spans, res.elapsed.Seconds(), sps)
			}
		}
		summary += fmt.Sprintf("%d spans/message: on/off = %.2f (mean of %d runs each; per-round ratios %s)\n",
			per, mean(rate[true])/mean(rate[false]), rounds, ratios(rate[true], rate[false]))
	}
	return out + "\n" + summary
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(max(1, len(v)))
}

func ratios(a, b []float64) string {
	var out []string
	for i := range min(len(a), len(b)) {
		out = append(out, fmt.Sprintf("%.2f", a[i]/b[i]))
	}
	return strings.Join(out, ", ")
}
