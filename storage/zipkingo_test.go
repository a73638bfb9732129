package storage_test

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"

	zipkingo "github.com/openzipkin/zipkin-go"
	zipkinhttp "github.com/openzipkin/zipkin-go/middleware/http"
	"github.com/openzipkin/zipkin-go/model"
	"github.com/openzipkin/zipkin-go/reporter/recorder"

	"github.com/zipq/zipq/zipkin"
)

// zipkinGoSpans is at least n spans (whole traces, up to 10,000 more) as
// zipkin-go's HTTP middleware and tracer report them (names, kinds,
// endpoints, tags, shared client and server span IDs are the library's,
// not ours): five services calling each
// other in process — frontend → api-gateway → users and orders → inventory
// — with a local span for a cache read and a database query, a random
// user, order or SKU in each path, and 3 % of inventory's answers a 500.
// Durations are the in-process calls' own, microseconds: shorter than a
// network's. Read back through zipq's own JSON decoder, as the HTTP
// reporter's output would be.
func zipkinGoSpans(tb testing.TB, r *rand.Rand, n int) []zipkin.Span {
	tb.Helper()
	rec := recorder.NewReporter()
	defer rec.Close()
	tracers := map[string]*zipkingo.Tracer{}
	handlers := map[string]http.Handler{}
	route := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		w := httptest.NewRecorder()
		handlers[req.URL.Host].ServeHTTP(w, req)
		return w.Result(), nil
	})
	clients := map[string]*zipkinhttp.Client{}
	for i, name := range []string{"frontend", "api-gateway", "users", "orders", "inventory"} {
		ep, err := zipkingo.NewEndpoint(name, fmt.Sprintf("10.0.1.%d:%d", i+1, 8080+i))
		if err != nil {
			tb.Fatal(err)
		}
		if tracers[name], err = zipkingo.NewTracer(rec, zipkingo.WithLocalEndpoint(ep)); err != nil {
			tb.Fatal(err)
		}
		if clients[name], err = zipkinhttp.NewClient(tracers[name], zipkinhttp.WithClient(&http.Client{Transport: route})); err != nil {
			tb.Fatal(err)
		}
	}
	call := func(from *http.Request, service, path string) int {
		req, err := http.NewRequestWithContext(from.Context(), http.MethodGet, "http://"+service+path, nil)
		if err != nil {
			tb.Fatal(err)
		}
		res, err := clients[from.Host].DoWithAppSpan(req, "GET "+path[:min(len(path), 12)])
		if err != nil {
			tb.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		return res.StatusCode
	}
	local := func(req *http.Request, name string, tags map[string]string) {
		sp := tracers[req.Host].StartSpan(name, zipkingo.Parent(zipkingo.SpanFromContext(req.Context()).Context()))
		for k, v := range tags {
			sp.Tag(k, v)
		}
		sp.Finish()
	}
	serve := func(name string, h http.HandlerFunc) {
		handlers[name] = zipkinhttp.NewServerMiddleware(tracers[name], zipkinhttp.SpanName("http "+name))(h)
	}
	serve("inventory", func(w http.ResponseWriter, req *http.Request) {
		local(req, "select", map[string]string{"sql.query": "SELECT qty, reserved FROM stock WHERE sku = $1 AND warehouse = $2",
			"db.instance": "inventory", "sku": req.URL.Query().Get("sku")})
		if r.IntN(100) < 3 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	serve("users", func(w http.ResponseWriter, req *http.Request) {
		local(req, "cache.get", map[string]string{"cache.key": "user:" + req.URL.Path[len("/api/users/"):], "cache.hit": fmt.Sprint(r.IntN(4) > 0)})
	})
	serve("orders", func(w http.ResponseWriter, req *http.Request) {
		w.WriteHeader(call(req, "inventory", fmt.Sprintf("/stock?sku=SKU-%05d", r.IntN(20_000))))
	})
	serve("api-gateway", func(w http.ResponseWriter, req *http.Request) {
		call(req, "users", fmt.Sprintf("/api/users/%d", r.IntN(1_000_000)))
		w.WriteHeader(call(req, "orders", fmt.Sprintf("/api/orders/ORD-%08x", r.Uint32())))
	})
	serve("frontend", func(w http.ResponseWriter, req *http.Request) {
		w.WriteHeader(call(req, "api-gateway", "/api/checkout"))
	})
	var spans []zipkin.Span
	var models []model.SpanModel
	for len(spans) < n {
		for len(models) < 10_000 { // a message's worth: the decoder refuses 100,000
			handlers["frontend"].ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "http://frontend/checkout", nil))
			models = append(models, rec.Flush()...)
		}
		body, err := json.Marshal(models)
		if err != nil {
			tb.Fatal(err)
		}
		decoded, _, err := zipkin.Decode(body)
		if err != nil {
			tb.Fatal(err)
		}
		spans, models = append(spans, decoded...), models[:0]
	}
	return spans
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestZipkinGoSpans: the generator gives what its comment says, so the
// density figures measured on it are of that shape.
func TestZipkinGoSpans(t *testing.T) {
	spans := zipkinGoSpans(t, rand.New(rand.NewPCG(1, 3)), 1000)
	services, kinds, failed := map[string]int{}, map[zipkin.Kind]int{}, 0
	traces := map[zipkin.TraceID]int{}
	for i := range spans {
		services[spans[i].LocalServiceName()]++
		kinds[spans[i].Kind]++
		traces[spans[i].TraceID]++
		if spans[i].Failed() {
			failed++
		}
	}
	if len(services) != 5 || kinds[zipkin.KindServer] == 0 || kinds[zipkin.KindClient] == 0 || kinds[zipkin.KindUnspecified] == 0 {
		t.Fatalf("services %v, kinds %v", services, kinds)
	}
	for id, n := range traces {
		if n != 15 {
			t.Fatalf("trace %s has %d spans, want 15 (5 servers; 4 calls, each an app span and its client span; 2 local)", id, n)
		}
	}
	if failed == 0 {
		t.Fatal("no failed span")
	}
}
