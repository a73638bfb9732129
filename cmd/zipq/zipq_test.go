package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"

	"github.com/zipq/zipq/internal/testenv"
	"github.com/zipq/zipq/storage"
	"github.com/zipq/zipq/zipkin"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "zipq-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "zipq")
	// Tests run a race-instrumented binary; benchmarks measure a plain one.
	flag.Parse()
	args := []string{"build", "-race", "-o", binary, "."}
	if f := flag.Lookup("test.bench"); f != nil && f.Value.String() != "" {
		args = []string{"build", "-o", binary, "."}
	}
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build zipq: %v\n%s", err, out)
		os.Exit(1)
	}
	testenv.VerifyNoLeaks(m,
		// zipkin-go's AMQP reporter never stops its error goroutine; it is
		// the unchanged client under test.
		goleak.IgnoreTopFunction("github.com/openzipkin/zipkin-go/reporter/amqp.(*rmqReporter).logErrors"),
		// VerifyNoLeaks ends in os.Exit, which skips deferred calls: a
		// defer left a 49 MB binary in the temporary directory each run.
		// goleak's Cleanup replaces its os.Exit, so it exits itself.
		goleak.Cleanup(func(code int) {
			_ = os.RemoveAll(dir)
			os.Exit(code)
		}))
}

type proc struct {
	cmd  *exec.Cmd
	addr string
	log  string        // path of its combined stdout and stderr
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done is closed
}

// output is what the process has logged so far.
func (p *proc) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

func (p *proc) wait() error {
	<-p.done
	return p.err
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	testenv.Must(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// startZipq runs the binary with env; it is killed at cleanup if still running.
func startZipq(t testing.TB, env []string, args ...string) *proc {
	t.Helper()
	p := spawnZipq(t, env, args...)
	p.waitHealth(t, http.StatusOK)
	return p
}

// spawnZipq starts the binary with env and returns at once; it is killed
// at cleanup if still running, and its log shown if the test failed.
func spawnZipq(t testing.TB, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{addr: freeAddr(t), done: make(chan struct{})}
	p.cmd = exec.Command(binary, args...)
	// OTLP on ports of the kernel's choosing unless env sets them: tests
	// run processes in parallel.
	otlp := []string{"ZIPQ_OTLP_HTTP_ADDR=127.0.0.1:0", "ZIPQ_OTLP_GRPC_ADDR=127.0.0.1:0"}
	p.cmd.Env = append(append(os.Environ(), otlp...), append(env, "ZIPQ_HTTP_ADDR="+p.addr)...)
	logs, err := os.Create(filepath.Join(t.TempDir(), "zipq.log"))
	testenv.Must(t, err)
	p.cmd.Stdout, p.cmd.Stderr, p.log = logs, logs, logs.Name()
	testenv.Must(t, p.cmd.Start())
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("zipq log:\n%s", tail(p.output(), 4000))
		}
	})
	return p
}

// waitHealth waits until /health answers with code.
func (p *proc) waitHealth(t testing.TB, code int) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, fmt.Sprintf("zipq's /health answering %d", code), func() bool {
		resp, err := http.Get("http://" + p.addr + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == code
	})
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// metric reads one unlabelled sample from a process's /metrics.
func (p *proc) metric(t *testing.T, name string) float64 {
	t.Helper()
	v, ok := p.metrics(t)[name]
	if !ok {
		t.Fatalf("metric %s not found", name)
	}
	return v
}

// metrics is every sample of /metrics by its name and labels as
// exposed (name{k="v",...}).
func (p *proc) metrics(t *testing.T) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + p.addr + "/metrics")
	testenv.Must(t, err)
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if strings.HasPrefix(line, "#") || i < 0 {
			continue
		}
		f, err := strconv.ParseFloat(line[i+1:], 64)
		testenv.Must(t, err)
		out[line[:i]] = f
	}
	return out
}

// sumSeries adds the samples whose name and labels start with prefix.
func sumSeries(samples map[string]float64, prefix string) float64 {
	sum := 0.0
	for k, v := range samples {
		if strings.HasPrefix(k, prefix) {
			sum += v
		}
	}
	return sum
}

// peakRSS is the process's high-water resident set (VmHWM), in MiB.
func (p *proc) peakRSS(t testing.TB) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	testenv.Must(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

type fixture struct {
	dsn, queue string
	env        []string
}

func newFixture(t testing.TB) fixture {
	dsn, queue := testenv.Schema(t), testenv.Queue(t)
	return fixture{dsn: dsn, queue: queue, env: []string{
		"POSTGRES_URL=" + dsn, "RABBIT_URI=" + testenv.AMQPURL(), "RABBIT_QUEUE=" + queue,
		"RABBIT_PARKED_QUEUE_TYPE=classic", "ZIPQ_LOG_LEVEL=warn",
		// No span-queue policy in the shared vhost "/" (README, "A message
		// the client cannot read"): a test wanting one has a vhost of its own.
		"RABBIT_MANAGEMENT_URL=off",
	}}
}

// stored reports the distinct spans readers see and the spans physically
// stored (more when a redelivered message was cut into other segments).
func (f fixture) stored(t testing.TB) (distinct, physical int) {
	st, err := storage.Open(context.Background(), storage.Config{URL: f.dsn}, nil)
	testenv.Must(t, err)
	defer st.Close()
	physical, distinct, err = st.CountSpans(context.Background())
	testenv.Must(t, err)
	return distinct, physical
}

// counted is the calls the service metrics counted, every cell summed
// (not the services' totals the stats job writes beside them), folded or
// not, as a read of them all by operation.
func (f fixture) counted(t testing.TB) int {
	st, err := storage.Open(context.Background(), storage.Config{URL: f.dsn}, nil)
	testenv.Must(t, err)
	defer st.Close()
	start, end := time.Unix(0, 0), time.Now().Add(48*time.Hour)
	series, err := st.Stats(context.Background(), storage.StatsQuery{Start: start, End: end, Step: end.Sub(start), By: storage.ByName})
	testenv.Must(t, err)
	n := 0
	for _, s := range series {
		n += int(s.Total.Calls)
	}
	return n
}

// publish sends n spans, perSpan spans per message, with publisher confirms.
func (f fixture) publish(t *testing.T, n, perMessage int) {
	t.Helper()
	conn, err := amqp.Dial(testenv.AMQPURL())
	testenv.Must(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	testenv.Must(t, err)
	testenv.Must(t, ch.Confirm(false))
	_, err = ch.QueueDeclare(f.queue, true, false, false, false, nil)
	testenv.Must(t, err)
	now := time.Now().UnixMicro()
	var last *amqp.DeferredConfirmation
	for i := 0; i < n; i += perMessage {
		spans := make([]zipkin.Span, 0, perMessage)
		for j := i; j < i+perMessage && j < n; j++ {
			spans = append(spans, zipkin.Span{
				TraceID: zipkin.TraceID{Low: uint64(j/10 + 1)}, ID: zipkin.SpanID(j + 1), Name: "op",
				Timestamp: now, Duration: int64(j%1000 + 1), Kind: zipkin.KindServer,
				LocalEndpoint: &zipkin.Endpoint{ServiceName: "svc" + strconv.Itoa(j%5)},
				Tags:          map[string]string{"http.method": "GET", "n": strconv.Itoa(j)},
			})
		}
		last, err = ch.PublishWithDeferredConfirm("", f.queue, false, false, amqp.Publishing{Body: zipkin.EncodeJSON(spans)})
		testenv.Must(t, err)
		if (i/perMessage)%1000 == 999 {
			if ok, err := last.WaitContext(t.Context()); !ok || err != nil {
				t.Fatalf("not confirmed: %v", err)
			}
		}
	}
	if ok, err := last.WaitContext(t.Context()); !ok || err != nil {
		t.Fatalf("not confirmed: %v", err)
	}
}

// TestCrashLosesNothing kills a collector with SIGKILL in the middle of a
// 100,000-span backlog and starts another: every span is stored exactly once.
func TestCrashLosesNothing(t *testing.T) {
	t.Parallel()
	const total = 100_000
	f := newFixture(t)
	f.publish(t, total, 5)

	start := time.Now()
	p := startZipq(t, f.env, "collector")
	testenv.StoredAtLeast(t, f.dsn, total/3, 120*time.Second)
	rss := p.peakRSS(t)
	testenv.Must(t, p.cmd.Process.Signal(syscall.SIGKILL))
	_ = p.wait()
	killedAt, _ := f.stored(t)

	startZipq(t, f.env, "collector")
	testenv.StoredAtLeast(t, f.dsn, total, 180*time.Second)
	testenv.EventuallyEvery(t, 60*time.Second, time.Second, "all distinct spans stored", func() bool { n, _ := f.stored(t); return n >= total })
	elapsed := time.Since(start)
	distinct, physical := f.stored(t)
	if distinct != total || physical < total {
		t.Fatalf("%d distinct spans (%d stored); want exactly %d", distinct, physical, total)
	}
	// Spans the redelivery stored a second time (in segments cut
	// differently) are folded away by the linker's compaction.
	testenv.EventuallyEvery(t, 60*time.Second, time.Second, "duplicates compacted", func() bool { d, n := f.stored(t); return d == total && n == total })
	// The service metrics counted every span once: what the killed
	// process committed without acking came back redelivered and was
	// found stored.
	if n := f.counted(t); n != total {
		t.Fatalf("service metrics counted %d calls, want %d", n, total)
	}
	t.Logf("crash test: %d spans stored twice by redelivery before compaction", physical-total)
	t.Logf("crash test: killed at %d spans; %d spans in %s = %.0f spans/s (race detector on); peak RSS before kill %.0f MiB",
		killedAt, total, elapsed.Round(time.Millisecond), total/elapsed.Seconds(), rss)
}

// TestTwoCollectorsShareTheQueue runs two processes on one queue: the total
// is exact and both did work.
func TestTwoCollectorsShareTheQueue(t *testing.T) {
	t.Parallel()
	const total = 20_000
	f := newFixture(t)
	env := slices.Concat(f.env, []string{"RABBIT_PREFETCH=50", "COLLECTOR_BATCH_SPANS=100"})
	a := startZipq(t, env, "collector")
	b := startZipq(t, env, "collector")
	f.publish(t, total, 1)
	testenv.StoredAtLeast(t, f.dsn, total, 120*time.Second)
	testenv.EventuallyEvery(t, 30*time.Second, time.Second, "all distinct spans stored", func() bool { n, _ := f.stored(t); return n >= total })
	if d, n := f.stored(t); d != total || n < total {
		t.Fatalf("%d distinct (%d stored), want %d", d, n, total)
	}
	if n := f.counted(t); n != total {
		t.Fatalf("service metrics counted %d calls, want %d", n, total)
	}
	sa, sb := a.metric(t, "zipq_collector_spans_stored_total"), b.metric(t, "zipq_collector_spans_stored_total")
	if sa == 0 || sb == 0 || sa+sb < total {
		t.Fatalf("work not shared: %v + %v", sa, sb)
	}
	t.Logf("two collectors: %v + %v spans", sa, sb)
}

// TestSigtermDrainsAndExitsZero: SIGTERM stops consuming, commits what was
// received, acks it and exits 0.
func TestSigtermDrainsAndExitsZero(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	env := slices.Concat(f.env, []string{"COLLECTOR_BATCH_INTERVAL=1h", "COLLECTOR_BATCH_SPANS=1000000"})
	p := startZipq(t, env, "serve")
	f.publish(t, 500, 50)
	conn := testenv.Dial(t)
	testenv.Eventually(t, 10*time.Second, "delivered", func() bool {
		ch, err := conn.Channel()
		if err != nil {
			return false
		}
		defer ch.Close()
		q, err := ch.QueueDeclarePassive(f.queue, true, false, false, false, nil)
		return err == nil && q.Messages == 0
	})
	testenv.Must(t, p.cmd.Process.Signal(syscall.SIGTERM))
	if err := p.wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
	if n, _ := f.stored(t); n != 500 {
		t.Fatalf("stored %d after SIGTERM, want 500", n)
	}
}

type healthBody struct {
	Status string
	Zipkin struct {
		Details map[string]struct{ Status, Error string }
	}
}

// getHealth reads /health; with a token, as an admin (error details).
func getHealth(t *testing.T, addr string, token ...string) (int, healthBody, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/health", nil)
	testenv.Must(t, err)
	if len(token) > 0 {
		req.Header.Set("Authorization", "Bearer "+token[0])
	}
	resp, err := http.DefaultClient.Do(req)
	testenv.Must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var h healthBody
	testenv.Must(t, json.Unmarshal(b, &h))
	return resp.StatusCode, h, string(b)
}

func TestHealthReportsEachDependency(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// A vhost of its own that makes quorum queues, whatever "/" does here.
	p := startZipq(t, append(f.env, "RABBIT_URI="+testenv.VHost(t)), "serve")
	code, h, b := getHealth(t, p.addr)
	if code != 200 || h.Status != "UP" || h.Zipkin.Details["postgres"].Status != "UP" ||
		h.Zipkin.Details["rabbitmq"].Status != "UP" || h.Zipkin.Details["spanQueue"].Status != "UP" {
		t.Fatalf("health: %d %s", code, b)
	}
}

// TestClassicSpanQueueIsReported: on a broker whose vhost makes classic
// queues, the span queue would lose zipkin-go's transient spans in a broker
// restart. Every process says so: a warning in the log at start, /health
// DEGRADED (200: it still works), and the pipeline endpoint the UI reads.
func TestClassicSpanQueueIsReported(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"serve", "collector", "query"} {
		t.Run(cmd, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			p := startZipq(t, append(f.env, "RABBIT_URI="+testenv.ClassicVHost(t), "ZIPQ_LOG_LEVEL=info"), cmd)
			var h healthBody
			var b string
			var code int
			testenv.Eventually(t, 10*time.Second, "span queue declared", func() bool {
				code, h, b = getHealth(t, p.addr)
				return h.Zipkin.Details["spanQueue"].Status != "UP"
			})
			sq := h.Zipkin.Details["spanQueue"]
			if code != 200 || h.Status != "DEGRADED" || sq.Status != "DEGRADED" || !strings.Contains(sq.Error, "classic queue") ||
				!strings.Contains(sq.Error, "lost") || h.Zipkin.Details["rabbitmq"].Status != "UP" {
				t.Fatalf("health: %d %s", code, b)
			}
			if cmd == "collector" {
				testenv.Eventually(t, 10*time.Second, "the warning in the log", func() bool {
					return strings.Contains(p.output(), "is a classic queue")
				})
			}
			if cmd != "collector" {
				var pl struct {
					Pipeline struct{ QueueType, Warning string }
				}
				getJSON(t, "http://"+p.addr+"/api/zipq/pipeline", &pl)
				if pl.Pipeline.QueueType != "classic" || !strings.Contains(pl.Pipeline.Warning, "lost") {
					t.Fatalf("pipeline: %+v", pl)
				}
			}
		})
	}
}

// TestReplayCommand: `zipq replay -reason R` moves only matching parked
// messages back to their source queue and says how many.
func TestReplayCommand(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	conn := testenv.Dial(t)
	ch, err := conn.Channel()
	testenv.Must(t, err)
	parked := f.queue + ".parked"
	for _, q := range []string{f.queue, parked} {
		_, err := ch.QueueDeclare(q, true, false, false, false, nil)
		testenv.Must(t, err)
	}
	for _, reason := range []string{"too_large", "malformed_json", "too_large"} {
		testenv.Must(t, ch.Publish("", parked, false, false, amqp.Publishing{
			Headers: amqp.Table{"x-zipq-reason": reason, "x-zipq-source-queue": f.queue}, Body: []byte("[]")}))
	}
	out, err := exec.Command(binary, "replay", "-reason", "too_large", "-rabbit-queue", f.queue,
		"-rabbit-parked-queue-type", "classic").CombinedOutput()
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "replayed 2 message(s)") {
		t.Fatalf("output: %s", out)
	}
	for q, want := range map[string]int{f.queue: 2, parked: 1} {
		got, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
		testenv.Must(t, err)
		if got.Messages != want {
			t.Errorf("%s holds %d, want %d", q, got.Messages, want)
		}
	}
	if out, err := exec.Command(binary, "replay", "-reason", "nonsense").CombinedOutput(); err == nil {
		t.Fatalf("an unknown reason must be refused: %s", out)
	}
}

// TestServesWhilePostgresIsDownAtStart: started while PostgreSQL is
// unreachable, `zipq serve` listens at once: /health answers (postgres
// DOWN), reads are 503 with Retry-After, HTTP ingest is accepted (202: the
// queue holds the spans). When the database answers, zipq migrates and the
// accepted span is stored. SIGTERM while waiting exits 0.
func TestServesWhilePostgresIsDownAtStart(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	u, err := url.Parse(testenv.PostgresURL())
	testenv.Must(t, err)
	proxy := testenv.NewProxy(t, u.Host)
	proxy.Cut()
	u.Host = proxy.Addr()
	q := u.Query()
	// Named as testenv names schemas (zipq_t_<unix time>_…), so that one an
	// interrupted run leaves behind is swept like theirs.
	q.Set("search_path", fmt.Sprintf("zipq_t_%d_down_%s", time.Now().Unix(), testenv.ID()))
	u.RawQuery = q.Encode()
	schema := q.Get("search_path")
	env := slices.Concat(f.env, []string{"POSTGRES_URL=" + u.String()})

	start := func() *proc {
		p := spawnZipq(t, env, "serve")
		p.waitHealth(t, http.StatusServiceUnavailable) // listening, the database DOWN
		return p
	}

	// SIGTERM while waiting for the database: a clean exit.
	early := start()
	testenv.Must(t, early.cmd.Process.Signal(syscall.SIGTERM))
	if err := early.wait(); err != nil {
		t.Fatalf("SIGTERM while waiting for the database: %v\n%s", err, tail(early.output(), 2000))
	}

	p := start()
	code, h, b := getHealth(t, p.addr)
	if code != 503 || h.Zipkin.Details["postgres"].Status != "DOWN" || h.Zipkin.Details["rabbitmq"].Status != "UP" {
		t.Fatalf("health while the database is down: %d %s", code, b)
	}
	resp, err := http.Get("http://" + p.addr + "/api/v2/services")
	testenv.Must(t, err)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("reads while the database is down: %d", resp.StatusCode)
	}
	body := `[{"traceId":"d0e5","id":"1","name":"while-down","timestamp":` + strconv.FormatInt(time.Now().UnixMicro(), 10) +
		`,"localEndpoint":{"serviceName":"patient"}}]`
	resp, err = http.Post("http://"+p.addr+"/api/v2/spans", "application/json", strings.NewReader(body))
	testenv.Must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("HTTP ingest while the database is down: %d", resp.StatusCode)
	}

	// The schema the process will migrate into, created (and dropped) here.
	// The connection outlives the test function: a deferred Close ran
	// before the cleanup's DROP, which then failed unseen and left the
	// schema behind.
	conn, err := pgx.Connect(context.Background(), testenv.PostgresURL())
	testenv.Must(t, err)
	_, err = conn.Exec(context.Background(), "CREATE SCHEMA "+schema)
	testenv.Must(t, err)
	t.Cleanup(func() {
		// zipq stopped first (its own cleanup, registered before this one,
		// runs after it): DROP ... CASCADE beside its jobs deadlocked
		// with them once, its locks and theirs taken in other orders.
		_ = p.cmd.Process.Kill()
		<-p.done
		if _, err := conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop %s: %v", schema, err)
		}
		_ = conn.Close(context.Background())
	})
	proxy.Restore()
	testenv.Eventually(t, 60*time.Second, "the span accepted while down is stored", func() bool {
		resp, err := http.Get("http://" + p.addr + "/api/v2/trace/d0e5")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if code, _, b := getHealth(t, p.addr); code != 200 {
		t.Fatalf("health once the database is back: %d %s", code, b)
	}
}
