package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zipq/zipq/storage"
	"github.com/zipq/zipq/zipkin"
)

type latency struct {
	name     string
	conc     int
	p50, p99 time.Duration
}

type queryResult struct {
	spans          int
	seed           time.Duration
	bytesPerSpan   float64 // segments partitions (compressed spans, their key)
	bytesPerSpanDB float64 // every table and index of the schema (names, links too): the target's figure
	heapPerSpan    float64 // span_index partitions, rows and indexes
	indexPerSpan   float64 // span_index's indexes alone (B-tree, BRIN, GIN)
	rows           []latency
	scanTop        string // zipq query's CPU profile during the scan at 8 in flight
}

// queries stores n spans spread over the last day through the collector's
// own write path (so names and dependency links are built as in
// production), links them, then measures the API over HTTP against a
// `zipq query` process at concurrency 1 and 8.
func (b *bench) queries(n int) queryResult {
	dsn, st := b.schema(fmt.Sprintf("query%d", n))
	res := queryResult{spans: n}
	end := time.Now()
	var ids []zipkin.TraceID
	t := time.Now()
	chunks(n, 99, end, 24*time.Hour, func(sp []zipkin.Span) {
		for i := 0; i < len(sp); i += 5000 {
			must(st.WriteSpans(b.ctx, sp[i:min(i+5000, len(sp))]))
		}
		if len(ids) < 2000 {
			for i := 0; i < len(sp); i += 10 {
				ids = append(ids, sp[i].TraceID)
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
	res.seed = time.Since(t)
	res.bytesPerSpan, res.bytesPerSpanDB, res.heapPerSpan, res.indexPerSpan = sizes(b, dsn, n)

	// A queue of its own: zipq query declares its span queue, and the
	// shared broker's "zipkin" is not the benchmark's to create.
	p := b.start(fmt.Sprintf("query-%d", n), []string{"POSTGRES_URL=" + dsn, "RABBIT_URI=" + b.amqpURL, "RABBIT_QUEUE=" + b.queue("query")}, "query")
	base := "http://" + p.addr
	endMs := fmt.Sprint(end.UnixMilli())
	hour := url.Values{"endTs": {endMs}, "lookback": {"3600000"}, "limit": {"10"}}
	with := func(extra ...string) string {
		v := url.Values{}
		for k, vs := range hour {
			v[k] = vs
		}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return base + "/api/v2/traces?" + v.Encode()
	}
	tempo := func(q string) string {
		return base + "/api/search?" + url.Values{"q": {q}, "limit": {"20"}, "start": {fmt.Sprint(end.Add(-time.Hour).Unix())},
			"end": {fmt.Sprint(end.Unix() + 1)}}.Encode()
	}
	cases := []struct {
		name string
		url  func(i int) string
	}{
		{"baseline: GET /health (HTTP + PostgreSQL ping)", func(int) string { return base + "/health" }},
		{"trace by id", func(i int) string { return base + "/api/v2/trace/" + ids[i%len(ids)].String() }},
		{"search: service, 1 h, limit 10", func(int) string { return with("serviceName", "checkout") }},
		{"search: service + span name", func(int) string { return with("serviceName", "checkout", "spanName", "post /api/cart") }},
		{"search: annotationQuery (error, any service)", func(int) string { return with("annotationQuery", "error") }},
		{"search: service + annotationQuery", func(int) string {
			return with("serviceName", "payments", "annotationQuery", "error and http.method=GET")
		}},
		{"search: service + rare tag (1 in 1,000 spans)", func(int) string {
			return with("serviceName", "payments", "annotationQuery", "http.path=/api/v1/items/7")
		}},
		{"search: service + minDuration 40 ms", func(int) string { return with("serviceName", "checkout", "minDuration", "40000") }},
		// Tempo's API: the plan in brackets (README, "Grafana and TraceQL").
		{"tempo: trace by id (/api/traces, protobuf) [segments by trace id]", func(i int) string {
			return base + "/api/traces/" + ids[i%len(ids)].String() + "#protobuf"
		}},
		{"traceql: { resource.service.name = \"checkout\" } [index walk, service key]", func(int) string {
			return tempo(`{ resource.service.name = "checkout" }`)
		}},
		{"traceql: { status = error } [span columns, no key]", func(int) string { return tempo(`{ status = error }`) }},
		{"traceql: { span.http.path = \"/api/v1/items/7\" } (1 in 1,000 spans) [index walk, tag term key]", func(int) string {
			return tempo(`{ span.http.path = "/api/v1/items/7" }`)
		}},
		{"traceql: { resource.service.name = \"checkout\" } >> { status = error } [walk, service key]", func(int) string {
			return tempo(`{ resource.service.name = "checkout" } >> { status = error }`)
		}},
		{"traceql scan: { span.http.path =~ \".*/99[0-9]\" && duration > 51ms } (none: every span of the hour) [span columns]", func(int) string {
			return tempo(`{ span.http.path =~ ".*/99[0-9]" && duration > 51ms }`)
		}},
		{"dependencies, one day", func(int) string { return base + "/api/v2/dependencies?endTs=" + endMs + "&lookback=86400000" }},
		{"services", func(int) string { return base + "/api/v2/services" }},
	}
	for _, c := range cases {
		for _, conc := range []int{1, 8} {
			scan := strings.HasPrefix(c.name, "traceql scan")
			// The scan's target is a rate per core: profile where it goes.
			var cpu chan string
			if scan && conc == 8 {
				cpu = make(chan string, 1)
				go func() { cpu <- b.profile(p, "profile?seconds=10", "cpu-traceql-scan.pprof") }()
			}
			name, total, warm := c.name, 200, 10
			if scan && n > 1_000_000 {
				// Each reads the whole hour: at 10M spans 417k spans, seconds
				// a request; as many spans read in all as at 1M.
				total, warm = max(24, 200*1_000_000/n), 2
				name = fmt.Sprintf("%s, %d requests", c.name, total)
			}
			res.rows = append(res.rows, measure(name, conc, total, warm, "", c.url))
			if cpu != nil {
				res.scanTop = top(<-cpu, "-top")
			}
		}
	}
	p.stop()
	return res
}

// measure issues total requests from conc workers (with token as a
// bearer token, unless empty) and reports p50 and p99.
func measure(name string, conc, total, warm int, token string, target func(int) string) latency {
	for i := 0; i < warm; i++ { // warm caches and connections
		getAs(token, target(i))
	}
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	per := total / conc
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < per; i++ {
				t := time.Now()
				getAs(token, target(w*per+i))
				d := time.Since(t)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	slices.Sort(lat)
	return latency{name: name, conc: conc, p50: lat[len(lat)/2], p99: lat[len(lat)*99/100]}
}

// get fetches u; a #protobuf suffix asks for protobuf (Tempo's trace by
// ID as Grafana reads it).
func get(u string) { getAs("", u) }

// getAs is get with token as a bearer token (none when empty).
func getAs(token, u string) {
	accept := ""
	if strings.HasSuffix(u, "#protobuf") {
		accept = "application/protobuf"
	}
	fetch(token, accept, strings.TrimSuffix(u, "#protobuf"))
}

// fetch GETs u with a bearer token and an Accept header (none when
// empty) and returns the body of its 200 answer.
func fetch(token, accept, u string) []byte {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	must(err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	must(err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	must(err)
	if resp.StatusCode != http.StatusOK {
		panic(fmt.Sprintf("GET %s: %s: %s", u, resp.Status, body))
	}
	return body
}

// sizes reports bytes per span after VACUUM ANALYZE: the segments
// (compressed spans), span_index (rows and indexes), and the whole schema
// (name tables, dependency links and their per-trace rows too).
func sizes(b *bench, dsn string, n int) (segments, all, index, indexIdx float64) {
	conn, err := pgx.Connect(b.ctx, dsn)
	must(err)
	defer conn.Close(b.ctx)
	_, err = conn.Exec(b.ctx, "VACUUM ANALYZE segments, span_index, span_names, remote_services, trace_links, dependency_links, link_pending")
	must(err)
	var sg, a, ix, ixi int64
	part := func(parent string, v *int64, f string) {
		must(conn.QueryRow(b.ctx, `SELECT coalesce(sum(`+f+`(c.oid)), 0) FROM pg_inherits i
			JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = $1::regclass`, parent).Scan(v))
	}
	part("segments", &sg, "pg_total_relation_size")
	part("span_index", &ix, "pg_total_relation_size")
	part("span_index", &ixi, "pg_indexes_size")
	must(conn.QueryRow(b.ctx, `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c
		WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')`).Scan(&a))
	per := func(v int64) float64 { return float64(v) / float64(n) }
	return per(sg), per(a), per(ix), per(ixi)
}
