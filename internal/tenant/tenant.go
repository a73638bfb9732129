// Package tenant names whose data a piece of work is: a tenant's name
// travels in the context from where a request or message is attributed
// (auth for HTTP and gRPC, the collector for a tenant's queue) to storage,
// which keeps each tenant's rows apart. No context tenant means Default,
// the tenant of single-tenant installs.
package tenant

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Default is the tenant of requests and messages that name none (Tempo's
// name for it).
const Default = "single-tenant"

type key struct{}

// With is ctx acting for tenant name.
func With(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, key{}, name)
}

// From is the tenant ctx acts for: Default unless With named one.
func From(ctx context.Context) string {
	if name, ok := ctx.Value(key{}).(string); ok && name != "" {
		return name
	}
	return Default
}

// Parse checks a tenant name (X-Scope-OrgID) as Tempo and Cortex do: at
// most 150 bytes of letters, digits and !-_.*'(), and not "." or "..".
func Parse(v string) (string, error) {
	if v == "" || len(v) > 150 {
		return "", fmt.Errorf("tenant %q: want 1 to 150 characters", truncate(v))
	}
	if v == "." || v == ".." {
		return "", fmt.Errorf("tenant %q is not allowed", v)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; !alnum(c) && strings.IndexByte("!-_.*'()", c) < 0 {
			return "", fmt.Errorf("tenant %q: character %q at %d: want letters, digits and !-_.*'()", truncate(v), c, i)
		}
	}
	return v, nil
}

func alnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Tenant is one tenant's settings: its span queue (collectors consume it,
// HTTP and OTLP ingest publish a request for the tenant to it), on the
// broker of RABBIT_URI or of a URI of its own (a vhost and user per
// tenant), and its limits.
type Tenant struct {
	Name  string
	URI   string // "": RABBIT_URI
	Queue string
	Limits
}

// Limits bound what one tenant may use; zero is unlimited (or, for
// Retention, the installation's).
type Limits struct {
	// SpansPerSecond and BytesPerSecond bound ingest: HTTP and OTLP are
	// answered 429 (RESOURCE_EXHAUSTED) with a retry delay past them, the
	// tenant's queue consumers slow down.
	SpansPerSecond, BytesPerSecond float64
	// Retention keeps the tenant's spans this long, when shorter than the
	// installation's retention.
	Retention time.Duration
	// RetentionBytes, when positive, bounds the bytes its spans take:
	// past it, its oldest days of spans are deleted (and those days'
	// partitions rewritten, so the disk shrinks), never today's.
	RetentionBytes int64
	// MaxSeries bounds the tenant's span metrics label sets (and edges),
	// instead of ZIPQ_SPAN_METRICS_MAX_SERIES.
	MaxSeries int
	// MaxTraceSpans bounds the spans of one of its traces: what would
	// exceed it is parked (store_rejected), for a replay once raised.
	MaxTraceSpans int
}

// ParseTable reads ZIPQ_TENANTS_FILE: one tenant per line, its name then
// key=value settings, e.g.
//
//	team-a queue=zipkin.team-a spans_per_second=20000 bytes_per_second=10000000 retention=72h max_series=2000
//	team-c retention_bytes=50000000000
//	team-b uri=amqp://team-b:secret@rabbitmq:5672/team-b
//
// A tenant's queue defaults to <defaultQueue>.<name>, or, with a uri of
// its own (another vhost), to defaultQueue there; the default tenant
// (Default) may be listed for its limits, and its queue is always
// defaultQueue. Blank lines and # comments are skipped. Errors name the
// line; a table with any bad line is refused whole.
func ParseTable(r io.Reader, defaultQueue string) ([]Tenant, error) {
	var out []Tenant
	var errs []error
	seen := map[string]int{}
	queues := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		t, err := parseLine(line, defaultQueue)
		switch prev, dup := seen[t.Name]; {
		case err != nil:
			errs = append(errs, fmt.Errorf("line %d: %w", n, err))
			continue
		case dup:
			errs = append(errs, fmt.Errorf("line %d: tenant %q is also on line %d", n, t.Name, prev))
			continue
		}
		where := t.URI + " " + t.Queue
		if other, taken := queues[where]; taken {
			errs = append(errs, fmt.Errorf("line %d: queue %q is also tenant %q's: one queue holds one tenant's spans", n, t.Queue, other))
			continue
		}
		seen[t.Name], queues[where] = n, t.Name
		out = append(out, t)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

func parseLine(line, defaultQueue string) (Tenant, error) {
	f := strings.Fields(line)
	name, err := Parse(f[0])
	if err != nil {
		return Tenant{}, err
	}
	t := Tenant{Name: name, Queue: defaultQueue + "." + name}
	if name == Default {
		t.Queue = defaultQueue
	}
	queued := false
	for _, kv := range f[1:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || v == "" {
			return Tenant{}, fmt.Errorf("%q: want key=value", kv)
		}
		switch k {
		case "uri":
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") || u.Host == "" || name == Default {
				return Tenant{}, fmt.Errorf("uri: want amqp:// or amqps://user:password@host:port/vhost (not for the default tenant, whose is RABBIT_URI)")
			}
			t.URI = v
			if !queued {
				t.Queue = defaultQueue // a vhost of its own: the queue name its services already use
			}
		case "queue":
			queued = true
			if name == Default && v != defaultQueue {
				return Tenant{}, fmt.Errorf("queue %q: the default tenant's queue is RABBIT_QUEUE (%q)", v, defaultQueue)
			}
			t.Queue = v
		case "spans_per_second", "bytes_per_second":
			x, err := strconv.ParseFloat(v, 64)
			if err != nil || x < 0 || math.IsInf(x, 0) || math.IsNaN(x) {
				return Tenant{}, fmt.Errorf("%s %q: want a non-negative number (0: unlimited)", k, v)
			}
			if k == "spans_per_second" {
				t.SpansPerSecond = x
			} else {
				t.BytesPerSecond = x
			}
		case "retention_bytes":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 {
				return Tenant{}, fmt.Errorf("%s %q: want a positive number of bytes", k, v)
			}
			t.RetentionBytes = n
		case "max_series", "max_trace_spans":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return Tenant{}, fmt.Errorf("%s %q: want a positive integer", k, v)
			}
			if k == "max_series" {
				t.MaxSeries = n
			} else {
				t.MaxTraceSpans = n
			}
		case "retention":
			d, err := time.ParseDuration(v)
			if err != nil || d < 24*time.Hour {
				return Tenant{}, fmt.Errorf("retention %q: want a duration of at least 24h", v)
			}
			t.Retention = d
		default:
			return Tenant{}, fmt.Errorf("%q: unknown setting (uri, queue, spans_per_second, bytes_per_second, retention, retention_bytes, max_series, max_trace_spans)", k)
		}
	}
	return t, nil
}
