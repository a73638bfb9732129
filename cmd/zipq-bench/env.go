package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/zipq/zipq/broker"
	"github.com/zipq/zipq/ingest"
	"github.com/zipq/zipq/storage"
	"github.com/zipq/zipq/zipkin"
)

// bench holds what every part of the run shares.
type bench struct {
	ctx     context.Context
	pgURL   string // server URL; each part gets its own schema
	amqpURL string
	zipq    string // path of a plain (non-race) zipq binary
	work    string // scratch directory (logs, profiles)
	imgDir  string
	// collectorEnv is extra configuration for every zipq collector started.
	collectorEnv []string
	cleanups     []func()
}

func (b *bench) cleanup() {
	for i := len(b.cleanups) - 1; i >= 0; i-- {
		b.cleanups[i]()
	}
}

func randomID() string {
	var buf [5]byte
	_, _ = rand.Read(buf[:])
	return hex.EncodeToString(buf[:])
}

// schema creates a fresh, migrated schema and returns a URL selecting it.
func (b *bench) schema(name string) (string, *storage.Store) { return b.schemaAt(name, -1) }

// legacySchema is a schema of the per-span layout zipq stored before
// segments (migrations up to storage.LegacyVersion): the raw COPY baseline
// writes there, into the same table and indexes the per-span store had
// (rows land in its default partition, which carries every index).
func (b *bench) legacySchema(name string) (string, *storage.Store) {
	return b.schemaAt(name, storage.LegacyVersion)
}

func (b *bench) schemaAt(name string, version int64) (string, *storage.Store) {
	schema := "zipq_bench_" + name + "_" + randomID()
	conn, err := pgx.Connect(b.ctx, b.pgURL)
	must(err)
	_, err = conn.Exec(b.ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize())
	must(err)
	conn.Close(b.ctx)
	u, err := url.Parse(b.pgURL)
	must(err)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	st, err := storage.Open(b.ctx, storage.Config{URL: u.String(), MaxConns: 8, Columns: ingest.SpanColumns}, nil)
	must(err)
	must(st.MigrateTo(b.ctx, version))
	if version < 0 {
		must(st.Maintain(b.ctx, time.Now()))
	}
	b.cleanups = append(b.cleanups, func() {
		st.Close()
		c, err := pgx.Connect(context.Background(), b.pgURL)
		if err == nil {
			_, _ = c.Exec(context.Background(), "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
			c.Close(context.Background())
		}
	})
	return u.String(), st
}

// queue names a fresh queue (and its parking queue), deleted at the end.
func (b *bench) queue(name string) string {
	q := "zipq.bench." + name + "." + randomID()
	b.cleanups = append(b.cleanups, func() {
		conn, err := amqp.Dial(b.amqpURL)
		if err != nil {
			return
		}
		defer conn.Close()
		for _, n := range []string{q, q + ".parked", q + ".poison"} {
			if ch, err := conn.Channel(); err == nil {
				_, _ = ch.QueueDelete(n, false, false, false)
				_ = ch.Close()
			}
		}
		// The delivery-limit policy a zipq serve of the bench set on it.
		if m, err := broker.NewManagement(broker.Config{URL: b.amqpURL, Queue: q}); err == nil && m != nil {
			_ = m.RemoveSpanQueuePolicy(context.Background())
		}
	})
	return q
}

func count(ctx context.Context, dsn string) int {
	conn, err := pgx.Connect(ctx, dsn)
	must(err)
	defer conn.Close(ctx)
	var n int
	// Spans stored (cheap: no segment is decompressed), for progress.
	must(conn.QueryRow(ctx, "SELECT coalesce(sum(span_count), 0) FROM segments").Scan(&n))
	return n
}

// proc is a running zipq subprocess.
type proc struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{}
}

func (b *bench) start(name string, env []string, args ...string) *proc {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	addr := ln.Addr().String()
	ln.Close()
	p := &proc{addr: addr, done: make(chan struct{})}
	p.cmd = exec.Command(b.zipq, args...)
	env = append(env, b.collectorEnv...)
	// OTLP on ports of the kernel's choosing unless env sets them: several
	// processes run at once.
	otlp := []string{"ZIPQ_OTLP_HTTP_ADDR=127.0.0.1:0", "ZIPQ_OTLP_GRPC_ADDR=127.0.0.1:0"}
	p.cmd.Env = append(append(os.Environ(), otlp...), append(env, "ZIPQ_HTTP_ADDR="+addr, "ZIPQ_LOG_LEVEL=warn", "ZIPQ_PPROF=true")...)
	logf, err := os.Create(filepath.Join(b.work, name+".log"))
	must(err)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	must(p.cmd.Start())
	go func() { _ = p.cmd.Wait(); logf.Close(); close(p.done) }()
	b.cleanups = append(b.cleanups, p.stop)
	for i := 0; i < 600; i++ {
		if resp, err := http.Get("http://" + addr + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	panic(fmt.Sprintf("zipq %s did not become healthy; see %s", name, logf.Name()))
}

func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// peakRSS is the process's resident high-water mark (VmHWM) in MiB.
func (p *proc) peakRSS() float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

// spans makes n realistic spans: traces of 10 spans over 8 services
// (CLIENT/SERVER pairs sharing ids, local spans), six tags each, a
// quarter with annotations, 5% errors; timestamps spread over the
// window before end.
func spans(n int, seed uint64, end time.Time, window time.Duration) []zipkin.Span {
	services := []string{"frontend", "checkout", "payments", "inventory", "users", "search", "cart", "shipping"}
	names := []string{"get /api/items", "post /api/cart", "charge", "reserve", "select users", "query", "put /cart", "ship"}
	out := make([]zipkin.Span, n)
	r := seed*0x9E3779B97F4A7C15 + 1
	next := func() uint64 { r ^= r << 13; r ^= r >> 7; r ^= r << 17; return r }
	var trace zipkin.TraceID
	var start int64
	for i := range out {
		k := i % 10
		if k == 0 {
			trace = zipkin.TraceID{High: next(), Low: next()}
			start = end.Add(-time.Duration(next() % uint64(window))).UnixMicro()
		}
		svc := k % len(services)
		s := zipkin.Span{
			TraceID: trace, ID: zipkin.SpanID(next() | 1), Name: names[svc],
			Timestamp: start + int64(k*150), Duration: int64(200 + next()%50000),
			LocalEndpoint: &zipkin.Endpoint{ServiceName: services[svc], Port: 8080},
			Tags: map[string]string{"http.method": "GET", "http.path": "/api/v1/items/" + strconv.Itoa(int(next()%1000)),
				"http.status_code": "200", "component": "net/http", "peer.hostname": "10.0.0." + strconv.Itoa(svc), "instance": strconv.Itoa(int(next() % 7))},
		}
		if k > 0 {
			s.ParentID = out[i-1].ID
			s.Kind = zipkin.KindServer
			if k%2 == 1 {
				s.Kind = zipkin.KindClient
				s.RemoteEndpoint = &zipkin.Endpoint{ServiceName: services[(svc+1)%len(services)]}
			}
		} else {
			s.Kind = zipkin.KindServer
		}
		if i%4 == 0 {
			s.Annotations = []zipkin.Annotation{{Timestamp: s.Timestamp + 10, Value: "wire.send"}}
		}
		if next()%20 == 0 {
			s.Tags["error"] = "timeout"
		}
		out[i] = s
	}
	return out
}

// messages encodes spans as JSON v2 bodies of perMessage spans each.
func messages(sp []zipkin.Span, perMessage int) [][]byte {
	var out [][]byte
	for i := 0; i < len(sp); i += perMessage {
		out = append(out, zipkin.EncodeJSON(sp[i:min(i+perMessage, len(sp))]))
	}
	return out
}

// publish sends bodies persistently with publisher confirms, keeping up
// to window confirms outstanding, as a fast client does.
func (b *bench) publish(queue string, bodies [][]byte) time.Duration {
	conn, err := amqp.Dial(b.amqpURL)
	must(err)
	defer conn.Close()
	ch, err := conn.Channel()
	must(err)
	must(ch.Confirm(false))
	start := time.Now()
	const window = 2000
	pending := make([]*amqp.DeferredConfirmation, 0, window)
	for _, body := range bodies {
		dc, err := ch.PublishWithDeferredConfirmWithContext(b.ctx, "", queue, false, false,
			amqp.Publishing{ContentType: "application/json", DeliveryMode: amqp.Persistent, Body: body})
		must(err)
		pending = append(pending, dc)
		if len(pending) == window {
			for _, p := range pending[:window/2] {
				if !p.Wait() {
					panic("broker nacked a publish")
				}
			}
			pending = append(pending[:0], pending[window/2:]...)
		}
	}
	for _, p := range pending {
		if !p.Wait() {
			panic("broker nacked a publish")
		}
	}
	return time.Since(start)
}

// declare creates the queue (and its parking queue) as a collector would,
// so messages published before one starts wait in it.
func declare(amqpURL, queue string) {
	conn, err := amqp.Dial(amqpURL)
	must(err)
	defer conn.Close()
	must(broker.Declare(conn, broker.Config{Queue: queue}))
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
