package collector

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// ErrUnavailable means RabbitMQ could not be reached or did not confirm:
// nothing was accepted and the client should retry (HTTP 503).
var ErrUnavailable = errors.New("rabbitmq unavailable")

// Publisher hands span messages to the span queue with publisher confirms,
// so an HTTP client is told "accepted" only once RabbitMQ holds the message
// as durably as an AMQP client's. It connects lazily and reconnects after
// a failure; concurrent Publish calls share one confirm-mode channel.
type Publisher struct {
	cfg Config

	mu   sync.Mutex
	conn *amqp.Connection
	ch   *amqp.Channel
}

// NewPublisher returns a publisher for cfg's queue; it dials on first use.
func NewPublisher(cfg Config) *Publisher {
	return &Publisher{cfg: cfg.WithDefaults()}
}

// Publish sends one message (a JSON v2 or proto3 span list, as the
// collector reads it) persistently and waits for RabbitMQ's confirm. Any
// failure wraps ErrUnavailable.
func (p *Publisher) Publish(ctx context.Context, body []byte, contentType string) error {
	ch, err := p.channel()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	pub := amqp.Publishing{ContentType: contentType, DeliveryMode: amqp.Persistent, Timestamp: time.Now(), Body: body}
	// A failure leaves the channel to channel(): it reopens it once the
	// broker or the connection closed it. Closing it here would fail the
	// other requests waiting on confirms over it, e.g. when only this
	// request's client went away.
	if err := publishConfirmed(ctx, ch, p.cfg.Queue, pub); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// Ping reports whether RabbitMQ is reachable, connecting if needed (/health).
func (p *Publisher) Ping(context.Context) error {
	_, err := p.connection()
	return err
}

// Close closes the connection; in-flight publishes fail.
func (p *Publisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == nil {
		return nil
	}
	err := p.conn.Close()
	p.conn, p.ch = nil, nil
	return err
}

func (p *Publisher) channel() (*amqp.Channel, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ch != nil && !p.ch.IsClosed() {
		return p.ch, nil
	}
	if p.conn == nil || p.conn.IsClosed() {
		conn, err := Dial(p.cfg, "zipq http ingest")
		if err != nil {
			return nil, fmt.Errorf("dial: %w", err)
		}
		// Declare the topology so a message published before any collector
		// started waits in the queue instead of being dropped unrouted.
		if err := Declare(conn, p.cfg); err != nil {
			_ = conn.Close()
			return nil, err
		}
		p.conn = conn
	}
	ch, err := p.conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("confirm mode: %w", err)
	}
	p.ch = ch
	return ch, nil
}
