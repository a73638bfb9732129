package storage_test

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zipq/zipq/storage"
	"github.com/zipq/zipq/zipkin"
)

// seed builds spans from a compact description. Times are offsets before
// end; durations in microseconds.
type seedSpan struct {
	trace, id, parent   string
	kind, local, remote string
	name                string
	ago                 time.Duration
	dur                 int64
	tags                map[string]string
	ann                 string
	shared              bool
}

func spansAt(t *testing.T, end time.Time, in []seedSpan) []zipkin.Span {
	t.Helper()
	var b strings.Builder
	b.WriteString("[")
	for i, s := range in {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"traceId":%q,"id":%q,"name":%q,"timestamp":%d`, s.trace, s.id, s.name, end.Add(-s.ago).UnixMicro())
		if s.parent != "" {
			fmt.Fprintf(&b, `,"parentId":%q`, s.parent)
		}
		if s.kind != "" {
			fmt.Fprintf(&b, `,"kind":%q`, s.kind)
		}
		if s.dur > 0 {
			fmt.Fprintf(&b, `,"duration":%d`, s.dur)
		}
		if s.local != "" {
			fmt.Fprintf(&b, `,"localEndpoint":{"serviceName":%q}`, s.local)
		}
		if s.remote != "" {
			fmt.Fprintf(&b, `,"remoteEndpoint":{"serviceName":%q}`, s.remote)
		}
		if s.shared {
			b.WriteString(`,"shared":true`)
		}
		if s.ann != "" {
			fmt.Fprintf(&b, `,"annotations":[{"timestamp":%d,"value":%q}]`, end.Add(-s.ago).UnixMicro()+1, s.ann)
		}
		if len(s.tags) > 0 {
			b.WriteString(`,"tags":{`)
			j := 0
			for k, v := range s.tags {
				if j > 0 {
					b.WriteString(",")
				}
				fmt.Fprintf(&b, "%q:%q", k, v)
				j++
			}
			b.WriteString("}")
		}
		b.WriteString("}")
	}
	b.WriteString("]")
	return decode(t, b.String())
}

const (
	t1  = "0000000000000001"
	t2  = "00000000000000aa0000000000000002"
	t3  = "00000000000000bb0000000000000002" // same low half as t2
	t4  = "0000000000000004"
	t5  = "0000000000000005"
	t6  = "0000000000000006"
	t2l = "0000000000000002"
)

var seed = []seedSpan{
	{trace: t1, id: "a", kind: "SERVER", local: "web", name: "get /", ago: 10 * time.Minute, dur: 100_000, tags: map[string]string{"http.method": "GET"}},
	{trace: t1, id: "b", parent: "a", kind: "CLIENT", local: "web", remote: "api", name: "get /users", ago: 10*time.Minute - time.Millisecond, dur: 50_000},
	{trace: t1, id: "b", parent: "a", kind: "SERVER", local: "api", remote: "web", name: "get /users", ago: 10*time.Minute - 2*time.Millisecond, dur: 40_000, shared: true, tags: map[string]string{"error": "timeout"}, ann: "retried"},
	{trace: t2, id: "c", kind: "SERVER", local: "api", name: "post /orders", ago: 30 * time.Minute, dur: 2_000_000, tags: map[string]string{"http.method": "POST"}},
	{trace: t3, id: "d", kind: "CLIENT", local: "db", remote: "disk", name: "fsync", ago: 40 * time.Minute, dur: 300},
	{trace: t4, id: "7", kind: "SERVER", local: "web", name: "get /", ago: 25 * time.Hour, dur: 10},
	{trace: t5, id: "8", kind: "SERVER", local: "edge", name: "at end", ago: 0, dur: 1},
	{trace: t6, id: "9", kind: "SERVER", local: "edge", name: "at start", ago: 24 * time.Hour, dur: 1},
}

func idsOf(traces [][]zipkin.Span) []string {
	out := []string{}
	for _, tr := range traces {
		out = append(out, tr[0].TraceID.String())
	}
	return out
}

// TestFindTraces is the search contract: one seeded schema, one case per
// parameter and edge.
func TestFindTraces(t *testing.T) {
	t.Parallel()
	st, _ := openStore(t, storage.Config{})
	end := time.Now().Truncate(time.Millisecond)
	if err := st.WriteSpans(ctx(t), spansAt(t, end, seed)); err != nil {
		t.Fatal(err)
	}
	q := func(mod func(*zipkin.QueryRequest)) zipkin.QueryRequest {
		r := zipkin.QueryRequest{EndTs: end, Lookback: 24 * time.Hour, Limit: 10}
		if mod != nil {
			mod(&r)
		}
		return r
	}
	cases := []struct {
		name   string
		req    zipkin.QueryRequest
		strict bool
		want   []string
	}{
		{"everything in the window, newest first", q(nil), true, []string{t5, t1, t2, t3, t6}},
		// Zipkin's window is inclusive at both ends.
		{"window start and end are inclusive", q(func(r *zipkin.QueryRequest) { r.ServiceName = "edge" }), true, []string{t5, t6}},
		{"lookback widens the window", q(func(r *zipkin.QueryRequest) { r.Lookback = 48 * time.Hour; r.ServiceName = "web" }), true, []string{t1, t4}},
		{"endTs moves the window", q(func(r *zipkin.QueryRequest) { r.EndTs = end.Add(-20 * time.Minute); r.Lookback = time.Hour }), true, []string{t2, t3}},
		{"service", q(func(r *zipkin.QueryRequest) { r.ServiceName = "api" }), true, []string{t1, t2}},
		{"service is matched lower-case as stored", q(func(r *zipkin.QueryRequest) { r.ServiceName = "nope" }), true, []string{}},
		{"span name", q(func(r *zipkin.QueryRequest) { r.ServiceName = "api"; r.SpanName = "post /orders" }), true, []string{t2}},
		{"span name without service", q(func(r *zipkin.QueryRequest) { r.SpanName = "get /users" }), true, []string{t1}},
		{"remote service", q(func(r *zipkin.QueryRequest) { r.ServiceName = "web"; r.RemoteServiceName = "api" }), true, []string{t1}},
		{"bare key matches a tag key", q(func(r *zipkin.QueryRequest) { r.AnnotationQuery = []string{"error"} }), true, []string{t1}},
		{"bare key matches an annotation value", q(func(r *zipkin.QueryRequest) { r.AnnotationQuery = []string{"retried"} }), true, []string{t1}},
		{"key=value matches a tag", q(func(r *zipkin.QueryRequest) { r.AnnotationQuery = []string{"http.method=POST"} }), true, []string{t2}},
		{"key=value does not match another value", q(func(r *zipkin.QueryRequest) { r.AnnotationQuery = []string{"http.method=PUT"} }), true, []string{}},
		{"all terms must match one span", q(func(r *zipkin.QueryRequest) { r.AnnotationQuery = []string{"error", "http.method=GET"} }), true, []string{}},
		{"terms on the same span", q(func(r *zipkin.QueryRequest) { r.AnnotationQuery = []string{"error", "retried"} }), true, []string{t1}},
		{"service and terms on the same span", q(func(r *zipkin.QueryRequest) { r.ServiceName = "api"; r.AnnotationQuery = []string{"error", "retried"} }), true, []string{t1}},
		{"service and terms of another service's span", q(func(r *zipkin.QueryRequest) { r.ServiceName = "web"; r.AnnotationQuery = []string{"error"} }), true, []string{}},
		{"service, tag and window", q(func(r *zipkin.QueryRequest) {
			r.ServiceName = "web"
			r.Lookback = 48 * time.Hour
			r.AnnotationQuery = []string{"http.method=GET"}
		}), true, []string{t1}},
		{"minDuration", q(func(r *zipkin.QueryRequest) { r.MinDuration = 100_000 }), true, []string{t1, t2}},
		{"min and maxDuration", q(func(r *zipkin.QueryRequest) { r.MinDuration = 40_000; r.MaxDuration = 50_000 }), true, []string{t1}},
		{"duration and service on the same span", q(func(r *zipkin.QueryRequest) { r.ServiceName = "api"; r.MinDuration = 1_000_000 }), true, []string{t2}},
		// The whole trace's duration, beside (not instead of) a span's:
		// t1 lasts 100 ms (its root), t2 2 s, the others less than 1 ms.
		{"minTraceDuration", q(func(r *zipkin.QueryRequest) { r.MinTraceDuration = 100_000 }), true, []string{t1, t2}},
		{"min and maxTraceDuration", q(func(r *zipkin.QueryRequest) { r.MinTraceDuration = 50_000; r.MaxTraceDuration = 150_000 }), true, []string{t1}},
		{"maxTraceDuration alone", q(func(r *zipkin.QueryRequest) { r.MaxTraceDuration = 1000 }), true, []string{t5, t3, t6}},
		{"a span's duration and the trace's are separate filters", q(func(r *zipkin.QueryRequest) {
			r.ServiceName = "api"
			r.MinDuration = 30_000
			r.MinTraceDuration = 1_000_000
		}), true, []string{t2}},
		{"limit", q(func(r *zipkin.QueryRequest) { r.Limit = 2 }), true, []string{t5, t1}},
		{"non-strict groups by the low 64 bits", q(func(r *zipkin.QueryRequest) { r.EndTs = end.Add(-20 * time.Minute); r.Lookback = time.Hour }), false, []string{t2l}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := st.FindTraces(ctx(t), c.req, c.strict)
			if err != nil {
				t.Fatal(err)
			}
			ids := idsOf(got)
			if !c.strict && len(got) == 1 {
				ids = []string{zipkin.TraceID{Low: got[0][0].TraceID.Low}.String()}
				if len(got[0]) != 2 {
					t.Fatalf("non-strict trace holds %d spans, want both", len(got[0]))
				}
			}
			if !reflect.DeepEqual(ids, c.want) {
				t.Fatalf("got %v, want %v", ids, c.want)
			}
		})
	}
	t.Run("whole traces come back in a stable order", func(t *testing.T) {
		got, err := st.FindTraces(ctx(t), q(func(r *zipkin.QueryRequest) { r.ServiceName = "api"; r.Limit = 1 }), true)
		if err != nil || len(got) != 1 || len(got[0]) != 3 {
			t.Fatalf("got %v %v", got, err)
		}
		if got[0][0].ID.String() != "000000000000000a" || got[0][1].Kind != zipkin.KindClient || !got[0][2].Shared {
			t.Fatalf("order: %+v", got[0])
		}
	})
	t.Run("names", func(t *testing.T) {
		for _, c := range []struct {
			got  func() ([]string, error)
			want []string
		}{
			{func() ([]string, error) { return st.ServiceNames(ctx(t)) }, []string{"api", "db", "edge", "web"}},
			{func() ([]string, error) { return st.SpanNames(ctx(t), "api") }, []string{"get /users", "post /orders"}},
			{func() ([]string, error) { return st.RemoteServiceNames(ctx(t), "web") }, []string{"api"}},
			{func() ([]string, error) { return st.SpanNames(ctx(t), "unknown") }, []string{}},
		} {
			got, err := c.got()
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %q %v, want %q", got, err, c.want)
			}
		}
	})
	t.Run("traces by id, strict and not", func(t *testing.T) {
		id := func(s string) zipkin.TraceID { v, _ := zipkin.ParseTraceID(s); return v }
		got, _ := st.Traces(ctx(t), []zipkin.TraceID{id(t2), id(t1), id("99"), id(t1)}, true)
		if ids := idsOf(got); !reflect.DeepEqual(ids, []string{t2, t1}) {
			t.Fatalf("strict: %v", ids)
		}
		got, _ = st.Traces(ctx(t), []zipkin.TraceID{id(t2l)}, true)
		if len(got) != 0 {
			t.Fatal("strict: a 64-bit id must not match 128-bit traces")
		}
		got, _ = st.Traces(ctx(t), []zipkin.TraceID{id(t2l)}, false)
		if len(got) != 1 || len(got[0]) != 2 {
			t.Fatalf("non-strict: %v", got)
		}
	})
}

// TestDependencies: links appear once the linker ran, split halves count
// once, late spans re-link instead of double counting, errors count.
func TestDependencies(t *testing.T) {
	t.Parallel()
	st, dsn := openStore(t, storage.Config{})
	end := time.Now()
	link := func() {
		t.Helper()
		for {
			n, err := st.Link(ctx(t), 2)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				return
			}
		}
	}
	deps := func() []zipkin.DependencyLink {
		t.Helper()
		got, err := st.Dependencies(ctx(t), end, 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	write := func(s ...seedSpan) {
		t.Helper()
		if err := st.WriteSpans(ctx(t), spansAt(t, end, s)); err != nil {
			t.Fatal(err)
		}
	}
	// The client half arrives first, alone: a leaf client links to its
	// remote name.
	write(seedSpan{trace: "1", id: "a", kind: "SERVER", local: "web", ago: time.Minute},
		seedSpan{trace: "1", id: "b", parent: "a", kind: "CLIENT", local: "web", remote: "api-lb", ago: time.Minute})
	link()
	if got, want := deps(), []zipkin.DependencyLink{{Parent: "web", Child: "api-lb", CallCount: 1}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("before the server half: %+v", got)
	}
	// The server half and a failing database call arrive later: the trace
	// is re-linked and replaces its earlier contribution.
	write(seedSpan{trace: "1", id: "b", parent: "a", kind: "SERVER", local: "api", ago: time.Minute, shared: true},
		seedSpan{trace: "1", id: "c", parent: "b", kind: "CLIENT", local: "api", remote: "postgres", ago: time.Minute, tags: map[string]string{"error": "deadlock"}})
	// A second trace through a broker, and one outside the window.
	write(seedSpan{trace: "2", id: "a", kind: "PRODUCER", local: "api", remote: "rabbitmq", ago: 2 * time.Minute},
		seedSpan{trace: "2", id: "b", parent: "a", kind: "CONSUMER", local: "worker", remote: "rabbitmq", ago: 2 * time.Minute},
		seedSpan{trace: "3", id: "a", kind: "CLIENT", local: "old", remote: "gone", ago: 48 * time.Hour})
	link()
	want := []zipkin.DependencyLink{
		{Parent: "api", Child: "postgres", CallCount: 1, ErrorCount: 1},
		{Parent: "api", Child: "rabbitmq", CallCount: 1},
		{Parent: "rabbitmq", Child: "worker", CallCount: 1},
		{Parent: "web", Child: "api", CallCount: 1},
	}
	if got := deps(); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	// Redelivering a batch stores nothing and changes no count.
	write(seedSpan{trace: "2", id: "a", kind: "PRODUCER", local: "api", remote: "rabbitmq", ago: 2 * time.Minute})
	link()
	if got := deps(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after redelivery: %+v", got)
	}
	if n := count(t, dsn, `SELECT count(*) FROM link_pending`); n != 0 {
		t.Fatalf("%d traces still pending", n)
	}
	if got, _ := st.Dependencies(ctx(t), end.Add(-47*time.Hour), 2*time.Hour); len(got) != 1 || got[0].Parent != "old" {
		t.Fatalf("window 2 days ago: %+v", got)
	}
}

// TestValueKeys: a key=value term's folded key (migration 00015) finds
// rows written before it, with whole-term keys, and rows written since;
// two values of one tag sharing a folded key are told apart by the exact
// check; a tag key holding '=' still finds itself. Not parallel: it
// switches the writer's key form for the package.
func TestValueKeys(t *testing.T) {
	st, _ := openStore(t, storage.Config{})
	end := time.Now().Truncate(time.Millisecond)
	// Two values of "url" with one folded key (found by brute force: about
	// 16,384 tries).
	var same [2]string
	seen := map[int32]string{}
	for i := 0; same[1] == ""; i++ {
		v := fmt.Sprintf("/items/%d", i)
		k := storage.TermKey("url=" + v)
		if o, ok := seen[k]; ok {
			same = [2]string{o, v}
		}
		seen[k] = v
	}
	if storage.TermKey("url=/x")>>14 != storage.TermKey("url=/y")>>14 {
		t.Fatal("a tag's values must share the key's high bits")
	}
	trace := func(n uint64, tags map[string]string) zipkin.Span {
		return zipkin.Span{TraceID: zipkin.TraceID{Low: n}, ID: zipkin.SpanID(n), Name: "get", Timestamp: end.Add(-time.Minute).UnixMicro(),
			Duration: 10, LocalEndpoint: &zipkin.Endpoint{ServiceName: "web"}, Tags: tags}
	}
	undo := storage.FoldValues(false)
	err := st.WriteSpans(ctx(t), []zipkin.Span{trace(1, map[string]string{"url": "/before", "a=b": "c"})})
	undo()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.WriteSpans(ctx(t), []zipkin.Span{trace(2, map[string]string{"url": "/since", "a=b": "c"}),
		trace(3, map[string]string{"url": same[0]}), trace(4, map[string]string{"url": same[1]})}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		term string
		want []string
	}{
		{"url=/before", []string{"0000000000000001"}},
		{"url=/since", []string{"0000000000000002"}},
		{"a=b=c", []string{"0000000000000001", "0000000000000002"}},
		{"url=" + same[0], []string{"0000000000000003"}},
		{"url=" + same[1], []string{"0000000000000004"}},
		{"url=/nowhere", []string{}},
	} {
		got, err := st.FindTraces(ctx(t), zipkin.QueryRequest{EndTs: end, Lookback: time.Hour, Limit: 10, AnnotationQuery: []string{c.term}}, true)
		if err != nil {
			t.Fatal(err)
		}
		ids := idsOf(got)
		slices.Sort(ids)
		if !reflect.DeepEqual(ids, c.want) {
			t.Errorf("%s: got %v, want %v", c.term, ids, c.want)
		}
	}
}
