package main

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/zipq/zipq/zipkin"
)

// The tempo part feeds the same Zipkin JSON to zipq serve and to a Grafana
// Tempo the user runs (its zipkin receiver and query API given by flags),
// then asks both the same TraceQL searches and traces by ID and compares
// the answers: which traces, which spans matched, each trace's root and
// every span's attributes as each serves them. Then both answer the
// issue's latency cases at 1 and 8 in flight in the same run. Printed,
// not written: Tempo is not part of zipq, and a run needs one.
type tempoTarget struct {
	api    string // Tempo's query API, e.g. http://127.0.0.1:3200
	zipkin string // Tempo's zipkin receiver host:port
}

// tempoQueries are the searches compared: every intrinsic, scope and
// operator class the bench generator's spans can exercise, and the
// string caveat (a Zipkin tag stays a string, so >= 500 matches none).
var tempoQueries = []string{
	`{ resource.service.name = "checkout" }`,
	`{ status = error }`,
	`{ status = ok }`,
	`{ status = unset && kind = client }`,
	`{ span.http.path = "/api/v1/items/7" }`,
	`{ span.http.path =~ ".*/99[0-9]" }`,
	`{ span.http.path !~ ".*/[0-8].*" && resource.service.name = "cart" }`,
	`{ span.http.status_code >= 500 }`,
	`{ span.http.status_code = "200" && duration > 45ms }`,
	`{ .instance = "3" && !(resource.service.name = "frontend") }`,
	`{ kind = server && name = "charge" && duration < 1ms }`,
	`{ span.peer.service = "payments" }`,
	`{ statusMessage = "timeout" }`,
	`{ event:name = "wire.send" && resource.service.name = "users" }`,
	`{ trace:rootService = "frontend" && trace:duration > 49ms }`,
	`{ rootName = "get /api/items" && status = error }`,
	`{ resource.service.name = "checkout" } >> { status = error }`,
	`{ resource.service.name = "frontend" } > { resource.service.name = "checkout" }`,
	`{ name = "charge" } ~ { status = error }`,
	`{ status = error } < { resource.service.name = "frontend" }`,
	`{ resource.service.name = "cart" } && { resource.service.name = "shipping" && status = error }`,
	`{ resource.service.name = "search" && status = error } || { span.http.path = "/api/v1/items/3" }`,
	`{ resource.service.name = "checkout" } !>> { status = error }`,
	`{ status = error } | count() > 1`,
	`{ duration > 48ms } | avg(duration) > 49ms`,
	`{ status = error } | by(resource.service.name) | count() > 1`,
	`{ span.http.path = "/api/v1/items/5" } | select(span.instance, resource.service.name)`,
}

// tempoCompareSpans is the compared set: 900 traces, so that every
// query's whole answer fits zipq's largest limit (1,000 traces).
const tempoCompareSpans = 9_000

// tempoCompare loads a small set into both and compares their answers,
// then loads n spans more and measures both.
func (b *bench) tempoCompare(n int, t tempoTarget) string {
	dsn, _ := b.schema("tempo")
	p := b.start("serve-tempo", []string{"POSTGRES_URL=" + dsn, "RABBIT_URI=" + b.amqpURL, "RABBIT_QUEUE=" + b.queue("tempo"),
		"RABBIT_PARKED_QUEUE_TYPE=classic"}, "serve")
	defer p.stop()
	zq := "http://" + p.addr
	var out strings.Builder
	stored := 0
	// load sends n spans dated over the window before now to both (as
	// live traffic is: Tempo's ingesters search by the time spans arrive)
	// and waits until zipq stored them and Tempo's search finds them.
	load := func(n int, seed uint64, window time.Duration) (ids []zipkin.TraceID, end time.Time) {
		end = time.Now()
		var bodies [][]byte
		chunks(n, seed, end, window, func(sp []zipkin.Span) {
			bodies = append(bodies, messages(sp, 100)...)
			for i := 0; i < len(sp); i += 10 {
				ids = append(ids, sp[i].TraceID)
			}
		})
		for _, s := range []struct{ name, addr string }{{"zipq", p.addr}, {"Tempo", t.zipkin}} {
			t0 := time.Now()
			sendAll(b.sender("zipkin-json-http", s.addr, "", "", ""), bodies)
			fmt.Fprintf(&out, "%s accepted %d spans (Zipkin JSON over HTTP, 100 a request, %d clients) in %v\n",
				s.name, n, otlpClients, time.Since(t0).Round(10*time.Millisecond))
		}
		stored += n
		for count(b.ctx, dsn) < stored {
			time.Sleep(100 * time.Millisecond)
		}
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(2 * time.Second) {
			got := len(searchAnswer(tempoSearch(t.api, "{}", end.Add(-window), end, 1_000_000)))
			if got >= len(ids) {
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintf(&out, "Tempo's search found %d of these %d traces after 2 minutes\n", got, len(ids))
				break
			}
		}
		return ids, end
	}
	ids, end := load(tempoCompareSpans, 23, time.Minute)
	search := func(base, q string, limit int) string { return tempoSearch(base, q, end.Add(-time.Minute), end, limit) }
	fmt.Fprintf(&out, "\n| TraceQL | traces: Tempo, zipq | same traces | same matched spans | same root service and name | first difference |\n|---|---|---|---|---|---|\n")
	for _, q := range tempoQueries {
		tm, zm := searchAnswer(search(t.api, q, 1000)), searchAnswer(search(zq, q, 1000))
		sameTraces, sameSpans, sameRoot, first := diffSearch(tm, zm)
		fmt.Fprintf(&out, "| `%s` | %d, %d | %s | %s | %s | %s |\n", strings.ReplaceAll(q, "|", "\\|"), len(tm), len(zm),
			yes(sameTraces), yes(sameSpans), yes(sameRoot), first)
	}

	// Trace by ID: every span's fields and attributes as both serve them.
	fields, example := map[string]int{}, map[string]string{}
	var diffs, spansCompared int
	sample := ids[:min(200, len(ids))]
	for _, id := range sample {
		tt, zt := traceByID(t.api, id), traceByID(zq, id)
		spansCompared += len(zt)
		both := maps.Clone(tt)
		maps.Copy(both, zt)
		for _, k := range slices.Sorted(maps.Keys(both)) {
			if d := diffSpan(tt[k], zt[k]); d != "" {
				diffs++
				fields[d]++
				if _, ok := example[d]; !ok && tt[k] != nil && zt[k] != nil {
					f := strings.TrimSuffix(d, " (only zipq)")
					example[d] = fmt.Sprintf("Tempo `%s`, zipq `%s`", tt[k][f], zt[k][f])
				}
			}
		}
	}
	fmt.Fprintf(&out, "\nTrace by ID (/api/v2/traces/<id>, OTLP JSON), %d traces, %d spans: %d spans differ", len(sample), spansCompared, diffs)
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		fmt.Fprintf(&out, "\n- %s: %d (first: %s)", k, fields[k], example[k])
	}

	// Latency, the cases, both in the same run, over n spans more.
	fmt.Fprintf(&out, "\n\n")
	ids, end = load(n, 29, 5*time.Minute)
	search = func(base, q string, limit int) string { return tempoSearch(base, q, end.Add(-time.Hour), end, limit) }
	fmt.Fprintf(&out, "\n| request | Tempo p50 / p99 at 1 | zipq p50 / p99 at 1 | Tempo p50 / p99 at 8 | zipq p50 / p99 at 8 |\n|---|---|---|---|---|\n")
	cases := []struct {
		name string
		url  func(base string, i int) string
	}{
		{"trace by ID (/api/traces/<id>, protobuf)", func(base string, i int) string {
			return base + "/api/traces/" + ids[(i*7919)%len(ids)].String() + "#protobuf"
		}},
		{"`{ resource.service.name = \"checkout\" }`, limit 20", func(base string, _ int) string {
			return search(base, `{ resource.service.name = "checkout" }`, 20)
		}},
		{"`{ status = error }`, limit 20", func(base string, _ int) string { return search(base, `{ status = error }`, 20) }},
		{"`{ span.http.path = \"/api/v1/items/7\" }`, limit 20", func(base string, _ int) string {
			return search(base, `{ span.http.path = "/api/v1/items/7" }`, 20)
		}},
		{"scan: `{ span.http.path =~ \".*/99[0-9]\" && duration > 51ms }`", func(base string, _ int) string {
			return search(base, `{ span.http.path =~ ".*/99[0-9]" && duration > 51ms }`, 20)
		}},
	}
	for _, c := range cases {
		var cells []string
		for _, conc := range []int{1, 8} {
			for _, base := range []string{t.api, zq} {
				l := measure(c.name, conc, 200, 10, "", func(i int) string { return c.url(base, i) })
				cells = append(cells, strings.TrimSuffix(ms(l.p50), " ms")+" / "+ms(l.p99))
			}
		}
		fmt.Fprintf(&out, "| %s | %s |\n", c.name, strings.Join(cells, " | "))
	}
	return out.String()
}

// tempoSearch is Tempo's search URL on base for q between from and to.
func tempoSearch(base, q string, from, to time.Time, limit int) string {
	return base + "/api/search?" + url.Values{"q": {q}, "limit": {fmt.Sprint(limit)}, "spss": {"1000"},
		"start": {fmt.Sprint(from.Unix() - 60)}, "end": {fmt.Sprint(to.Unix() + 60)}}.Encode()
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "**no**"
}

// hit is one trace of a search answer: its root and the matched spans.
type hit struct {
	root, rootName string
	spans          map[string]bool
}

// searchAnswer reads Tempo's search response: trace IDs and span IDs
// without leading zeros (Tempo trims them, and either form is valid).
func searchAnswer(u string) map[string]hit {
	var r struct {
		Traces []struct {
			TraceID         string `json:"traceID"`
			RootServiceName string `json:"rootServiceName"`
			RootTraceName   string `json:"rootTraceName"`
			SpanSet         *struct {
				Spans []struct {
					SpanID string `json:"spanID"`
				} `json:"spans"`
			} `json:"spanSet"`
			SpanSets []struct {
				Spans []struct {
					SpanID string `json:"spanID"`
				} `json:"spans"`
			} `json:"spanSets"`
		} `json:"traces"`
	}
	must(json.Unmarshal(fetch("", "", u), &r))
	out := map[string]hit{}
	for _, t := range r.Traces {
		h := hit{root: t.RootServiceName, rootName: t.RootTraceName, spans: map[string]bool{}}
		for _, ss := range t.SpanSets {
			for _, s := range ss.Spans {
				h.spans[strings.TrimLeft(s.SpanID, "0")] = true
			}
		}
		if t.SpanSet != nil && len(t.SpanSets) == 0 {
			for _, s := range t.SpanSet.Spans {
				h.spans[strings.TrimLeft(s.SpanID, "0")] = true
			}
		}
		out[strings.TrimLeft(t.TraceID, "0")] = h
	}
	return out
}

// diffSearch compares Tempo's answer (a) with zipq's (b).
func diffSearch(a, b map[string]hit) (traces, spans, roots bool, first string) {
	traces, spans, roots = true, true, true
	note := func(s string) {
		if first == "" {
			first = s
		}
	}
	for id, h := range a {
		g, ok := b[id]
		if !ok {
			traces = false
			note("trace " + id + " only in Tempo")
			continue
		}
		if !maps.Equal(h.spans, g.spans) {
			spans = false
			note(fmt.Sprintf("trace %s: Tempo matched %d spans, zipq %d", id, len(h.spans), len(g.spans)))
		}
		if h.root != g.root || h.rootName != g.rootName {
			roots = false
			note(fmt.Sprintf("trace %s: root %q %q in Tempo, %q %q in zipq", id, h.root, h.rootName, g.root, g.rootName))
		}
	}
	for id := range b {
		if _, ok := a[id]; !ok {
			traces = false
			note("trace " + id + " only in zipq")
		}
	}
	return traces, spans, roots, first
}

// otlpSpan is one span of an OTLP JSON trace, flattened for comparison.
type otlpSpan map[string]string

// traceByID reads /api/v2/traces/<id> (OTLP JSON, as Grafana reads it
// when it does not ask for protobuf) into spans keyed by span ID.
func traceByID(base string, id zipkin.TraceID) map[string]otlpSpan {
	var r struct {
		Trace struct {
			ResourceSpans []struct {
				Resource struct {
					Attributes []json.RawMessage `json:"attributes"`
				} `json:"resource"`
				ScopeSpans []struct {
					Spans []map[string]json.RawMessage `json:"spans"`
				} `json:"scopeSpans"`
			} `json:"resourceSpans"`
		} `json:"trace"`
	}
	must(json.Unmarshal(fetch("", "application/json", base+"/api/v2/traces/"+id.String()), &r))
	out := map[string]otlpSpan{}
	for _, rs := range r.Trace.ResourceSpans {
		res := attrs(rs.Resource.Attributes)
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				f := otlpSpan{"resource": res}
				for k, v := range s {
					switch k {
					case "attributes":
						var a []json.RawMessage
						must(json.Unmarshal(v, &a))
						f[k] = attrs(a)
					case "traceId", "spanId", "parentSpanId":
						var str string
						must(json.Unmarshal(v, &str))
						f[k] = hexID(str)
					case "kind": // OTLP JSON's number, or gogo-protobuf's enum name
						var k any
						must(json.Unmarshal(v, &k))
						f["kind"] = enumName(k, spanKinds...)
					case "status":
						var st struct {
							Code    any    `json:"code"`
							Message string `json:"message"`
						}
						must(json.Unmarshal(v, &st))
						f["status.code"] = enumName(st.Code, statusCodes...)
						f["status.message"] = st.Message
					default:
						f[k] = strings.Trim(string(v), `"`)
					}
				}
				if f["kind"] == "" {
					f["kind"] = spanKinds[0]
				}
				out[f["spanId"]] = f
			}
		}
	}
	return out
}

// attrs renders OTLP key-values sorted, each value with its JSON type.
func attrs(kvs []json.RawMessage) string {
	var s []string
	for _, kv := range kvs {
		var a struct {
			Key   string                     `json:"key"`
			Value map[string]json.RawMessage `json:"value"`
		}
		must(json.Unmarshal(kv, &a))
		for t, v := range a.Value {
			s = append(s, a.Key+"="+t+":"+string(v))
		}
	}
	slices.Sort(s)
	return strings.Join(s, ", ")
}

// hexID accepts OTLP JSON's hex IDs and gogo-protobuf's base64 ones.
func hexID(s string) string {
	if _, err := hex.DecodeString(s); err == nil && len(s)%2 == 0 {
		return strings.TrimLeft(strings.ToLower(s), "0")
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return strings.TrimLeft(hex.EncodeToString(b), "0")
	}
	return s
}

// enumName is an OTLP enum as OTLP JSON's number or gogo-protobuf's name,
// given the names in number order; names[0] when absent or unknown.
func enumName(v any, names ...string) string {
	switch v := v.(type) {
	case float64:
		if int(v) >= 0 && int(v) < len(names) {
			return names[int(v)]
		}
	case string:
		return v
	}
	return names[0]
}

var (
	statusCodes = []string{"STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"}
	spanKinds   = []string{"SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER", "SPAN_KIND_CLIENT", "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER"}
)

// diffSpan names the first field in which zipq's span (b) differs from
// Tempo's (a), "" when none does.
func diffSpan(a, b otlpSpan) string {
	switch {
	case a == nil:
		return "span only in zipq"
	case b == nil:
		return "span only in Tempo"
	}
	for _, k := range slices.Sorted(maps.Keys(a)) {
		if b[k] != a[k] {
			return k
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok && b[k] != "" {
			return k + " (only zipq)"
		}
	}
	return ""
}
