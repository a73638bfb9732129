package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/zipq/zipq/zipkin"
)

// ReasonStoreRejected marks a message whose spans decoded but PostgreSQL
// refused (a value it cannot hold); fix the cause, then replay.
const ReasonStoreRejected zipkin.Reason = "store_rejected"

// Headers on a parked message. The body, content type and original headers
// are kept as they arrived, so a replay is byte-for-byte the original.
const (
	HeaderReason      = "x-zipq-reason"       // a zipkin.Reason
	HeaderError       = "x-zipq-error"        // the decoder's or store's message
	HeaderParkedAt    = "x-zipq-parked-at"    // RFC 3339, UTC
	HeaderSourceQueue = "x-zipq-source-queue" // where replay sends it back
	HeaderReplays     = "x-zipq-replays"      // how many times it was replayed
)

const maxErrorHeader = 1024

// Parker publishes to the parking queue on its own confirm-mode channel.
type Parker struct {
	mu  sync.Mutex // one confirm at a time: the flusher and the consume loop both park
	ch  *amqp.Channel
	cfg Config
}

// NewParker opens a Parker's channel on conn.
func NewParker(conn *amqp.Connection, cfg Config) (*Parker, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("parking channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("parking channel: confirm mode: %w", err)
	}
	return &Parker{ch: ch, cfg: cfg.WithDefaults()}, nil
}

// Close closes the Parker's channel.
func (p *Parker) Close() { _ = p.ch.Close() }

// Park copies d to the parking queue with why and when, and returns only
// once RabbitMQ confirmed it. The caller acks the original only then: a
// failed park leaves the message in the queue.
func (p *Parker) Park(ctx context.Context, d amqp.Delivery, reason zipkin.Reason, cause error) error {
	h := amqp.Table{}
	for k, v := range d.Headers {
		h[k] = v
	}
	msg := cause.Error()
	if len(msg) > maxErrorHeader {
		msg = msg[:maxErrorHeader]
	}
	h[HeaderReason] = string(reason)
	h[HeaderError] = msg
	h[HeaderParkedAt] = time.Now().UTC().Format(time.RFC3339Nano)
	h[HeaderSourceQueue] = p.cfg.Queue
	pub := amqp.Publishing{
		Headers: h, ContentType: d.ContentType, ContentEncoding: d.ContentEncoding,
		DeliveryMode: amqp.Persistent, Timestamp: time.Now(), Body: d.Body,
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return publishConfirmed(ctx, p.ch, p.cfg.ParkedQueue, pub)
}

func publishConfirmed(ctx context.Context, ch *amqp.Channel, queue string, pub amqp.Publishing) error {
	conf, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false, pub)
	if err != nil {
		return fmt.Errorf("publish to %s: %w", queue, err)
	}
	ok, err := conf.WaitContext(ctx)
	if err != nil {
		return fmt.Errorf("publish to %s: confirm: %w", queue, err)
	}
	if !ok {
		return fmt.Errorf("publish to %s: broker nacked", queue)
	}
	return nil
}

// ReplayOptions selects what Replay moves.
type ReplayOptions struct {
	Limit  int           // at most this many (0: all)
	Reason zipkin.Reason // only messages parked for this reason ("": any)
}

// ParkedReason is why a parked message is there: zipq's header, or
// delivery_limit for a message the broker's dead-lettering policy moved.
func ParkedReason(h amqp.Table) zipkin.Reason {
	if r, ok := h[HeaderReason].(string); ok {
		return zipkin.Reason(r)
	}
	if _, ok := h["x-death"]; ok {
		return zipkin.ReasonDeliveryLimit
	}
	return zipkin.ReasonUnknownRejected
}

// Replay moves parked messages back to the queue they came from, each
// republished with a confirm before its parked copy is acked (a crash in
// between leaves a duplicate, which the idempotent store absorbs). Messages
// not selected are returned to the parking queue untouched. It reports how
// many it moved.
//
// Only the messages parked when Replay starts are considered: a replayed
// message whose cause is not fixed is parked again behind them, and must
// not be picked up again in the same call, or Replay would loop forever.
func Replay(ctx context.Context, conn *amqp.Connection, cfg Config, opts ReplayOptions) (int, error) {
	cfg = cfg.WithDefaults()
	parked, err := Inspect(conn, cfg.ParkedQueue)
	if err != nil {
		return 0, fmt.Errorf("replay: %w", err)
	}
	get, err := conn.Channel()
	if err != nil {
		return 0, fmt.Errorf("replay: %w", err)
	}
	defer get.Close()
	pub, err := conn.Channel()
	if err != nil {
		return 0, fmt.Errorf("replay: %w", err)
	}
	defer pub.Close()
	if err := pub.Confirm(false); err != nil {
		return 0, fmt.Errorf("replay: confirm mode: %w", err)
	}
	var skipped []uint64
	moved := 0
	for seen := 0; seen < parked.Messages && (opts.Limit <= 0 || moved < opts.Limit); seen++ {
		if err := ctx.Err(); err != nil {
			return moved, errors.Join(err, requeue(get, skipped))
		}
		d, ok, err := get.Get(cfg.ParkedQueue, false)
		if err != nil {
			return moved, fmt.Errorf("replay: get from %s: %w", cfg.ParkedQueue, err)
		}
		if !ok {
			break // nothing ready: skipped messages are unacked, so not seen twice
		}
		if opts.Reason != "" && ParkedReason(d.Headers) != opts.Reason {
			skipped = append(skipped, d.DeliveryTag)
			continue
		}
		if err := publishConfirmed(ctx, pub, replayTarget(d.Headers, cfg.Queue), replayed(d)); err != nil {
			return moved, errors.Join(fmt.Errorf("replay: %w", err), d.Nack(false, true), requeue(get, skipped))
		}
		if err := d.Ack(false); err != nil {
			return moved, fmt.Errorf("replay: ack parked copy: %w", err)
		}
		moved++
	}
	return moved, requeue(get, skipped)
}

func requeue(ch *amqp.Channel, tags []uint64) error {
	for _, t := range tags {
		if err := ch.Nack(t, false, true); err != nil {
			return fmt.Errorf("replay: return skipped message: %w", err)
		}
	}
	return nil
}

func replayTarget(h amqp.Table, fallback string) string {
	if q, ok := h[HeaderSourceQueue].(string); ok && q != "" {
		return q
	}
	if deaths, ok := h["x-death"].([]any); ok && len(deaths) > 0 {
		if t, ok := deaths[0].(amqp.Table); ok {
			if q, ok := t["queue"].(string); ok && q != "" {
				return q
			}
		}
	}
	return fallback
}

// replayed is the original message with zipq's parking headers removed and
// the replay count raised, so a message that keeps failing is visible.
func replayed(d amqp.Delivery) amqp.Publishing {
	h := amqp.Table{}
	for k, v := range d.Headers {
		switch k {
		case HeaderReason, HeaderError, HeaderParkedAt, HeaderSourceQueue, "x-death",
			"x-first-death-exchange", "x-first-death-queue", "x-first-death-reason":
		default:
			h[k] = v
		}
	}
	n, _ := d.Headers[HeaderReplays].(int32)
	h[HeaderReplays] = n + 1
	return amqp.Publishing{Headers: h, ContentType: d.ContentType, ContentEncoding: d.ContentEncoding,
		DeliveryMode: d.DeliveryMode, Timestamp: d.Timestamp, Body: d.Body}
}
