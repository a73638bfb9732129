// Package broker is zipq's side of RabbitMQ shared by every process: the
// topology (the span queue exactly as Zipkin's clients declare it, and
// zipq's parking queue), dialling a node of a cluster, the confirming
// publisher of HTTP ingest and self-tracing, parking with the reason
// attached, replay, and the pipeline monitor. The collector consumes
// through it; the query process publishes through it without depending on
// the collector.
package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/zipq/zipq/internal/certs"
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
	// ManagementURL is RabbitMQ's management API (Management): empty, the
	// first node's port 15672 (15671 for amqps) with URL's credentials;
	// ManagementOff, none (no policy set, the poison queue left alone).
	ManagementURL string
	// DeliveryLimit is the span queue policy's delivery-limit, set when no
	// policy applies to the queue.
	DeliveryLimit int
	// UseSSL (Zipkin's RABBIT_USE_SSL) connects with TLS: an amqp:// URL
	// is dialled as amqps:// (default port 5671). CAFile is the CA that
	// signed the broker's certificate (empty: the system's); CertFile and
	// KeyFile a client certificate, for brokers that verify peers. An
	// amqps:// URL uses TLS whatever UseSSL says.
	UseSSL                    bool
	CAFile, CertFile, KeyFile string
}

// TLS is the client TLS configuration, nil when the URL is not amqps.
func (c Config) TLS() (*tls.Config, error) {
	if !strings.HasPrefix(c.WithDefaults().URL, "amqps://") {
		return nil, nil
	}
	return certs.Client(c.CAFile, c.CertFile, c.KeyFile)
}

// ManagementOff as ManagementURL turns off zipq's use of the management API.
const ManagementOff = "off"

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
		DeliveryLimit:   20,
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
	if c.DeliveryLimit == 0 {
		c.DeliveryLimit = d.DeliveryLimit
	}
	if c.UseSSL && strings.HasPrefix(c.URL, "amqp://") {
		c.URL = "amqps://" + strings.TrimPrefix(c.URL, "amqp://")
		if u, err := url.Parse(c.URL); err == nil && u.Port() == "5672" {
			u.Host = u.Hostname() + ":5671"
			c.URL = u.String()
		}
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
	if c.DeliveryLimit < 1 {
		errs = append(errs, fmt.Errorf("span queue delivery limit %d: want a positive number", c.DeliveryLimit))
	}
	if c.ManagementURL != "" && c.ManagementURL != ManagementOff {
		if u, err := url.Parse(c.ManagementURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("rabbit management url %q: want http(s)://host:port, or %q", c.ManagementURL, ManagementOff))
		}
	}
	if _, err := c.TLS(); err != nil {
		errs = append(errs, fmt.Errorf("rabbit %w", err))
	}
	if c.ParkedQueueType != "quorum" && c.ParkedQueueType != "classic" {
		errs = append(errs, fmt.Errorf("parked queue type %q: want quorum or classic", c.ParkedQueueType))
	}
	return errors.Join(errs...)
}
