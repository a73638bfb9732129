package broker

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
	conn *lazyConn

	mu sync.Mutex
	ch *amqp.Channel
}

// NewPublisher returns a publisher for cfg's queue; it dials on first use.
func NewPublisher(cfg Config) *Publisher {
	return &Publisher{conn: newLazyConn(cfg, "zipq http ingest")}
}

// Publish sends one message (a JSON v2 or proto3 span list, as the
// collector reads it) persistently and waits for RabbitMQ's confirm. Any
// failure wraps ErrUnavailable.
func (p *Publisher) Publish(ctx context.Context, body []byte, contentType string) error {
	ch, err := p.channel()
	if err != nil {
		return unavailable(err)
	}
	pub := amqp.Publishing{ContentType: contentType, DeliveryMode: amqp.Persistent, Timestamp: time.Now(), Body: body}
	// A failure leaves the channel to channel(): it reopens it once the
	// broker or the connection closed it. Closing it here would fail the
	// other requests waiting on confirms over it, e.g. when only this
	// request's client went away.
	if err := publishConfirmed(ctx, ch, p.conn.cfg.Queue, pub); err != nil {
		return unavailable(err)
	}
	return nil
}

// unavailable wraps err in ErrUnavailable once.
func unavailable(err error) error {
	if errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// Ping reports whether RabbitMQ is reachable, connecting if needed (/health).
func (p *Publisher) Ping(context.Context) error {
	_, err := p.conn.get()
	return err
}

// QueueType reports the span queue's type (/health).
func (p *Publisher) QueueType() (string, error) {
	conn, err := p.conn.get()
	if err != nil {
		return "", err
	}
	return QueueType(conn, p.conn.cfg.Queue)
}

// Close closes the connection; in-flight publishes fail.
func (p *Publisher) Close() error {
	p.mu.Lock()
	p.ch = nil
	p.mu.Unlock()
	return p.conn.close()
}

func (p *Publisher) channel() (*amqp.Channel, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ch != nil && !p.ch.IsClosed() {
		return p.ch, nil
	}
	conn, err := p.conn.get()
	if err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
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

// lazyConn is a connection dialled on first use and again after it closed.
type lazyConn struct {
	cfg  Config
	name string

	mu     sync.Mutex
	conn   *amqp.Connection
	closed bool // by its owner: no more dialling
}

func newLazyConn(cfg Config, name string) *lazyConn {
	return &lazyConn{cfg: cfg.WithDefaults(), name: name}
}

// get returns the live connection, dialling if needed; errors wrap
// ErrUnavailable.
func (l *lazyConn) get() (*amqp.Connection, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil && !l.conn.IsClosed() {
		return l.conn, nil
	}
	if l.closed {
		return nil, fmt.Errorf("%w: closed", ErrUnavailable)
	}
	conn, err := Dial(l.cfg, l.name)
	if err != nil {
		return nil, fmt.Errorf("%w: dial: %w", ErrUnavailable, err)
	}
	// Declare the topology so a message published before any collector
	// started waits in the queue instead of being dropped unrouted.
	if err := Declare(conn, l.cfg); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	l.conn = conn
	return conn, nil
}

func (l *lazyConn) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.conn == nil {
		return nil
	}
	err := l.conn.Close()
	l.conn = nil
	return err
}
