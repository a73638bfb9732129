package main

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zipq/zipq/storage"
	"github.com/zipq/zipq/zipkin"
)

// scan measures issue 22's scan target — spans scanned per second per core
// — on n bench spans over the last day: a TraceQL query that matches
// nothing, so every span of the searched hour is read, sent for a fixed
// time at 1 and at 8 in flight to `zipq query`, with the CPU seconds
// PostgreSQL and zipq used meanwhile (from /proc). The baseline, in the
// same run, is the same query ORed with a filter no span matches: no
// prefilter serves a query with ||, so it reads every trace whole, as
// every scan did before span columns.
//
// Two layouts of the same kind of spans: "spread", as the query bench
// stores them (each write's spans from anywhere in the day, so a write
// leaves a block per hour of about a hundred spans), and "arrival", as
// collectors store them (each write's spans from the same few seconds, so
// a block per write).
func (b *bench) scan(n int, each time.Duration) string {
	var out strings.Builder
	for _, layout := range []string{"spread", "arrival"} {
		out.WriteString(b.scanLayout(n, each, layout))
	}
	return out.String()
}

func (b *bench) scanLayout(n int, each time.Duration, layout string) string {
	dsn, st := b.schema(fmt.Sprintf("scan%d%s", n, layout))
	end := time.Now()
	start := end.Add(-time.Hour)
	inHour := 0
	load := func(fn func([]zipkin.Span)) { chunks(n, 99, end, 24*time.Hour, fn) }
	if layout == "arrival" {
		load = func(fn func([]zipkin.Span)) {
			k := (n + chunk - 1) / chunk
			w := 24 * time.Hour / time.Duration(k)
			for i := range k {
				fn(spans(min(chunk, n-i*chunk), 99+uint64(i), end.Add(-24*time.Hour+time.Duration(i+1)*w), w))
			}
		}
	}
	load(func(sp []zipkin.Span) {
		for i := 0; i < len(sp); i += 5000 {
			must(st.WriteSpans(b.ctx, sp[i:min(i+5000, len(sp))]))
		}
		for i := range sp {
			if at := sp[i].Timestamp; at >= start.UnixMicro() && at <= end.UnixMicro() {
				inHour++
			}
		}
	})
	for {
		k, err := st.Link(b.ctx, storage.LinkBatch)
		must(err)
		if k == 0 {
			break
		}
	}
	// What a scan of the hour reads: the sections of its three fields, and
	// for the baseline the segments of its traces.
	conn, err := pgx.Connect(b.ctx, dsn)
	must(err)
	var sections, blocks, segBytes, colBytes float64
	must(conn.QueryRow(b.ctx, `SELECT coalesce(sum(ends[p] - coalesce(ends[p - 1], 0)), 0)::float8, count(DISTINCT (trace_id_low, ts, block_uid))::float8
		FROM span_columns c, unnest(ARRAY['trace', 'span.http.path', 'duration']) AS f(name), LATERAL (SELECT array_position(c.names, f.name) AS p) x
		WHERE ts_max >= $1 AND ts > $1::timestamptz - interval '1 hour' AND p IS NOT NULL`, start).Scan(&sections, &blocks))
	must(conn.QueryRow(b.ctx, `SELECT sum(pg_total_relation_size(c.oid))::float8 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'span_columns'::regclass`).Scan(&colBytes))
	must(conn.QueryRow(b.ctx, `SELECT coalesce(sum(octet_length(data)), 0)::float8 FROM segments s
		WHERE EXISTS (SELECT 1 FROM span_index x WHERE x.trace_id_low = s.trace_id_low AND x.ts_max >= $1)`, start).Scan(&segBytes))
	conn.Close(b.ctx)

	p := b.start(fmt.Sprintf("scan-%d", n), []string{"POSTGRES_URL=" + dsn, "RABBIT_URI=" + b.amqpURL, "RABBIT_QUEUE=" + b.queue("scan")}, "query")
	defer p.stop()
	search := func(q string) string {
		return "http://" + p.addr + "/api/search?" + url.Values{"q": {q}, "limit": {"20"}, "start": {fmt.Sprint(start.Unix())},
			"end": {fmt.Sprint(end.Unix() + 1)}}.Encode()
	}
	const filter = `{ span.http.path =~ ".*/99[0-9]" && duration > 51ms }`
	var out strings.Builder
	fmt.Fprintf(&out, "### TraceQL scan rate, %d spans stored, layout %q\n\n", n, layout)
	fmt.Fprintf(&out, "%d spans over the last 24 h through zipq's write path (5,000 a write), %d in the searched hour; `%s` matches none, so every span of the hour is scanned. Each row sends the query for %v from as many workers as in flight to `zipq query`; CPU is PostgreSQL's and zipq's from /proc over that time. Baseline in the same run: the same filter `|| { resource.none = \"x\" }`, which no prefilter serves (it has ||), so every trace of the hour is read whole as before span columns.\n\n",
		n, inHour, filter, each)
	fmt.Fprintf(&out, "Read per span of the hour: span columns %.1f bytes (%0.f blocks, %.0f spans a block), whole traces %.1f bytes. The span columns take %.1f bytes per stored span, all-in.\n\n",
		sections/float64(inHour), blocks, float64(inHour)/max(blocks, 1), segBytes/float64(inHour), colBytes/float64(n))
	fmt.Fprintf(&out, "| query | in flight | requests | p50 | spans/s | CPU s: PostgreSQL, zipq | spans per CPU-second | / baseline |\n|---|---|---|---|---|---|---|---|\n")
	var profile string
	for _, conc := range []int{1, 8} {
		var base float64
		for _, c := range []struct{ name, q string }{
			{"baseline: every trace read whole", filter + ` || { resource.none = "x" }`},
			{"span columns", filter},
		} {
			getAs("", search(c.q)) // warm
			var prof chan string
			if conc == 8 && c.name == "span columns" {
				prof = make(chan string, 1)
				go func() {
					prof <- b.profile(p, fmt.Sprintf("profile?seconds=%d", int(each.Seconds())-1), "cpu-scan-"+layout+".pprof")
				}()
			}
			cpu0 := processCPU(p.cmd.Process.Pid)
			t0 := time.Now()
			var mu sync.Mutex
			var lat []time.Duration
			var wg sync.WaitGroup
			for range conc {
				wg.Go(func() {
					for time.Since(t0) < each {
						t := time.Now()
						getAs("", search(c.q))
						mu.Lock()
						lat = append(lat, time.Since(t))
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			wall := time.Since(t0)
			cpu1 := processCPU(p.cmd.Process.Pid)
			cpu := cpu1[0] - cpu0[0] + cpu1[2] - cpu0[2]
			scanned := float64(len(lat) * inHour)
			perCPU := scanned / cpu
			if base == 0 {
				base = perCPU
			}
			slices.Sort(lat)
			fmt.Fprintf(&out, "| %s | %d | %d | %s | %.0f | %.1f, %.1f | **%.0f** | %.1f |\n", c.name, conc, len(lat), ms(lat[len(lat)/2]),
				scanned/wall.Seconds(), cpu1[0]-cpu0[0], cpu1[2]-cpu0[2], perCPU, perCPU/base)
			if prof != nil {
				profile = <-prof
			}
		}
	}
	fmt.Fprintf(&out, "\n`zipq query`'s CPU profile during the span-column scan at 8 in flight (`go tool pprof -top`):\n\n```\n%s\n```\n", top(profile, "-top"))
	return out.String()
}
