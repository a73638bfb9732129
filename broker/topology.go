package broker

import (
	"errors"
	"fmt"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Exchange is the durable direct exchange zipkin-go's reporter declares
// and publishes to; the queue is bound to it with its own name as key.
const Exchange = "zipkin"

// Declare creates exactly what zipkin-go's reporter declares — a durable
// direct exchange "zipkin" and a durable queue with no arguments bound to it
// with its own name — so every client's declare stays equivalent and the
// broker's default queue type decides the queue's type. The parking queue
// is zipq's own: DeclareParking.
func Declare(conn *amqp.Connection, cfg Config) error {
	cfg = cfg.WithDefaults()
	return onChannel(conn, "declare", func(ch *amqp.Channel) error {
		if err := ch.ExchangeDeclare(Exchange, "direct", true, false, false, false, nil); err != nil {
			return fmt.Errorf("declare exchange %s: %w", Exchange, err)
		}
		if _, err := ch.QueueDeclare(cfg.Queue, true, false, false, false, nil); err != nil {
			return fmt.Errorf("declare queue %s: %w", cfg.Queue, err)
		}
		if err := ch.QueueBind(cfg.Queue, cfg.Queue, Exchange, false, nil); err != nil {
			return fmt.Errorf("bind queue %s: %w", cfg.Queue, err)
		}
		return nil
	})
}

// DeclareParking declares zipq's parking queue, with an explicit type. Only
// consumers need it: HTTP ingest publishes to the span queue and keeps
// working when the parking queue cannot be declared.
func DeclareParking(conn *amqp.Connection, cfg Config) error {
	cfg = cfg.WithDefaults()
	return onChannel(conn, "declare", func(ch *amqp.Channel) error {
		args := amqp.Table{"x-queue-type": cfg.ParkedQueueType}
		_, err := ch.QueueDeclare(cfg.ParkedQueue, true, false, false, false, args)
		if err == nil {
			// The dead-letter target of the span queue's delivery limit
			// (README, "A message the client cannot read"): declared so a
			// dead-lettered message has somewhere to go.
			_, err = ch.QueueDeclare(cfg.PoisonQueue(), true, false, false, false, args)
		}
		switch {
		case err == nil:
			return nil
		case preconditionFailed(err) != nil:
			return fmt.Errorf("parking queue %s exists with another type than %q: set RABBIT_PARKED_QUEUE_TYPE to its type, or delete the queue: %w",
				cfg.ParkedQueue, cfg.ParkedQueueType, err)
		default:
			return fmt.Errorf("declare parking queue %s: %w", cfg.ParkedQueue, err)
		}
	})
}

// onChannel runs fn on a channel of its own: a refused declare closes the
// channel it ran on, so a declare or a probe must not share one.
func onChannel(conn *amqp.Connection, what string, fn func(*amqp.Channel) error) error {
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("%s: open channel: %w", what, err)
	}
	defer ch.Close()
	return fn(ch)
}

// preconditionFailed is err's PRECONDITION_FAILED (406) from the broker, or
// nil: a declare that is not equivalent to the existing queue.
func preconditionFailed(err error) *amqp.Error {
	var ae *amqp.Error
	if errors.As(err, &ae) && ae.Code == amqp.PreconditionFailed {
		return ae
	}
	return nil
}

// Inspect reports a queue's ready messages and consumers without changing
// it (a passive declare on a throwaway channel, since a missing queue
// closes the channel).
func Inspect(conn *amqp.Connection, queue string) (amqp.Queue, error) {
	var q amqp.Queue
	err := onChannel(conn, "inspect "+queue, func(ch *amqp.Channel) error {
		var err error
		if q, err = ch.QueueDeclarePassive(queue, true, false, false, false, nil); err != nil {
			return fmt.Errorf("inspect %s: %w", queue, err)
		}
		return nil
	})
	return q, err
}

// QueueType reports the type of an existing queue — "quorum", "classic" or
// "stream" — which AMQP 0-9-1 has no read for. It redeclares the queue with
// x-queue-type=quorum on a throwaway channel: RabbitMQ accepts that only for
// a quorum queue and otherwise refuses with PRECONDITION_FAILED naming what
// the queue is. The passive declare first makes sure the probe can never
// create the queue with an argument that unchanged clients would then
// trip over (a queue deleted between the two calls is the only window).
func QueueType(conn *amqp.Connection, queue string) (string, error) {
	if _, err := Inspect(conn, queue); err != nil {
		return "", err
	}
	typ := "quorum"
	err := onChannel(conn, "queue type of "+queue, func(ch *amqp.Channel) error {
		_, err := ch.QueueDeclare(queue, true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
		switch ae := preconditionFailed(err); {
		case err == nil:
		case ae != nil && strings.Contains(ae.Reason, "'stream'"):
			typ = "stream"
		case ae != nil:
			typ = "classic"
		default:
			return fmt.Errorf("queue type of %s: %w", queue, err)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return typ, nil
}

// ClassicQueueWarning is what zipq says about a classic span queue, in the
// log at start, in /health and on the UI's pipeline page.
func ClassicQueueWarning(queue string) string {
	return "span queue " + queue + " is a classic queue: messages published without delivery mode 2 " +
		"(zipkin-go's AMQP reporter, Brave's RabbitMQSender) live only in the broker's memory and are lost " +
		"when RabbitMQ restarts. Recreate it as a quorum queue through the vhost's default queue type " +
		"(README, \"Durability\")"
}
