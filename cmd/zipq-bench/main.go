// Command zipq-bench measures zipq on this machine in one run, each figure
// against a baseline from the same run (raw COPY, RabbitMQ alone, an HTTP
// round trip), and writes the results into docs/BENCHMARKS.md between its
// markers, with plots in docs/img. `make bench` runs it after the Go
// benchmarks.
//
//	go run ./cmd/zipq-bench -zipq bin/zipq [-query-spans 10000000]
package main

import (
	"context"
	"flag"
	"fmt"
	"github.com/zipq/zipq/zipkin"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	b := &bench{ctx: context.Background()}
	var out string
	var ingestSpans, drainSpans, querySpans int
	flag.StringVar(&b.pgURL, "postgres-url", envOr("ZIPQ_TEST_POSTGRES_URL", "postgres://postgres:postgres@127.0.0.1:5432/test?sslmode=disable"), "PostgreSQL server (a schema per part is created and dropped)")
	flag.StringVar(&b.amqpURL, "amqp-url", envOr("ZIPQ_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"), "RabbitMQ")
	flag.StringVar(&b.zipq, "zipq", "bin/zipq", "a plain (non-race) zipq binary")
	flag.StringVar(&out, "out", "docs/BENCHMARKS.md", "file whose bench section is replaced")
	flag.StringVar(&b.imgDir, "img", "docs/img", "where plots go")
	flag.IntVar(&ingestSpans, "ingest-spans", 300_000, "spans per ingest run")
	flag.IntVar(&drainSpans, "drain-spans", 1_000_000, "backlog size")
	flag.IntVar(&querySpans, "query-spans", 1_000_000, "spans stored for the query run (10000000 for the 10M figures)")
	only := flag.String("only", "ingest,drain,query,otlp", "parts to run: ingest (both shapes), ingest100 or ingest1 (one shape), drain, query, otlp (Zipkin JSON, OTLP/HTTP and OTLP/gRPC into zipq serve; printed, not written), afterload (search latency in the two minutes after a load into zipq serve; printed; not in the default set), scan (TraceQL scan rate per CPU-second on -query-spans spans, against reading every trace whole; printed; not in the default set), stats (drain rate with the service metrics on and off; printed; not in the default set), auth (ingest and reads with tokens enforced and not; printed; not in the default set), tempo (the same spans into zipq serve and a running Grafana Tempo, their TraceQL answers, traces and latencies compared; printed; not in the default set)")
	var tempo tempoTarget
	flag.StringVar(&tempo.api, "tempo", "http://127.0.0.1:3200", "the tempo part's Grafana Tempo query API")
	flag.StringVar(&tempo.zipkin, "tempo-zipkin", "127.0.0.1:9412", "the tempo part's Grafana Tempo zipkin receiver (host:port)")
	tempoSpans := flag.Int("tempo-spans", 200_000, "spans into each of zipq and Tempo in the tempo part")
	authSpans := flag.Int("auth-spans", 200_000, "spans per ingest run in the auth part")
	authRounds := flag.Int("auth-rounds", 2, "on/off pairs per protocol in the auth part")
	otlpSpans := flag.Int("otlp-spans", 200_000, "spans per protocol in the otlp part")
	scanTime := flag.Duration("scan-time", 15*time.Second, "how long the scan part sends each query at each concurrency")
	afterLoadSpans := flag.Int("afterload-spans", 500_000, "spans loaded before the afterload part's searches")
	afterLoadIdle := flag.Duration("afterload-idle", 0, "how long the afterload part waits, measuring CPU, before its searches")
	statsSpans := flag.Int("stats-spans", 300_000, "spans per drain in the stats part at 100 spans/message (a third at 1)")
	statsWindow := flag.Duration("stats-window", time.Hour, "the stats part's spans are dated across this window before now")
	statsRounds := flag.Int("stats-rounds", 2, "on/off pairs per shape in the stats part")
	extraEnv := flag.String("collector-env", "", "extra environment for the collectors, comma-separated K=V (e.g. RABBIT_CONCURRENCY=2)")
	samples := flag.String("dict-samples", "", "write segment-shaped training samples (one trace's spans as a proto3 ListOfSpans per file) to this directory and exit; scripts/train-dict.sh")
	flag.Parse()
	if *samples != "" {
		must(writeSamples(*samples, 4000))
		return
	}
	if *extraEnv != "" {
		b.collectorEnv = strings.Split(*extraEnv, ",")
	}
	var err error
	b.work, err = os.MkdirTemp("", "zipq-bench")
	must(err)
	defer b.cleanup()

	r := report{date: time.Now().UTC(), cmd: "go run ./cmd/zipq-bench " + strings.Join(os.Args[1:], " ")}
	parts := map[string]bool{}
	for _, p := range strings.Split(*only, ",") {
		parts[strings.TrimSpace(p)] = true
	}
	if parts["ingest"] || parts["ingest100"] {
		logf("ingest: 100 spans per message")
		r.ingest = append(r.ingest, b.ingest(100, ingestSpans, true))
	}
	if parts["ingest"] || parts["ingest1"] {
		logf("ingest: 1 span per message")
		r.ingest = append(r.ingest, b.ingest(1, ingestSpans/3, true))
	}
	if parts["drain"] {
		logf("drain: raw COPY baseline of %d spans", drainSpans)
		r.drainRaw = b.rawCopy("drainraw", drainSpans, 7, time.Now(), time.Hour)
		for _, replicas := range []int{1, 2} {
			logf("drain: %d spans, %d collector(s)", drainSpans, replicas)
			r.drain = append(r.drain, b.drain(drainSpans, 100, replicas))
		}
	}
	if parts["query"] {
		logf("queries: storing %d spans", querySpans)
		q := b.queries(querySpans)
		r.query = &q
	}
	if parts["otlp"] {
		fmt.Println(otlpTable(b.otlpIngest(*otlpSpans)))
	}
	if parts["stats"] {
		fmt.Println(b.statsCost(*statsSpans, *statsRounds, *statsWindow))
	}
	if parts["auth"] {
		fmt.Println(b.authCost(*authSpans, *authRounds))
	}
	if parts["tempo"] {
		logf("tempo: %d spans into zipq serve and Tempo at %s, then compared", *tempoSpans, tempo.api)
		fmt.Println(b.tempoCompare(*tempoSpans, tempo))
	}
	if parts["scan"] {
		logf("scan: %d spans, then a TraceQL scan of the last hour", querySpans)
		fmt.Println(b.scan(querySpans, *scanTime))
	}
	if parts["afterload"] {
		logf("afterload: %d spans into zipq serve, then searches", *afterLoadSpans)
		fmt.Println(b.afterLoad(*afterLoadSpans, *afterLoadIdle))
	}
	if len(r.ingest) == 0 && r.drain == nil && r.query == nil {
		return // nothing for the generated section
	}
	must(r.write(out, b.imgDir))
	logf("wrote %s", out)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s zipq-bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// top renders a pprof profile's top entries.
func top(file string, args ...string) string {
	if file == "" {
		return "(no profile)"
	}
	out, err := exec.Command("go", append(append([]string{"tool", "pprof"}, args...), "-nodecount=12", file)...).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("(pprof failed: %v)", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i, l := range lines { // skip the header lines up to the table
		if strings.Contains(l, "flat%") {
			return strings.Join(lines[max(0, i-1):], "\n")
		}
	}
	return filepath.Base(file) + ": " + string(out)
}

// writeSamples writes n traces of the generator, seeded apart from every
// benchmark run's seeds, each as the uncompressed payload of a segment.
func writeSamples(dir string, n int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	sp := spans(n*10, 1_000_003, time.Now(), time.Hour)
	for i := 0; i < n; i++ {
		b, err := zipkin.EncodeProto(sp[i*10 : i*10+10])
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("trace%05d.pb", i)), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
