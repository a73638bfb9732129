package broker

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// brokerURLs are the AMQP URLs to try: URL itself, or with Addresses
// (Zipkin's RABBIT_ADDRESSES) one per address, each taking the URL's user,
// password, vhost and options with that host:port.
func (c Config) brokerURLs() ([]string, error) {
	if len(c.Addresses) == 0 {
		return []string{c.URL}, nil
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, fmt.Errorf("rabbit uri: %w", err)
	}
	urls := make([]string, 0, len(c.Addresses))
	for _, a := range c.Addresses {
		v := *u
		v.Host = a
		urls = append(urls, v.String())
	}
	return urls, nil
}

func validAddress(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf("rabbit address %q: want host:port", a)
	}
	return nil
}

// Dial connects to the first reachable broker of the configured ones, in
// their order (a node that is down refuses at once), so each process can
// be pointed at its own node first and still reach the others. Each
// reconnect dials again, so a process whose node went away moves on.
func Dial(cfg Config, name string) (*amqp.Connection, error) {
	urls, err := cfg.WithDefaults().brokerURLs()
	if err != nil {
		return nil, err
	}
	tc, err := cfg.TLS()
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, u := range urls {
		conn, err := amqp.DialConfig(u, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second), TLSClientConfig: tc,
			Properties: amqp.Table{"connection_name": name}})
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("no RabbitMQ node reachable: %w", errors.Join(errs...))
}
