package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zipq/zipq/internal/testenv"
)

// demoSpan is Zipkin v2 JSON, enough of it for the demo data set.
type demoSpan struct {
	TraceID   string            `json:"traceId"`
	ID        string            `json:"id"`
	ParentID  string            `json:"parentId,omitempty"`
	Kind      string            `json:"kind,omitempty"`
	Name      string            `json:"name"`
	Timestamp int64             `json:"timestamp"`
	Duration  int64             `json:"duration"`
	Local     demoEndpoint      `json:"localEndpoint"`
	Remote    *demoEndpoint     `json:"remoteEndpoint,omitempty"`
	Shared    bool              `json:"shared,omitempty"`
	Tags      map[string]string `json:"tags,omitempty"`
	Notes     []demoAnnotation  `json:"annotations,omitempty"`
}

type demoEndpoint struct {
	Service string `json:"serviceName"`
}

type demoAnnotation struct {
	Timestamp int64  `json:"timestamp"`
	Value     string `json:"value"`
}

// demoCall is a call tree: a service's operation and what it calls in turn
// (a remote without calls of its own, like redis, is uninstrumented).
type demoCall struct {
	service, name string
	ms            float64 // own work, in ms (jittered)
	calls         []demoCall
	remote        bool // not instrumented: only the caller's CLIENT span
	failRate      float64
}

var demoRoutes = []demoCall{
	{service: "frontend", name: "get /checkout", ms: 8, calls: []demoCall{
		{service: "api-gateway", name: "post /api/checkout", ms: 4, calls: []demoCall{
			{service: "auth", name: "verify token", ms: 6, calls: []demoCall{{service: "redis", name: "get", ms: 1, remote: true}}},
			{service: "cart", name: "get cart", ms: 12, calls: []demoCall{{service: "postgres", name: "select", ms: 9, remote: true}}},
			{service: "checkout", name: "place order", ms: 20, calls: []demoCall{
				{service: "inventory", name: "reserve", ms: 25, calls: []demoCall{{service: "postgres", name: "update", ms: 14, remote: true}}},
				{service: "payments", name: "charge", ms: 30, failRate: 0.15, calls: []demoCall{{service: "stripe", name: "post /v1/charges", ms: 180, remote: true}}},
				{service: "orders", name: "create order", ms: 15, calls: []demoCall{{service: "postgres", name: "insert", ms: 7, remote: true}}},
				{service: "shipping", name: "quote", ms: 40},
				{service: "notifications", name: "send confirmation", ms: 5, calls: []demoCall{{service: "kafka", name: "send", ms: 3, remote: true}}},
			}},
		}},
	}},
	{service: "frontend", name: "get /search", ms: 6, calls: []demoCall{
		{service: "api-gateway", name: "get /api/search", ms: 3, calls: []demoCall{
			{service: "search", name: "query", ms: 35, calls: []demoCall{{service: "elasticsearch", name: "post /_search", ms: 60, remote: true}}},
			{service: "recommendations", name: "for user", ms: 45, failRate: 0.05, calls: []demoCall{{service: "redis", name: "mget", ms: 2, remote: true}}},
		}},
	}},
	{service: "frontend", name: "get /profile", ms: 5, calls: []demoCall{
		{service: "api-gateway", name: "get /api/users/me", ms: 3, calls: []demoCall{
			{service: "auth", name: "verify token", ms: 6},
			{service: "users", name: "get user", ms: 10, calls: []demoCall{{service: "postgres", name: "select", ms: 5, remote: true}}},
		}},
	}},
}

// demoTraces is a realistic data set: n traces over the last 50 minutes
// through 13 instrumented services and 5 uninstrumented remotes, with
// client/server halves, errors, one server clock 180 ms behind in every
// tenth trace (the fourth fails in payments), and an orphan in every
// seventh.
func demoTraces(now time.Time, n int, seed uint64) [][]demoSpan {
	rnd := rand.New(rand.NewPCG(seed, seed+1))
	out := make([][]demoSpan, 0, n)
	for i := range n {
		route := demoRoutes[i%len(demoRoutes)]
		g := &demoGen{rnd: rnd, traceID: fmt.Sprintf("%016x", rnd.Uint64()), skewed: i%10 == 3, forceFail: i == 3}
		start := now.Add(-time.Duration(rnd.Int64N(int64(50 * time.Minute)))).UnixMicro()
		g.call(route, "", start, "")
		if g.skewed { // the checkout host's clock is 180 ms behind, for all it reports
			for k := range g.spans {
				if g.spans[k].Local.Service == "checkout" {
					g.spans[k].Timestamp -= 180_000
					for n := range g.spans[k].Notes {
						g.spans[k].Notes[n].Timestamp -= 180_000
					}
				}
			}
		}
		if i%7 == 5 {
			g.spans = append(g.spans, demoSpan{TraceID: g.traceID, ID: g.id(), ParentID: "00000000deadbeef", Name: "audit write",
				Timestamp: start + 2000, Duration: 1500, Local: demoEndpoint{"audit"}})
		}
		out = append(out, g.spans)
	}
	return out
}

type demoGen struct {
	rnd     *rand.Rand
	traceID string
	spans   []demoSpan
	next    int
	skewed  bool
	failed  bool
	// forceFail makes payments fail (the screenshots' trace).
	forceFail bool
}

func (g *demoGen) id() string {
	g.next++
	return g.traceID[:8] + fmt.Sprintf("%08x", g.next)
}

// call emits c's server span (and its caller's client half when caller
// is set) starting at start, runs its calls one after another (the last
// two in parallel), and returns its duration in µs.
func (g *demoGen) call(c demoCall, parent string, start int64, caller string) int64 {
	id := g.id()
	jitter := func(ms float64) int64 { return int64(ms * 1000 * (0.6 + g.rnd.Float64()*0.9)) }
	failed := c.failRate > 0 && (g.rnd.Float64() < c.failRate || g.forceFail)
	if c.remote {
		d := jitter(c.ms)
		g.spans = append(g.spans, demoSpan{TraceID: g.traceID, ID: id, ParentID: parent, Kind: "CLIENT", Name: c.name,
			Timestamp: start, Duration: d, Local: demoEndpoint{caller}, Remote: &demoEndpoint{c.service}})
		return d
	}
	latency := int64(300 + g.rnd.IntN(900))
	t := start + latency + jitter(c.ms)/2
	var parallelEnd int64
	for i, sub := range c.calls {
		parallel := len(c.calls) > 2 && i >= len(c.calls)-2
		d := g.call(sub, id, t, c.service)
		if parallel {
			parallelEnd = max(parallelEnd, t+d)
		} else {
			t += d + int64(100+g.rnd.IntN(400))
		}
	}
	t = max(t, parallelEnd) + jitter(c.ms)/2
	serverDur := t - (start + latency)
	clientDur := serverDur + 2*latency
	tags := map[string]string{}
	if strings.HasPrefix(c.name, "get ") || strings.HasPrefix(c.name, "post ") {
		method, path, _ := strings.Cut(c.name, " ")
		tags["http.method"], tags["http.path"] = strings.ToUpper(method), path
		tags["http.status_code"] = "200"
	}
	var notes []demoAnnotation
	if failed || (g.failed && caller == "") {
		tags["error"] = "card declined"
		if c.service != "payments" {
			tags["error"] = "upstream failed"
		}
		notes = append(notes, demoAnnotation{start + latency + serverDur/2, "retrying"})
		g.failed = true
	}
	server := demoSpan{TraceID: g.traceID, ID: id, ParentID: parent, Kind: "SERVER", Name: c.name, Timestamp: start + latency,
		Duration: serverDur, Local: demoEndpoint{c.service}, Tags: tags, Notes: notes}
	if caller == "" {
		server.Timestamp, server.Duration = start, clientDur
		g.spans = append(g.spans, server)
		return clientDur
	}
	server.Shared = true
	g.spans = append(g.spans, server, demoSpan{TraceID: g.traceID, ID: id, ParentID: parent, Kind: "CLIENT", Name: c.name,
		Timestamp: start, Duration: clientDur, Local: demoEndpoint{caller}, Remote: &demoEndpoint{c.service}})
	return clientDur
}

// TestUIScreenshots renders every page on the realistic data set (360
// traces over 13 services, skew, orphans, errors) in Chromium and checks
// each renders without a page error; with ZIPQ_UPDATE_SCREENSHOTS=1 it
// writes the README's screenshots to docs/img.
func TestUIScreenshots(t *testing.T) {
	t.Parallel()
	node, chromium := requireBrowser(t)
	f := newFixture(t)
	p := startZipq(t, append(f.env, "ZIPQ_ADMIN_TOKEN=shots-0123456789ab", "ZIPQ_LINK_INTERVAL=100ms", "COLLECTOR_BATCH_INTERVAL=50ms",
		"AUTOCOMPLETE_KEYS=http.method,http.path,error"), "serve")
	base := "http://" + p.addr
	traces := demoTraces(time.Now(), 360, 13)
	var all []demoSpan
	for _, tr := range traces {
		all = append(all, tr...)
	}
	body, err := json.Marshal(all)
	testenv.Must(t, err)
	postSpans(t, base, string(body))
	publishRaw(t, f.queue, []byte(`{"traceId":"1","id":"2","name":"json v1?","annotations":[{"endpoint":`))
	var links []map[string]any
	testenv.Eventually(t, 30*time.Second, "demo links", func() bool {
		getJSON(t, base+"/api/v2/dependencies?endTs="+strconv.FormatInt(time.Now().UnixMilli(), 10), &links)
		return len(links) >= 20
	})
	// The screenshot trace: a skewed checkout trace that failed, and one
	// that did not to compare it with.
	var skewedFailed, ok string
	for i, tr := range traces {
		if i%len(demoRoutes) != 0 { // not a checkout
			continue
		}
		failed := slices.ContainsFunc(tr, func(s demoSpan) bool { _, ok := s.Tags["error"]; return ok })
		switch {
		case i%10 == 3 && failed && skewedFailed == "":
			skewedFailed = tr[0].TraceID
		case !failed && i%10 != 3 && i%7 != 5 && i > 30 && ok == "":
			ok = tr[0].TraceID
		}
	}
	if skewedFailed == "" || ok == "" {
		t.Fatal("the demo data set has no skewed failed checkout, or no clean one")
	}
	shots := t.TempDir()
	if os.Getenv("ZIPQ_UPDATE_SCREENSHOTS") != "" {
		shots, _ = filepath.Abs("../../docs/img")
		testenv.Must(t, os.MkdirAll(shots, 0o755))
	}
	out := runUIScript(t, node, chromium, base, []string{"SCREENSHOTS=" + shots, "ADMIN_TOKEN=shots-0123456789ab"}, "shots", skewedFailed, ok)
	t.Log(out)
	if !strings.Contains(out, "all UI checks passed") {
		t.Fatalf("screenshots failed (in %s)", shots)
	}
	for _, name := range []string{"search.png", "traceql.png", "trace.png", "flame.png", "compare.png", "dependencies.png", "pipeline.png"} {
		if st, err := os.Stat(filepath.Join(shots, name)); err != nil || st.Size() < 10_000 {
			t.Errorf("screenshot %s: %v", name, err)
		}
	}
}
