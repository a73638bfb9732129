package broker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/zipq/zipq/zipkin"
)

// Management is RabbitMQ's management HTTP API, for the two things AMQP
// cannot do. It sets the span queue's delivery-limit policy: a policy,
// because a queue argument would make every client's argument-less
// declaration of the queue fail. And it reads the messages that policy
// dead-letters to the poison queue: those are there because the AMQP client
// could not decode their headers, so zipq cannot read them over AMQP, while
// the broker renders any header as JSON.
type Management struct {
	base       *url.URL // scheme and host
	user, pass string
	vhost      string
	cfg        Config
	client     *http.Client
}

// maxManagementAnswer bounds what one management API answer may take: a
// poison message is at most as large as any message the broker accepted,
// and rendered as base64 JSON a third more.
const maxManagementAnswer = 1 << 30

// SpanQueuePolicyName is the name of the policy zipq sets when none
// applies to the span queue: the one `make run` sets for "zipkin", and
// one per queue name otherwise (several installations share a vhost).
func SpanQueuePolicyName(queue string) string {
	if queue == DefaultConfig().Queue {
		return "zipq-span-queue"
	}
	return "zipq-span-queue-" + queue
}

// NewManagement returns the management API client of cfg; nil when
// cfg.ManagementURL is "off".
func NewManagement(cfg Config) (*Management, error) {
	cfg = cfg.WithDefaults()
	if cfg.ManagementURL == ManagementOff {
		return nil, nil
	}
	u, err := url.Parse(cfg.managementURL())
	if err != nil {
		return nil, fmt.Errorf("rabbit management url: %w", err)
	}
	amqpURI, err := amqp.ParseURI(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("rabbit uri: %w", err)
	}
	// The management API of a broker spoken to over TLS is trusted with
	// the same CA and client certificate.
	tc, err := cfg.TLS()
	if err != nil {
		return nil, err
	}
	m := &Management{base: &url.URL{Scheme: u.Scheme, Host: u.Host}, user: amqpURI.Username, pass: amqpURI.Password,
		vhost: amqpURI.Vhost, cfg: cfg,
		// No keep-alive: calls are rare (a session start, a poison
		// message), and an idle connection would outlive the collector.
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
			Proxy: http.ProxyFromEnvironment, TLSClientConfig: tc}}}
	if u.User != nil {
		m.user = u.User.Username()
		m.pass, _ = u.User.Password()
	}
	return m, nil
}

// managementURL is ManagementURL, or the management port of the first node
// with the AMQP URL's credentials (15672, 15671 for amqps).
func (c Config) managementURL() string {
	if c.ManagementURL != "" {
		return c.ManagementURL
	}
	uri, err := amqp.ParseURI(c.URL)
	if err != nil {
		return ""
	}
	host := uri.Host
	if len(c.Addresses) > 0 {
		host, _, _ = net.SplitHostPort(c.Addresses[0])
	}
	scheme, port := "http", "15672"
	if uri.Scheme == "amqps" {
		scheme, port = "https", "15671"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// call sends one request; out (may be nil) receives the JSON answer. A 404
// is errNotFound.
func (m *Management) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, m.base.String()+path, body)
	if err != nil {
		return err
	}
	req.SetBasicAuth(m.user, m.pass)
	req.Header.Set("Content-Type", "application/json")
	resp, err := m.client.Do(req)
	if err != nil {
		return fmt.Errorf("rabbitmq management api: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return errNotFound
	}
	if resp.StatusCode >= 300 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("rabbitmq management api: %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(msg))
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxManagementAnswer)).Decode(out); err != nil {
		return fmt.Errorf("rabbitmq management api: %s %s: %w", method, path, err)
	}
	return nil
}

var errNotFound = errors.New("not found")

type policy struct {
	Name       string         `json:"name"`
	Pattern    string         `json:"pattern"`
	ApplyTo    string         `json:"apply-to"`
	Definition map[string]any `json:"definition"`
	Priority   int            `json:"priority"`
}

// EnsureSpanQueuePolicy gives the span queue a delivery limit that
// dead-letters to the poison queue, unless a policy already applies to it
// (an operator's, which is left as it is: only one policy applies to a
// queue, the highest priority's). It says what it found or did.
func (m *Management) EnsureSpanQueuePolicy(ctx context.Context) (string, error) {
	vh := url.PathEscape(m.vhost)
	var ps []policy
	if err := m.call(ctx, http.MethodGet, "/api/policies/"+vh, nil, &ps); err != nil && !errors.Is(err, errNotFound) {
		return "", err
	}
	for _, p := range ps {
		if !appliesToQueues(p.ApplyTo) {
			continue
		}
		re, err := regexp.Compile(p.Pattern)
		if err != nil || !re.MatchString(m.cfg.Queue) {
			continue // a pattern Go cannot read is some other queue's
		}
		if _, ok := p.Definition["delivery-limit"]; !ok {
			return fmt.Sprintf("policy %q applies to the span queue without a delivery-limit: a message the client cannot decode will come back forever (README, \"A message the client cannot read\")", p.Name), nil
		}
		return fmt.Sprintf("policy %q applies to the span queue (delivery-limit %v)", p.Name, p.Definition["delivery-limit"]), nil
	}
	want := policy{Pattern: "^" + regexp.QuoteMeta(m.cfg.Queue) + "$", ApplyTo: "queues", Definition: map[string]any{
		"delivery-limit":          m.cfg.DeliveryLimit,
		"dead-letter-exchange":    "",
		"dead-letter-routing-key": m.cfg.PoisonQueue(),
	}}
	name := SpanQueuePolicyName(m.cfg.Queue)
	if err := m.call(ctx, http.MethodPut, "/api/policies/"+vh+"/"+url.PathEscape(name), want, nil); err != nil {
		return "", err
	}
	return fmt.Sprintf("set policy %q: the span queue dead-letters a message delivered %d times to %s", name, m.cfg.DeliveryLimit, m.cfg.PoisonQueue()), nil
}

// RemoveSpanQueuePolicy deletes the policy EnsureSpanQueuePolicy sets,
// found by its name (so an operator's is never touched); none is no error.
// For whoever tears a span queue down, as zipq-bench does after a run.
func (m *Management) RemoveSpanQueuePolicy(ctx context.Context) error {
	path := "/api/policies/" + url.PathEscape(m.vhost) + "/" + url.PathEscape(SpanQueuePolicyName(m.cfg.Queue))
	if err := m.call(ctx, http.MethodDelete, path, nil, nil); err != nil && !errors.Is(err, errNotFound) {
		return err
	}
	return nil
}

func appliesToQueues(applyTo string) bool {
	switch applyTo {
	case "queues", "all", "quorum_queues", "":
		return true
	}
	return false
}

// managedMessage is a message as the management API's "get" renders it.
type managedMessage struct {
	Payload         string `json:"payload"`
	PayloadEncoding string `json:"payload_encoding"`
	Properties      struct {
		ContentType     string          `json:"content_type"`
		ContentEncoding string          `json:"content_encoding"`
		Headers         json.RawMessage `json:"headers"`
	} `json:"properties"`
}

func (mm managedMessage) body() ([]byte, error) {
	if mm.PayloadEncoding == "base64" {
		return base64.StdEncoding.DecodeString(mm.Payload)
	}
	return []byte(mm.Payload), nil
}

// getOne takes the poison queue's first message; requeue leaves it there.
func (m *Management) getOne(ctx context.Context, requeue bool) (*managedMessage, error) {
	ack := "ack_requeue_false"
	if requeue {
		ack = "ack_requeue_true"
	}
	var got []managedMessage
	err := m.call(ctx, http.MethodPost, "/api/queues/"+url.PathEscape(m.vhost)+"/"+url.PathEscape(m.cfg.PoisonQueue())+"/get",
		map[string]any{"count": 1, "ackmode": ack, "encoding": "base64"}, &got)
	if errors.Is(err, errNotFound) || (err == nil && len(got) == 0) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &got[0], nil
}

// MovePoison moves up to limit messages from the poison queue to the
// parking queue, where the pipeline page, replay and discard handle them.
// Their AMQP headers — what the client could not decode — are dropped,
// rendered as text into the parking reason; body, content type and
// encoding are kept, so a replay stores the spans of a message whose only
// fault was its headers. Each is parked (confirmed) before it is taken off
// the poison queue: a crash in between leaves a duplicate, never a loss; if
// another process took it meanwhile, what was taken is parked too.
func (m *Management) MovePoison(ctx context.Context, park *Parker, limit int) (int, error) {
	moved := 0
	for moved < limit {
		peeked, err := m.getOne(ctx, true)
		if err != nil || peeked == nil {
			return moved, err
		}
		sum, err := m.park(ctx, park, peeked)
		if err != nil {
			return moved, err
		}
		taken, err := m.getOne(ctx, false)
		if err != nil || taken == nil {
			return moved, err
		}
		if b, _ := taken.body(); sha256.Sum256(b) != sum {
			if _, err := m.park(ctx, park, taken); err != nil {
				return moved, fmt.Errorf("a poison message was taken but not parked: %w", err)
			}
		}
		moved++
	}
	return moved, nil
}

func (m *Management) park(ctx context.Context, park *Parker, mm *managedMessage) ([sha256.Size]byte, error) {
	body, err := mm.body()
	if err != nil {
		return [sha256.Size]byte{}, fmt.Errorf("poison message payload: %w", err)
	}
	headers := string(mm.Properties.Headers)
	if len(headers) > 600 {
		headers = headers[:600] + "…(" + strconv.Itoa(len(headers)) + " bytes)"
	}
	cause := fmt.Errorf("dead-lettered by the span queue's delivery limit (a message that dropped the connection on every delivery, "+
		"or that collectors died holding); its AMQP headers were dropped, as the client may not decode them: %s", headers)
	d := amqp.Delivery{Body: body, ContentType: mm.Properties.ContentType, ContentEncoding: mm.Properties.ContentEncoding}
	return sha256.Sum256(body), park.Park(ctx, d, zipkin.ReasonDeliveryLimit, cause)
}
