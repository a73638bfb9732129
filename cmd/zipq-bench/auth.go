package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/zipq/zipq/auth"
	"github.com/zipq/zipq/internal/tenant"
	"github.com/zipq/zipq/storage"
	"github.com/zipq/zipq/zipkin"
)

// authCost measures what access control and tenancy cost, on and off in
// the same run, alternating: HTTP and OTLP/gRPC ingest end to end into
// zipq serve (spans/s until stored), and reads (p50/p99 of trace by ID and
// of /api/v2/services) from two zipq query processes on the same spans,
// stored for the default tenant and for tenant "bench". On: a bcrypt
// token (cost 10, as `zipq token` makes it) bound to tenant "bench" of a
// tenants file, so every request is authenticated and acts for that
// tenant (its own queue, its rows); off: neither. Issue 24's targets:
// ingest >= 0.95x off, read p99 within 5 % of off.
func (b *bench) authCost(n, rounds int) string {
	secret, line, err := auth.NewToken("bench", auth.Read|auth.Write, "bench", time.Time{}, bcrypt.DefaultCost)
	must(err)
	file := filepath.Join(b.work, "tokens")
	must(os.WriteFile(file, []byte(line+"\n"), 0o600))
	// on is the environment of a process with tokens and the tenant, whose
	// span queue is queue (deleted with the run's queues).
	on := func(queue string) []string {
		tenants := filepath.Join(b.work, "tenants-"+randomID())
		must(os.WriteFile(tenants, []byte("bench queue="+queue+"\n"), 0o600))
		return []string{"ZIPQ_TOKENS_FILE=" + file, "ZIPQ_TENANTS_FILE=" + tenants}
	}

	end := time.Now()
	var bodies [][]byte
	var ids []string
	chunks(n, 17, end, time.Hour, func(sp []zipkin.Span) {
		bodies = append(bodies, messages(sp, 100)...)
		for _, s := range sp {
			if s.ParentID == 0 {
				ids = append(ids, s.TraceID.String())
			}
		}
	})
	out := "| part | auth | round | spans/s or latency |\n|---|---|---|---|\n"
	rate := map[string]map[bool][]float64{}
	for _, protocol := range []string{"zipkin-json-http", "otlp-grpc"} {
		rate[protocol] = map[bool][]float64{}
		send := bodies
		if protocol == "otlp-grpc" {
			send = otlpOf(bodies)
		}
		for r := range rounds {
			for _, enforce := range []bool{r%2 == 0, r%2 != 0} {
				label := map[bool]string{true: "on", false: "off"}[enforce]
				logf("auth cost: %s, auth %s, round %d", protocol, label, r+1)
				name := fmt.Sprintf("auth%s%s%d", protocol[:4], label, r)
				d, _ := b.schema(name)
				env := []string{"POSTGRES_URL=" + d, "RABBIT_URI=" + b.amqpURL, "RABBIT_QUEUE=" + b.queue(name), "RABBIT_PARKED_QUEUE_TYPE=classic"}
				token := ""
				if enforce {
					env, token = append(env, on(b.queue(name+"t"))...), secret
				}
				httpAddr, grpcAddr := freePort(), freePort()
				p := b.start(name, append(env, "ZIPQ_OTLP_HTTP_ADDR="+httpAddr, "ZIPQ_OTLP_GRPC_ADDR="+grpcAddr), "serve")
				start := time.Now()
				sendAll(b.sender(protocol, p.addr, httpAddr, grpcAddr, token), send)
				for count(b.ctx, d) < n {
					time.Sleep(50 * time.Millisecond)
				}
				sps := float64(n) / time.Since(start).Seconds()
				p.stop()
				rate[protocol][enforce] = append(rate[protocol][enforce], sps)
				out += fmt.Sprintf("| ingest %s | %s | %d | %.0f spans/s |\n", protocol, label, r+1, sps)
			}
		}
	}
	// Reads: the same spans stored for both tenants, through an open and
	// an enforcing query process side by side, measured alternately.
	dsn, st := b.schema("authread")
	for _, c := range []context.Context{b.ctx, tenant.With(b.ctx, "bench")} {
		b.direct(st, n, 17, end, time.Hour, func(st *storage.Store, _ context.Context, sp []zipkin.Span) error { return st.WriteSpans(c, sp) })
	}
	env := []string{"POSTGRES_URL=" + dsn, "RABBIT_URI=" + b.amqpURL, "RABBIT_QUEUE=" + b.queue("authread")}
	open := b.start("authreadoff", env, "query")
	closed := b.start("authreadon", append(env, on(b.queue("authreadt"))...), "query")
	lat := map[string]map[bool][]time.Duration{"trace": {}, "services": {}}
	for r := range rounds * 2 {
		for _, enforce := range []bool{r%2 == 0, r%2 != 0} {
			p, token := open, ""
			if enforce {
				p, token = closed, secret
			}
			tr := measure("trace", 4, 2000, 200, token, func(i int) string { return "http://" + p.addr + "/api/v2/trace/" + ids[i%len(ids)] })
			sv := measure("services", 4, 2000, 200, token, func(int) string { return "http://" + p.addr + "/api/v2/services" })
			lat["trace"][enforce] = append(lat["trace"][enforce], tr.p50, tr.p99)
			lat["services"][enforce] = append(lat["services"][enforce], sv.p50, sv.p99)
			label := map[bool]string{true: "on", false: "off"}[enforce]
			out += fmt.Sprintf("| read trace by ID, 4 clients | %s | %d | p50 %s, p99 %s |\n", label, r+1, tr.p50.Round(time.Microsecond), tr.p99.Round(time.Microsecond))
			out += fmt.Sprintf("| read /api/v2/services, 4 clients | %s | %d | p50 %s, p99 %s |\n", label, r+1, sv.p50.Round(time.Microsecond), sv.p99.Round(time.Microsecond))
		}
	}
	open.stop()
	closed.stop()
	summary := "\n"
	for _, protocol := range []string{"zipkin-json-http", "otlp-grpc"} {
		summary += fmt.Sprintf("ingest %s: on/off = %.3f (mean of %d runs each; per round %s; target >= 0.95)\n",
			protocol, mean(rate[protocol][true])/mean(rate[protocol][false]), rounds, ratios(rate[protocol][true], rate[protocol][false]))
	}
	for _, what := range []string{"trace", "services"} {
		p99 := func(enforce bool) time.Duration { // the median of the runs' p99s
			var v []time.Duration
			for i, d := range lat[what][enforce] {
				if i%2 == 1 {
					v = append(v, d)
				}
			}
			slices.Sort(v)
			return v[len(v)/2]
		}
		summary += fmt.Sprintf("read %s: p99 on %s, off %s: on/off = %.3f (median of %d runs' p99; target <= 1.05)\n",
			what, p99(true).Round(time.Microsecond), p99(false).Round(time.Microsecond), float64(p99(true))/float64(p99(false)), rounds*2)
	}
	return out + summary
}
