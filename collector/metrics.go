package collector

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zipq/zipq/broker"
	"github.com/zipq/zipq/zipkin"
)

type metrics struct {
	// received and stored are the running totals the pipeline monitor
	// reads (Collector.SpansReceived/SpansStored); the Prometheus
	// counters of the same meaning read them.
	received, stored atomic.Uint64
	held             atomic.Int64 // messages held unacknowledged, all consumers

	messages      prometheus.Counter
	sampledOut    prometheus.Counter
	rejected      prometheus.Counter
	parked        *prometheus.CounterVec
	decodeErrors  *prometheus.CounterVec
	retries       prometheus.Counter
	prepareFails  prometheus.Counter
	truncated     prometheus.Counter
	batchSpans    prometheus.Histogram
	commitSeconds prometheus.Histogram
	queueDepth    prometheus.Gauge
	queueConsumer prometheus.Gauge
	consumers     prometheus.Gauge
	prefetch      prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		messages: prometheus.NewCounter(prometheus.CounterOpts{Name: "zipq_collector_messages_received_total",
			Help: "Messages delivered by RabbitMQ."}),
		sampledOut: prometheus.NewCounter(prometheus.CounterOpts{Name: "zipq_collector_spans_dropped_total",
			Help: "Spans dropped by COLLECTOR_SAMPLE_RATE."}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{Name: "zipq_collector_spans_rejected_total",
			Help: "Spans of OTLP messages left out for an all-zero trace or span ID (the rest of the message is stored)."}),
		parked: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zipq_collector_messages_parked_total",
			Help: "Messages moved to the parking queue, by reason."}, []string{"reason"}),
		decodeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zipq_collector_decode_errors_total",
			Help: "Messages that could not be decoded, by reason."}, []string{"reason"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{Name: "zipq_collector_write_retries_total",
			Help: "Batch writes retried after a storage error."}),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{Name: "zipq_collector_spans_names_truncated_total",
			Help: "Spans stored with a service or span name cut to 1,024 bytes (tagged zipq.truncated)."}),
		prepareFails: prometheus.NewCounter(prometheus.CounterOpts{Name: "zipq_collector_prepare_errors_total",
			Help: "Batches whose encoding ahead of the commit failed; each was written plainly instead, which isolates what the store refuses."}),
		batchSpans: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "zipq_collector_batch_spans",
			Help: "Spans per committed batch.", Buckets: prometheus.ExponentialBuckets(1, 4, 9)}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "zipq_collector_batch_commit_seconds",
			Help: "Time to write and commit one batch.", Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)}),
		prefetch: prometheus.NewGauge(prometheus.GaugeOpts{Name: "zipq_collector_prefetch",
			Help: "Prefetch count of the latest consumer subscription (sized by COLLECTOR_WINDOW_BYTES unless RABBIT_PREFETCH is set)."}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{Name: "zipq_queue_messages",
			Help: "Messages ready in the span queue (waiting for a consumer; not counting unacked ones), as last reported by RabbitMQ: scale collectors on this."}),
		queueConsumer: prometheus.NewGauge(prometheus.GaugeOpts{Name: "zipq_queue_consumers",
			Help: "Consumers on the span queue across all collectors, as reported by RabbitMQ."}),
		consumers: prometheus.NewGauge(prometheus.GaugeOpts{Name: "zipq_collector_consumers",
			Help: "Consumers running in this process."}),
	}
	spans := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "zipq_collector_spans_received_total",
		Help: "Spans decoded from delivered messages."}, func() float64 { return float64(m.received.Load()) })
	stored := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "zipq_collector_spans_stored_total",
		Help: "Spans in committed batches (a redelivered span counts again; the store keeps it once)."},
		func() float64 { return float64(m.stored.Load()) })
	unacked := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "zipq_collector_unacked_messages",
		Help: "Messages this process holds unacknowledged (being batched or written); summed over collectors it is the span queue's unacked count."},
		func() float64 { return float64(m.held.Load()) })
	if reg != nil {
		reg.MustRegister(m.messages, spans, m.sampledOut, m.rejected, stored, unacked, m.parked, m.decodeErrors, m.retries, m.prepareFails, m.truncated,
			m.batchSpans, m.commitSeconds, m.queueDepth, m.queueConsumer, m.consumers, m.prefetch)
	}
	for _, r := range zipkin.Reasons {
		m.parked.WithLabelValues(string(r))
		m.decodeErrors.WithLabelValues(string(r))
	}
	m.parked.WithLabelValues(string(broker.ReasonStoreRejected))
	return m
}
