package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zipq/zipq/broker"
	"github.com/zipq/zipq/internal/testenv"
	"github.com/zipq/zipq/zipkin"
)

// dialSlow connects with a tiny receive buffer, so a response the client
// never reads stalls the server's writes after a few kilobytes.
func dialSlow(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	conn, err := d.Dial("tcp", addr)
	testenv.Must(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// closedWithin reports whether the server closes conn within d: reading
// (and discarding whatever it had sent) ends in EOF or a reset, not in the
// client's own deadline.
func closedWithin(conn net.Conn, d time.Duration) (bool, int64) {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	n, err := io.Copy(io.Discard, conn)
	var ne net.Error
	timedOut := errors.As(err, &ne) && ne.Timeout()
	return !timedOut, n
}

// TestSlowClientsAreCutOff: clients that never read a large search answer,
// send a body a byte at a time, idle on a keep-alive connection or send
// huge headers cannot hold connections or memory: each is cut off by its
// limit, the heap returns to where it was, and the API keeps answering
// others meanwhile. Not parallel: its heap and timing figures need the
// machine to itself (it runs before the parallel tests start).
func TestSlowClientsAreCutOff(t *testing.T) {
	f := newFixture(t)
	p := startZipq(t, append(f.env, "ZIPQ_HTTP_READ_TIMEOUT=2s", "ZIPQ_HTTP_WRITE_TIMEOUT=10s", "ZIPQ_HTTP_IDLE_TIMEOUT=2s", "ZIPQ_PPROF=true"), "serve")
	// 1,000 traces of 10 spans with 1 KiB tags: a 12 MB answer, more than
	// loopback's socket buffers hold, so a client that does not read stalls
	// the server's writes.
	pad := strings.Repeat("0123456789abcdef", 64)
	var bodies [][]byte
	now := time.Now().UnixMicro()
	for tr := 1; tr <= 1000; tr++ {
		spans := make([]zipkin.Span, 10)
		for i := range spans {
			spans[i] = zipkin.Span{TraceID: zipkin.TraceID{Low: uint64(tr)}, ID: zipkin.SpanID(tr*100 + i + 1), Name: "op",
				Timestamp: now, Duration: 10, LocalEndpoint: &zipkin.Endpoint{ServiceName: "svc"},
				Tags: map[string]string{"pad": pad + strconv.Itoa(i)}}
		}
		bodies = append(bodies, zipkin.EncodeJSON(spans))
	}
	publishRaw(t, f.queue, bodies...)
	// Watch the collector's own counter, cheaply and not too often: counting
	// distinct stored spans decodes every segment (10 MB here), and doing
	// that in a tight loop starved the collector on a loaded CI machine.
	deadline := time.Now().Add(4 * time.Minute)
	for p.metric(t, "zipq_collector_spans_stored_total") < 10000 {
		if time.Now().After(deadline) {
			q, err := broker.Inspect(testenv.Dial(t), f.queue)
			t.Fatalf("after 4 min the collector stored %v of 10,000 spans; %v received; the queue holds %d ready (%v)",
				p.metric(t, "zipq_collector_spans_stored_total"), p.metric(t, "zipq_collector_spans_received_total"), q.Messages, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if d, _ := f.stored(t); d != 10000 {
		t.Fatalf("%d distinct spans stored, want 10,000", d)
	}
	search := "/api/v2/traces?limit=1000&lookback=86400000&endTs=" + fmt.Sprint(time.Now().Add(time.Hour).UnixMilli())
	// The answer is these spans as Zipkin JSON: about the bodies' size.
	// (Fetching it first to measure it was itself cut off by the 10 s
	// write timeout on a loaded CI machine.)
	full := 0
	for _, b := range bodies {
		full += len(b)
	}
	runtimeGC := func() float64 { // collect garbage (pprof's gc=1) before reading the heap
		resp, err := http.Get("http://" + p.addr + "/debug/pprof/heap?gc=1")
		testenv.Must(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return p.metric(t, "go_memstats_heap_inuse_bytes")
	}
	base := runtimeGC()

	const stalled = 30
	conns := make([]net.Conn, stalled)
	for i := range conns {
		conns[i] = dialSlow(t, p.addr)
		fmt.Fprintf(conns[i], "GET %s HTTP/1.1\r\nHost: zipq\r\n\r\n", search)
	}
	// While they stall (before the write timeout cuts them off), the
	// stalled clients hold nothing others need: the API answers. Computing
	// 30 large searches on 2 shared cores takes a while, hence the retries.
	stallStart := time.Now()
	quick := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := quick.Get("http://" + p.addr + "/api/v2/services")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				t.Logf("others answered %v after %d clients began to stall", time.Since(stallStart).Round(time.Millisecond), stalled)
				break
			}
		}
		if time.Since(stallStart) > 9*time.Second {
			t.Fatalf("others not answered while %d clients stall", stalled)
		}
	}
	// Read only once every write deadline has passed (10 s from each
	// request, all sent before stallStart): a client that started reading
	// earlier would let the server finish in time, which is not a stall.
	time.Sleep(time.Until(stallStart.Add(11 * time.Second)))
	for i, c := range conns {
		if closed, n := closedWithin(c, 30*time.Second); !closed || n >= int64(full)*9/10 {
			t.Fatalf("stalled client %d: closed %v after %d of about %d bytes; want cut off by the write timeout", i, closed, n, full)
		}
	}
	if after := runtimeGC(); after > base+32<<20 {
		t.Fatalf("heap in use %.0f MiB after the stalled clients were cut off, %.0f MiB before", after/(1<<20), base/(1<<20))
	}

	// A body sent a byte at a time is cut off by the read timeout.
	slow := dialSlow(t, p.addr)
	fmt.Fprintf(slow, "POST /api/v2/spans HTTP/1.1\r\nHost: zipq\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n[")
	go func() {
		for range 20 {
			time.Sleep(300 * time.Millisecond)
			if _, err := slow.Write([]byte(" ")); err != nil {
				return
			}
		}
	}()
	if closed, _ := closedWithin(slow, 6*time.Second); !closed {
		t.Fatal("a slow body held its connection past the read timeout")
	}

	// An idle keep-alive connection is closed by the idle timeout.
	idle, err := net.Dial("tcp", p.addr)
	testenv.Must(t, err)
	defer idle.Close()
	fmt.Fprintf(idle, "GET /health HTTP/1.1\r\nHost: zipq\r\n\r\n")
	r := bufio.NewReader(idle)
	resp, err := http.ReadResponse(r, nil)
	testenv.Must(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if closed, _ := closedWithin(idle, 6*time.Second); !closed {
		t.Fatal("an idle keep-alive connection outlived the idle timeout")
	}

	// Headers beyond the limit: 431.
	req, err := http.NewRequest(http.MethodGet, "http://"+p.addr+"/health", nil)
	testenv.Must(t, err)
	req.Header.Set("X-Big", strings.Repeat("a", 200<<10))
	resp, err = http.DefaultClient.Do(req)
	testenv.Must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("200 KiB of headers: %d", resp.StatusCode)
	}
}

// TestHealthReportsAStalledWriter: PostgreSQL answers pings but refuses
// every write (here a trigger raising insufficient_privilege, as a revoked
// INSERT does): /health turns DEGRADED while spans wait — with
// PostgreSQL's message for the admin only — and UP again once writes
// work, with every span stored.
func TestHealthReportsAStalledWriter(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := startZipq(t, append(f.env, "COLLECTOR_STALL_AFTER=2s", "ZIPQ_ADMIN_TOKEN=s3cret-0123456789"), "serve")
	conn, err := pgx.Connect(context.Background(), f.dsn)
	testenv.Must(t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(context.Background(), `
		CREATE FUNCTION refuse_writes() RETURNS trigger LANGUAGE plpgsql AS
		  $$BEGIN RAISE EXCEPTION 'permission denied for table segments' USING ERRCODE = '42501'; END$$;
		CREATE TRIGGER refuse_writes BEFORE INSERT ON segments FOR EACH STATEMENT EXECUTE FUNCTION refuse_writes();`)
	testenv.Must(t, err)
	f.publish(t, 1000, 100)
	testenv.Eventually(t, 30*time.Second, "writer reported degraded", func() bool {
		code, h, _ := getHealth(t, p.addr, "s3cret-0123456789")
		w := h.Zipkin.Details["writer"]
		return code == 200 && h.Status == "DEGRADED" && w.Status == "DEGRADED" && strings.Contains(w.Error, "permission denied")
	})
	if _, h, body := getHealth(t, p.addr); h.Zipkin.Details["writer"].Status != "DEGRADED" || strings.Contains(body, "permission denied") {
		t.Fatalf("without the admin token: %s; want DEGRADED without PostgreSQL's message", body)
	}
	_, err = conn.Exec(context.Background(), `DROP TRIGGER refuse_writes ON segments`)
	testenv.Must(t, err)
	testenv.StoredAtLeast(t, f.dsn, 1000, 30*time.Second)
	testenv.EventuallyEvery(t, 10*time.Second, 250*time.Millisecond, "spans stored", func() bool { d, _ := f.stored(t); return d == 1000 })
	testenv.Eventually(t, 10*time.Second, "writer UP again", func() bool {
		_, h, _ := getHealth(t, p.addr)
		return h.Zipkin.Details["writer"].Status == "UP"
	})
}

// TestEffectiveConfigurationIsLoggedMasked: each process logs every
// setting it runs with at start, with passwords and the admin token
// masked; invalid settings are all reported at once and nothing starts.
func TestEffectiveConfigurationIsLoggedMasked(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if !strings.Contains(f.dsn, "postgres:postgres@") || !strings.Contains(testenv.AMQPURL(), "guest:guest@") {
		t.Skip("the test services' URLs carry no password to mask")
	}
	p := startZipq(t, append(f.env, "ZIPQ_LOG_LEVEL=info", "ZIPQ_ADMIN_TOKEN=admin-secret-0123456789", "COLLECTOR_BATCH_SPANS=1234"), "serve")
	out := p.output()
	for _, secret := range []string{"admin-secret", "postgres:postgres@", "guest:guest@"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log shows %q", secret)
		}
	}
	for _, want := range []string{"batch-spans=1234", "admin-token=xxxxx", "rabbit-uri=amqp://guest:xxxxx@", "postgres://postgres:xxxxx@", "http-write-timeout=1m0s"} {
		if !strings.Contains(out, want) {
			t.Errorf("the configuration line lacks %q", want)
		}
	}
	cmd := exec.Command(binary, "serve", "-sample-rate", "2", "-rabbit-parked-queue-type", "lazy", "-http-read-timeout", "-1s")
	b, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("invalid settings started")
	}
	for _, want := range []string{"sample rate 2", `parked queue type "lazy"`, "read timeout -1s"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%q not reported: %s", want, b)
		}
	}
}
