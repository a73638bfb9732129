package main

import (
	"fmt"
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
	dsn, _ := b.schema(fmt.Sprintf("drain%d", replicas))
	queue := b.queue(fmt.Sprintf("drain%d", replicas))
	declare(b.amqpURL, queue)
	var bodies [][]byte
	chunks(n, 7, time.Now(), time.Hour, func(sp []zipkin.Span) { bodies = append(bodies, messages(sp, perMessage)...) })
	b.publish(queue, bodies)
	res := drainResult{replicas: replicas, spans: n, msgs: len(bodies)}
	bodies = nil

	conn, err := amqp.Dial(b.amqpURL)
	must(err)
	defer conn.Close()
	env := []string{"POSTGRES_URL=" + dsn, "RABBIT_URI=" + b.amqpURL, "RABBIT_QUEUE=" + queue, "RABBIT_PARKED_QUEUE_TYPE=classic"}
	start := time.Now()
	var procs []*proc
	for i := 0; i < replicas; i++ {
		procs = append(procs, b.start(fmt.Sprintf("collector-drain-%d-%d", replicas, i), env, "collector"))
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
