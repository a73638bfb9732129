package spanmetrics

import (
	"time"

	"github.com/zipq/zipq/zipkin"
)

// The service graph's latencies (traces_service_graph_request_client_seconds
// and _server_seconds) need both halves of a call: the caller's client (or
// producer) span and the callee's server (or consumer) span, which arrive
// in the same batch or a few seconds apart. As the servicegraph connector
// does, each process keeps the halves it has not matched yet for a while
// (pairWait) in a store of bounded size (maxUnpaired per tenant; past it
// the oldest goes), and records a call's two durations when its other
// half comes. A half never matched (the other side not instrumented, or
// stored by another collector replica) is counted in
// zipq_span_metrics_unpaired_total, not guessed at. The call counts
// (traces_service_graph_request_total) stay the linker's, which pairs the
// stored traces whole and so misses nothing.

const (
	pairWait    = 10 * time.Second
	maxUnpaired = 10_000 // halves waiting per tenant: about 1 MB
)

// callKey is what a client half and its server half share: the trace and
// the client's span ID (the server's parent, or its own ID when Zipkin
// reported both halves under one ID).
type callKey struct {
	trace zipkin.TraceID
	span  zipkin.SpanID
}

// half is one side of a call waiting for the other.
type half struct {
	service string
	client  bool
	us      int64
	at      time.Time
}

// pairs is a tenant's halves waiting, oldest first in order.
type pairs struct {
	waiting map[callKey]half
	order   []callKey
}

// pair matches sp with the half waiting under its call, or leaves it to
// wait; it returns the client and server halves when matched. Spans that
// are not one side of a call between processes are ignored.
func (p *pairs) pair(sp *zipkin.Span, now time.Time) (client, server half, ok bool) {
	h := half{service: sp.LocalServiceName(), us: sp.Duration, at: now}
	var k callKey
	switch sp.Kind {
	case zipkin.KindClient, zipkin.KindProducer:
		h.client, k = true, callKey{sp.TraceID, sp.ID}
	case zipkin.KindServer, zipkin.KindConsumer:
		k = callKey{sp.TraceID, sp.ParentID}
		if sp.Shared {
			k.span = sp.ID
		}
	default:
		return half{}, half{}, false
	}
	if k.span == 0 || h.service == "" {
		return half{}, half{}, false
	}
	other, found := p.waiting[k]
	if found && other.client != h.client {
		delete(p.waiting, k) // its order entry is skipped when reached
		if h.client {
			return h, other, true
		}
		return other, h, true
	}
	if !found {
		p.order = append(p.order, k)
	}
	p.waiting[k] = h
	return half{}, half{}, false
}

// expire drops the halves that waited longer than wait, and the oldest
// beyond max, returning how many it dropped.
func (p *pairs) expire(now time.Time, wait time.Duration, limit int) (dropped int) {
	i := 0
	for ; i < len(p.order); i++ {
		k := p.order[i]
		h, ok := p.waiting[k]
		if !ok {
			continue // matched
		}
		if now.Sub(h.at) < wait && len(p.waiting) <= limit {
			break
		}
		delete(p.waiting, k)
		dropped++
	}
	p.order = p.order[i:]
	if cap(p.order) > 4*max(len(p.order), 64) { // let a burst's backing array go
		p.order = append([]callKey(nil), p.order...)
	}
	return dropped
}
