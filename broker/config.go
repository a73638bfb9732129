// Package broker is zipq's side of RabbitMQ shared by every process: the
// topology (the span queue exactly as Zipkin's clients declare it, and
// zipq's parking queue), dialling a node of a cluster, the confirming
// publisher of HTTP ingest and self-tracing, parking with the reason
// attached, replay, and the pipeline monitor. The collector consumes
// through it; the query process publishes through it without depending on
// the collector.
package broker

import (
	"errors"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Config says where the span queue is. Zero fields take DefaultConfig's
// values (WithDefaults).
type Config struct {
	URL string // RABBIT_URI
	// Addresses (Zipkin's RABBIT_ADDRESSES) are a cluster's nodes, as
	// host:port: connections go to any reachable one, with URL's user,
	// password and vhost. Empty: URL's host.
	Addresses       []string
	Queue           string // RABBIT_QUEUE
	ParkedQueue     string // default Queue + ".parked"
	ParkedQueueType string // x-queue-type of the parking queue: "quorum" or "classic"
}

// PoisonQueue is where the span queue's delivery-limit policy dead-letters
// a message redelivered too often: Queue + ".poison".
func (c Config) PoisonQueue() string { return c.WithDefaults().Queue + ".poison" }

// DefaultConfig is the one source of the broker settings' defaults; the
// command line binds its flags from it.
func DefaultConfig() Config {
	return Config{
		URL:             "amqp://guest:guest@127.0.0.1:5672/",
		Queue:           "zipkin",
		ParkedQueueType: "quorum",
	}
}

// WithDefaults returns c with every zero field set from DefaultConfig (the
// parking queue from the queue's name).
func (c Config) WithDefaults() Config {
	d := DefaultConfig()
	if c.URL == "" {
		c.URL = d.URL
	}
	if c.Queue == "" {
		c.Queue = d.Queue
	}
	if c.ParkedQueue == "" {
		c.ParkedQueue = c.Queue + ".parked"
	}
	if c.ParkedQueueType == "" {
		c.ParkedQueueType = d.ParkedQueueType
	}
	return c
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var errs []error
	if _, err := amqp.ParseURI(c.URL); err != nil {
		errs = append(errs, fmt.Errorf("rabbit uri: %w", err))
	}
	for _, a := range c.Addresses {
		if err := validAddress(a); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Queue == c.ParkedQueue {
		errs = append(errs, fmt.Errorf("parked queue must differ from the queue %q", c.Queue))
	}
	if c.ParkedQueueType != "quorum" && c.ParkedQueueType != "classic" {
		errs = append(errs, fmt.Errorf("parked queue type %q: want quorum or classic", c.ParkedQueueType))
	}
	return errors.Join(errs...)
}
