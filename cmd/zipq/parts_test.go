package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zipq/zipq/internal/testenv"
	"github.com/zipq/zipq/zipkin"
)

// TestSpanSentInPartsIsFoundWhole: a span reported in two parts (same trace
// and span ID), the first naming its service but not the span, the second
// the span's name, is found by serviceName and spanName together, as
// Zipkin merges the parts: both parts in one message, and each part
// through a different ingest path (AMQP, then HTTP), which lands them in
// different batches.
func TestSpanSentInPartsIsFoundWhole(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := startZipq(t, append(f.env, "ZIPQ_LINK_INTERVAL=200ms"), "serve")
	now := time.Now().UnixMicro()
	first := func(trace uint64) zipkin.Span {
		return zipkin.Span{TraceID: zipkin.TraceID{Low: trace}, ID: 7, Kind: zipkin.KindServer, Timestamp: now,
			LocalEndpoint: &zipkin.Endpoint{ServiceName: "parts-svc"}}
	}
	second := func(trace uint64) zipkin.Span {
		return zipkin.Span{TraceID: zipkin.TraceID{Low: trace}, ID: 7, Kind: zipkin.KindServer, Name: "late-name", Duration: 42,
			LocalEndpoint: &zipkin.Endpoint{ServiceName: "parts-svc"}}
	}
	publish := func(spans ...zipkin.Span) { publishRaw(t, f.queue, zipkin.EncodeJSON(spans)) }
	publish(first(0xa1), second(0xa1)) // one message
	publish(first(0xa2))               // AMQP, then HTTP
	postSpans(t, "http://"+p.addr, string(zipkin.EncodeJSON([]zipkin.Span{second(0xa2)})))

	q := url.Values{"serviceName": {"parts-svc"}, "spanName": {"late-name"}, "limit": {"10"},
		"endTs": {strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10)}, "lookback": {"3600000"}}
	var traces [][]struct {
		TraceID string `json:"traceId"`
	}
	testenv.Eventually(t, 30*time.Second, "both traces found by service and span name", func() bool {
		traces = nil
		return getJSON(t, "http://"+p.addr+"/api/v2/traces?"+q.Encode(), &traces) == http.StatusOK && len(traces) == 2
	})
	for _, tr := range traces {
		if id := tr[0].TraceID; id != "00000000000000a1" && id != "00000000000000a2" {
			t.Fatalf("unexpected trace %s", id)
		}
	}
}

// TestLongNamesAreCapped: a span POSTed with a 4 MiB service name (under
// the 5 MiB body limit) is stored with the name cut to zipkin.MaxNameBytes
// and tagged, counted in a metric, and /api/v2/services stays small — it
// was 51 MB after ten such posts, for the whole retention period.
func TestLongNamesAreCapped(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := startZipq(t, f.env, "serve")
	long := strings.Repeat("s", 4<<20)
	postSpans(t, "http://"+p.addr, string(zipkin.EncodeJSON([]zipkin.Span{{TraceID: zipkin.TraceID{Low: 0xb1}, ID: 1, Name: "op",
		Timestamp: time.Now().UnixMicro(), LocalEndpoint: &zipkin.Endpoint{ServiceName: long}}})))
	var services []string
	testenv.Eventually(t, 30*time.Second, "the span stored", func() bool {
		services = nil
		return getJSON(t, "http://"+p.addr+"/api/v2/services", &services) == http.StatusOK && len(services) == 1
	})
	if len(services[0]) != zipkin.MaxNameBytes || services[0] != long[:zipkin.MaxNameBytes] {
		t.Fatalf("service name of %d bytes, want the first %d", len(services[0]), zipkin.MaxNameBytes)
	}
	var raw json.RawMessage
	getJSON(t, "http://"+p.addr+"/api/v2/trace/00000000000000b1", &raw)
	trace, err := zipkin.DecodeJSON(raw)
	if err != nil || len(trace) != 1 || trace[0].Tags[zipkin.TruncatedTag] != "localEndpoint.serviceName" {
		t.Fatalf("stored span %+v: want it tagged %s", trace, zipkin.TruncatedTag)
	}
	if n := p.metric(t, "zipq_collector_spans_names_truncated_total"); n != 1 {
		t.Fatalf("zipq_collector_spans_names_truncated_total = %v, want 1", n)
	}
}
