package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/zipq/zipq/storage"
	"github.com/zipq/zipq/zipkin"
)

const chunk = 10_000 // spans generated at a time, to bound the harness's memory

// chunks generates n spans deterministically, chunk by chunk.
func chunks(n int, seed uint64, end time.Time, window time.Duration, fn func([]zipkin.Span)) {
	for i := 0; i < n; i += chunk {
		fn(spans(min(chunk, n-i), seed+uint64(i/chunk), end, window))
	}
}

// rawCopy is the baseline: the same spans COPYed one row per span into a
// fresh schema of the per-span layout with its indexes, no queue, 5,000
// rows per COPY.
func (b *bench) rawCopy(name string, n int, seed uint64, end time.Time, window time.Duration) time.Duration {
	_, st := b.legacySchema(name)
	return b.direct(st, n, seed, end, window, (*storage.Store).CopySpans)
}

// direct writes the spans with write, 5,000 per call, no queue, and times it.
func (b *bench) direct(st *storage.Store, n int, seed uint64, end time.Time, window time.Duration,
	write func(*storage.Store, context.Context, []zipkin.Span) error) time.Duration {
	var elapsed time.Duration
	chunks(n, seed, end, window, func(sp []zipkin.Span) {
		t := time.Now()
		for i := 0; i < len(sp); i += 5000 {
			must(write(st, b.ctx, sp[i:min(i+5000, len(sp))]))
		}
		elapsed += time.Since(t)
	})
	return elapsed
}

type ingestResult struct {
	perMessage, spans, msgs int
	raw, idem, rabbit, zipq time.Duration
	rss                     float64
	cpuTop, allocTop        string
	batches, batchSpans     float64 // committed batches and their spans
	commitSeconds           float64 // total time writing and committing them
}

// ingest measures one message shape end to end: publish with confirms,
// zipq collector stores with ack after commit; against raw COPY of the
// same spans and RabbitMQ moving the same messages with nothing behind it.
func (b *bench) ingest(perMessage, n int, profile bool) ingestResult {
	end := time.Now()
	res := ingestResult{perMessage: perMessage, spans: n}
	res.raw = b.rawCopy(fmt.Sprintf("raw%d", perMessage), n, 1, end, time.Hour)
	_, idem := b.schema(fmt.Sprintf("idem%d", perMessage))
	res.idem = b.direct(idem, n, 1, end, time.Hour, (*storage.Store).WriteSpans)

	var bodies [][]byte
	chunks(n, 1, end, time.Hour, func(sp []zipkin.Span) { bodies = append(bodies, messages(sp, perMessage)...) })
	res.msgs = len(bodies)
	res.rabbit = b.rabbitOnly(bodies)

	dsn, _ := b.schema(fmt.Sprintf("ingest%d", perMessage))
	queue := b.queue(fmt.Sprintf("ingest%d", perMessage))
	p := b.start(fmt.Sprintf("collector-ingest-%d", perMessage), []string{"POSTGRES_URL=" + dsn, "RABBIT_URI=" + b.amqpURL,
		"RABBIT_QUEUE=" + queue, "RABBIT_PARKED_QUEUE_TYPE=classic"}, "collector")
	var cpu chan string
	if profile {
		cpu = make(chan string, 1)
		go func() { cpu <- b.profile(p, "profile?seconds=4", fmt.Sprintf("cpu-%d.pprof", perMessage)) }()
	}
	start := time.Now()
	go b.publish(queue, bodies)
	for count(b.ctx, dsn) < n {
		time.Sleep(100 * time.Millisecond)
	}
	res.zipq = time.Since(start)
	res.rss = p.peakRSS()
	res.batches, res.batchSpans, res.commitSeconds = p.batchStats()
	if profile {
		res.cpuTop = top(<-cpu, "-top")
		res.allocTop = top(b.profile(p, "allocs", fmt.Sprintf("allocs-%d.pprof", perMessage)), "-sample_index=alloc_space", "-top")
	}
	p.stop()
	return res
}

// rabbitOnly is RabbitMQ's own rate for these messages on this machine:
// published with confirms and consumed with acks, nothing done with them.
func (b *bench) rabbitOnly(bodies [][]byte) time.Duration {
	queue := b.queue("rabbit")
	declare(b.amqpURL, queue)
	conn, err := amqp.Dial(b.amqpURL)
	must(err)
	defer conn.Close()
	ch, err := conn.Channel()
	must(err)
	must(ch.Qos(1000, 0, false))
	deliveries, err := ch.Consume(queue, "", false, false, false, false, nil)
	must(err)
	got := make(chan struct{})
	go func() {
		n := 0
		for d := range deliveries {
			n++
			if n%500 == 0 || n == len(bodies) {
				_ = d.Ack(true)
			}
			if n == len(bodies) {
				close(got)
				return
			}
		}
	}()
	start := time.Now()
	b.publish(queue, bodies)
	<-got
	return time.Since(start)
}

func (b *bench) profile(p *proc, path, file string) string {
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+"/debug/pprof/"+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	out := filepath.Join(b.work, file)
	f, err := os.Create(out)
	must(err)
	_, _ = io.Copy(f, resp.Body)
	f.Close()
	return out
}

// batchStats reads the collector's batch histograms from /metrics.
func (p *proc) batchStats() (batches, spans, seconds float64) {
	resp, err := http.Get("http://" + p.addr + "/metrics")
	if err != nil {
		return
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "zipq_collector_batch_spans_count":
			batches = v
		case "zipq_collector_batch_spans_sum":
			spans = v
		case "zipq_collector_batch_commit_seconds_sum":
			seconds = v
		}
	}
	return
}
