package zipkin

import (
	"reflect"
	"testing"
)

func TestLink(t *testing.T) {
	ep := func(s string) *Endpoint { return &Endpoint{ServiceName: s} }
	tid := TraceID{Low: 1}
	errTag := map[string]string{"error": "boom"}
	sp := func(id, parent SpanID, kind Kind, local, remote string) Span {
		s := Span{TraceID: tid, ID: id, ParentID: parent, Kind: kind}
		if local != "" {
			s.LocalEndpoint = ep(local)
		}
		if remote != "" {
			s.RemoteEndpoint = ep(remote)
		}
		return s
	}
	withErr := func(s Span) Span { s.Tags = errTag; return s }
	shared := func(s Span) Span { s.Shared = true; return s }
	link := func(p, c string, calls, errs int64) DependencyLink {
		return DependencyLink{Parent: p, Child: c, CallCount: calls, ErrorCount: errs}
	}
	cases := []struct {
		name  string
		spans []Span
		want  []DependencyLink
	}{
		{"root server without caller links nothing",
			[]Span{sp(1, 0, KindServer, "web", "")}, []DependencyLink{}},
		{"root server with an uninstrumented caller",
			[]Span{sp(1, 0, KindServer, "web", "browser")}, []DependencyLink{link("browser", "web", 1, 0)}},
		{"client and shared server: one call",
			[]Span{sp(1, 0, KindServer, "web", ""), sp(2, 1, KindClient, "web", "api"), shared(sp(2, 1, KindServer, "api", "web"))},
			[]DependencyLink{link("web", "api", 1, 0)}},
		{"server missing its shared flag is still one call",
			[]Span{sp(1, 0, KindServer, "web", ""), sp(2, 1, KindClient, "web", ""), sp(2, 0, KindServer, "api", "")},
			[]DependencyLink{link("web", "api", 1, 0)}},
		{"server name preferred over the client's remote name",
			[]Span{sp(1, 0, KindServer, "web", ""), sp(2, 1, KindClient, "web", "api-lb"), sp(3, 2, KindServer, "api", "")},
			[]DependencyLink{link("web", "api", 1, 0)}},
		{"leaf client to an uninstrumented database, with error",
			[]Span{sp(1, 0, KindServer, "api", ""), withErr(sp(2, 1, KindClient, "api", "postgres"))},
			[]DependencyLink{link("api", "postgres", 1, 1)}},
		{"local spans between server and client",
			[]Span{sp(1, 0, KindServer, "web", ""), sp(2, 1, KindUnspecified, "web", ""), sp(3, 2, KindClient, "web", "api"), shared(sp(3, 2, KindServer, "api", ""))},
			[]DependencyLink{link("web", "api", 1, 0)}},
		{"client error counts on the split server's link",
			[]Span{sp(1, 0, KindServer, "web", ""), withErr(sp(2, 1, KindClient, "web", "")), sp(3, 2, KindServer, "api", "")},
			[]DependencyLink{link("web", "api", 1, 1)}},
		{"server error",
			[]Span{sp(1, 0, KindServer, "web", ""), sp(2, 1, KindClient, "web", ""), withErr(shared(sp(2, 1, KindServer, "api", "")))},
			[]DependencyLink{link("web", "api", 1, 1)}},
		{"messaging producer and consumer through a broker",
			[]Span{sp(1, 0, KindProducer, "orders", "kafka"), sp(2, 1, KindConsumer, "billing", "kafka")},
			[]DependencyLink{link("kafka", "billing", 1, 0), link("orders", "kafka", 1, 0)}},
		{"messaging span without the broker name is skipped",
			[]Span{sp(1, 0, KindProducer, "orders", ""), sp(2, 1, KindConsumer, "billing", "")},
			[]DependencyLink{}},
		{"unspecified kind with both sides is a client",
			[]Span{sp(1, 0, KindServer, "web", ""), sp(2, 1, KindUnspecified, "web", "redis")},
			[]DependencyLink{link("web", "redis", 1, 0)}},
		{"a span reported in two pieces counts once",
			[]Span{sp(1, 0, KindServer, "web", ""), sp(2, 1, KindClient, "web", "cache"), sp(2, 1, KindClient, "web", "")},
			[]DependencyLink{link("web", "cache", 1, 0)}},
		{"headless trace: missing root, spans still link",
			[]Span{sp(2, 9, KindClient, "web", ""), shared(sp(2, 9, KindServer, "api", "")), sp(3, 2, KindClient, "api", "mysql")},
			[]DependencyLink{link("api", "mysql", 1, 0), link("web", "api", 1, 0)}},
		{"client named with the wrong local service backfills the hop",
			[]Span{sp(1, 0, KindServer, "web", ""), sp(2, 1, KindClient, "wrong", "db")},
			[]DependencyLink{link("web", "wrong", 1, 0), link("wrong", "db", 1, 0)}},
		{"repeated calls add up",
			[]Span{sp(1, 0, KindServer, "web", ""), sp(2, 1, KindClient, "web", "db"), withErr(sp(3, 1, KindClient, "web", "db")), sp(4, 1, KindClient, "web", "db")},
			[]DependencyLink{link("web", "db", 3, 1)}},
		{"cycle in hostile parent ids terminates",
			[]Span{sp(1, 2, KindServer, "a", "b"), sp(2, 1, KindServer, "b", "a")},
			[]DependencyLink{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Link(tc.spans)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Link =\n%+v\nwant\n%+v", got, tc.want)
			}
			// Order of arrival must not matter.
			rev := make([]Span, len(tc.spans))
			for i, s := range tc.spans {
				rev[len(rev)-1-i] = s
			}
			if got := Link(rev); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Link(reversed) =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestParseAnnotationQuery(t *testing.T) {
	cases := map[string][]string{
		"":                                nil,
		"error":                           {"error"},
		"error and http.method=GET":       {"error", "http.method=GET"},
		"  http.path = /a b  AND retried": {"http.path=/a b", "retried"},
		"and":                             nil,
		"sand=land":                       {"sand=land"},
	}
	for in, want := range cases {
		got, err := ParseAnnotationQuery(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseAnnotationQuery(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseAnnotationQuery("=x"); err == nil {
		t.Error("a term without a key must be refused")
	}
}

func TestSampled(t *testing.T) {
	kept := 0
	for i := uint64(0); i < 10000; i++ {
		id := TraceID{Low: i * 0x9E3779B97F4A7C15}
		if Sampled(id, false, 0.25) {
			kept++
		}
		if Sampled(id, false, 0.25) != Sampled(TraceID{High: 7, Low: id.Low}, false, 0.25) {
			t.Fatal("the decision must depend on the lower 64 bits only")
		}
	}
	if kept < 2200 || kept > 2800 {
		t.Errorf("rate 0.25 kept %d of 10000", kept)
	}
	if !Sampled(TraceID{Low: 1 << 62}, true, 0) || Sampled(TraceID{Low: 5}, false, 0) || !Sampled(TraceID{Low: 1 << 63}, false, 1) {
		t.Error("debug, rate 0 and rate 1 edges")
	}
}
