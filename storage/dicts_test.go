package storage_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/zipq/zipq/storage"
	"github.com/zipq/zipq/zipkin"
)

// otelLikeSpans are spans unlike the benchmark generator the shipped
// dictionary learned from: OpenTelemetry-demo-like resource attributes,
// long URLs and SQL, in traces of 3–12 spans.
func otelLikeSpans(r *rand.Rand, traces int, now time.Time) []zipkin.Span {
	services := []string{"checkoutservice", "productcatalogservice", "currencyservice", "recommendationservice", "frontend-proxy"}
	var out []zipkin.Span
	for range traces {
		id := zipkin.TraceID{High: r.Uint64(), Low: r.Uint64()}
		start := now.Add(-time.Duration(r.Int64N(int64(10 * time.Minute))))
		for s := range 3 + r.IntN(10) {
			svc := services[r.IntN(len(services))]
			product := fmt.Sprintf("%X", r.Uint64()&0xffffffffff)
			sp := zipkin.Span{TraceID: id, ID: zipkin.SpanID(r.Uint64() | 1), Kind: zipkin.KindServer,
				Name:      "oteldemo." + strings.ToUpper(svc[:1]) + svc[1:] + "/GetProduct",
				Timestamp: start.Add(time.Duration(s) * time.Millisecond).UnixMicro(), Duration: 50 + r.Int64N(90_000),
				LocalEndpoint: &zipkin.Endpoint{ServiceName: svc, IPv4: netip.AddrFrom4([4]byte{10, 42, byte(r.IntN(8)), byte(r.IntN(250))})},
				Tags: map[string]string{
					"k8s.pod.name": svc + "-" + fmt.Sprintf("%x", r.Uint32()), "k8s.namespace.name": "otel-demo",
					"k8s.node.name": fmt.Sprintf("gke-demo-pool-%x", r.Uint32()%8), "service.version": "2.0.2",
					"telemetry.sdk.language": "go", "telemetry.sdk.name": "opentelemetry", "telemetry.sdk.version": "1.35.0",
					"rpc.system": "grpc", "rpc.service": "oteldemo.ProductCatalogService", "rpc.method": "GetProduct",
					"app.product.id": product, "rpc.grpc.status_code": "0",
					"url.full":     "https://shop.example.com/api/products/" + product + "?currencyCode=EUR&sessionId=" + fmt.Sprintf("%x", r.Uint64()),
					"db.statement": "SELECT id, name, description, picture, price_usd_currency_code, price_usd_units, price_usd_nanos, categories FROM products WHERE id = '" + product + "'",
				}}
			out = append(out, sp)
		}
	}
	return out
}

// TestLearnedDictionary: once enough of a deployment's segments are
// stored, maintenance learns a dictionary from them that compresses
// held-out segments better; after its grace it writes new segments, which
// are smaller; every segment stays readable, in this process and in one
// that learns the dictionary from the database.
func TestLearnedDictionary(t *testing.T) {
	t.Parallel()
	st, dsn := openStore(t, storage.Config{})
	now := time.Now().UTC()
	if err := st.Maintain(ctx(t), now); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(12, 13))
	write := func() (spans []zipkin.Span, bytesPerSpan float64) {
		spans = otelLikeSpans(r, 1200, now)
		before := count(t, dsn, `SELECT coalesce(sum(length(data)), 0)::int FROM segments`)
		if err := st.WriteSpans(ctx(t), spans); err != nil {
			t.Fatal(err)
		}
		return spans, float64(count(t, dsn, `SELECT sum(length(data))::int FROM segments`)-before) / float64(len(spans))
	}
	first, shipped := write()
	if err := st.Maintain(ctx(t), now); err != nil {
		t.Fatal(err)
	}
	if n := count(t, dsn, `SELECT count(*) FROM zstd_dicts WHERE id = 2 AND bytes_after < 0.95 * bytes_before`); n != 1 {
		t.Fatalf("%d dictionaries learned that beat the shipped one", n)
	}
	// Within its grace, nothing is written with it yet.
	if _, _ = write(); count(t, dsn, `SELECT count(*) FROM segments WHERE dict <> 1`) != 0 {
		t.Fatal("a dictionary was written with before every process could have loaded it")
	}
	execSQL(t, dsn, `UPDATE zstd_dicts SET trained_at = trained_at - interval '11 minutes'`)
	if err := st.LoadDicts(ctx(t)); err != nil {
		t.Fatal(err)
	}
	last, learned := write()
	if count(t, dsn, `SELECT count(*) FROM segments WHERE dict = 2`) == 0 || learned > 0.95*shipped {
		t.Fatalf("%.1f bytes a span with the learned dictionary, %.1f with the shipped one", learned, shipped)
	}
	t.Logf("%.1f bytes a span of segments with the learned dictionary, %.1f with the shipped one", learned, shipped)
	if u, err := st.Usage(ctx(t)); err != nil || u.Dictionary != 2 || u.DictionaryGain < 0.05 {
		t.Fatalf("usage %+v, %v: want dictionary 2 and its gain", u, err)
	}
	// A process that never saw the dictionary loads it from the database.
	storage.ForgetDicts()
	other, err := storage.Open(ctx(t), storage.Config{URL: dsn}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.LoadDicts(ctx(t)); err != nil {
		t.Fatal(err)
	}
	for _, sp := range []zipkin.Span{first[0], last[0]} {
		got, err := oneTrace(other, ctx(t), sp.TraceID, true)
		if err != nil || len(got) == 0 {
			t.Fatalf("trace %s: %d spans, %v", sp.TraceID, len(got), err)
		}
	}
	// A day later, a dictionary that gains too little is not kept.
	if err := st.Maintain(ctx(t), now.Add(25*time.Hour)); err != nil {
		t.Fatal(err)
	}
}
