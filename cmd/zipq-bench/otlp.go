package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/zipkin/zipkinv2"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/zipq/zipq/zipkin"
)

// otlpResult is one protocol's end-to-end ingest: requests of 100 spans
// sent by otlpClients concurrent clients to zipq serve, until every span
// is readable in PostgreSQL.
type otlpResult struct {
	protocol string
	spans    int
	took     time.Duration
	cpuTop   string
}

const otlpClients = 4

// sendAll sends bodies through otlpClients concurrent clients and returns
// when every one has been answered.
func sendAll(send func([]byte), bodies [][]byte) {
	work := make(chan []byte)
	var wg sync.WaitGroup
	for range otlpClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for body := range work {
				send(body)
			}
		}()
	}
	for _, body := range bodies {
		work <- body
	}
	close(work)
	wg.Wait()
}

// otlpIngest measures Zipkin JSON over HTTP, OTLP/HTTP protobuf and
// OTLP/gRPC end to end, each into a zipq serve of its own (fresh schema
// and queue), with the same spans in 100-span requests.
func (b *bench) otlpIngest(n int) []otlpResult {
	end := time.Now()
	var jsonBodies [][]byte
	chunks(n, 11, end, time.Hour, func(sp []zipkin.Span) { jsonBodies = append(jsonBodies, messages(sp, 100)...) })
	otlpBodies := otlpOf(jsonBodies)
	var out []otlpResult
	for _, run := range []struct{ protocol, sendAs, queueFormat string }{
		{"zipkin-json-http", "zipkin-json-http", "zipkin"},
		{"otlp-http", "otlp-http", "zipkin"},
		{"otlp-grpc", "otlp-grpc", "zipkin"},
		{"otlp-http, OTLP on the queue", "otlp-http", "otlp"}, // translated by the collector instead
	} {
		protocol := run.protocol
		logf("otlp: %s, %d spans", protocol, n)
		name := strings.ToLower(strings.NewReplacer("-", "", " ", "", ",", "").Replace(protocol))
		dsn, _ := b.schema("otlp" + name)
		queue := b.queue("otlp" + name)
		httpAddr, grpcAddr := freePort(), freePort()
		p := b.start("serve-"+name, []string{"POSTGRES_URL=" + dsn, "RABBIT_URI=" + b.amqpURL, "RABBIT_QUEUE=" + queue,
			"RABBIT_PARKED_QUEUE_TYPE=classic", "ZIPQ_OTLP_HTTP_ADDR=" + httpAddr, "ZIPQ_OTLP_GRPC_ADDR=" + grpcAddr,
			"ZIPQ_OTLP_QUEUE_FORMAT=" + run.queueFormat}, "serve")
		send := b.sender(run.sendAs, p.addr, httpAddr, grpcAddr, "")
		bodies := otlpBodies
		if protocol == "zipkin-json-http" {
			bodies = jsonBodies
		}
		cpu := make(chan string, 1)
		go func() { cpu <- b.profile(p, "profile?seconds=4", "cpu-"+name+".pprof") }()
		start := time.Now()
		sendAll(send, bodies)
		for count(b.ctx, dsn) < n {
			time.Sleep(100 * time.Millisecond)
		}
		out = append(out, otlpResult{protocol: protocol, spans: n, took: time.Since(start), cpuTop: top(<-cpu, "-top")})
		p.stop()
	}
	return out
}

// otlpOf is each Zipkin JSON body as an OTLP export request (protobuf),
// translated as the Collector's Zipkin receiver would.
func otlpOf(jsonBodies [][]byte) [][]byte {
	out := make([][]byte, 0, len(jsonBodies))
	for _, m := range jsonBodies {
		td, err := zipkinv2.NewJSONTracesUnmarshaler(false).UnmarshalTraces(m)
		must(err)
		pb, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		must(err)
		out = append(out, pb)
	}
	return out
}

// sender posts one request body by protocol, with token as a bearer token
// unless empty, retrying what zipq asks to be retried (it never does here
// unless RabbitMQ is overloaded).
func (b *bench) sender(protocol, apiAddr, httpAddr, grpcAddr, token string) func([]byte) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: otlpClients}}
	post := func(url, contentType string, body []byte) {
		for {
			req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			must(err)
			req.Header.Set("Content-Type", contentType)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := client.Do(req)
			must(err)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return
			}
			if resp.StatusCode != http.StatusServiceUnavailable {
				panic(fmt.Sprintf("%s: %s", url, resp.Status))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	switch protocol {
	case "zipkin-json-http":
		return func(body []byte) { post("http://"+apiAddr+"/api/v2/spans", "application/json", body) }
	case "otlp-http":
		return func(body []byte) { post("http://"+httpAddr+"/v1/traces", "application/x-protobuf", body) }
	}
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	must(err)
	b.cleanups = append(b.cleanups, func() { conn.Close() })
	// The request bytes as they are, as an exporter sends what it
	// encoded (decoding them here would bill the harness to gRPC).
	ctx := context.Background()
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	return func(body []byte) {
		var reply []byte
		if err := conn.Invoke(ctx, "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
			&body, &reply, grpc.ForceCodec(rawBytes{})); err != nil {
			panic(err)
		}
	}
}

func freePort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer ln.Close()
	return ln.Addr().String()
}

// otlpTable renders the results as Markdown, each against Zipkin JSON.
func otlpTable(rs []otlpResult) string {
	var sb strings.Builder
	base := float64(rs[0].spans) / rs[0].took.Seconds()
	sb.WriteString("| protocol | spans | time | spans/s | vs Zipkin JSON over HTTP |\n|---|---|---|---|---|\n")
	for _, r := range rs {
		rate := float64(r.spans) / r.took.Seconds()
		fmt.Fprintf(&sb, "| %s | %d | %.1f s | %.0f | %.2f× |\n", r.protocol, r.spans, r.took.Seconds(), rate, rate/base)
	}
	for _, r := range rs {
		fmt.Fprintf(&sb, "\nzipq serve CPU, %s (4 s profile):\n\n```\n%s\n```\n", r.protocol, r.cpuTop)
	}
	return sb.String()
}

// rawBytes is a gRPC codec of ready-encoded messages.
type rawBytes struct{}

func (rawBytes) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawBytes) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = append([]byte(nil), data...)
	return nil
}
func (rawBytes) Name() string { return "proto" }
