package ingest

import (
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/zipkin/zipkinv2"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/zipq/zipq/internal/otlptest"
	"github.com/zipq/zipq/zipkin"
)

// otlpRequest is a two-service trace with an event, an error, attributes
// of every type and a link, plus one span with an all-zero span ID.
func otlpRequest(t testing.TB) ptraceotlp.ExportRequest {
	t.Helper()
	td := ptrace.NewTraces()
	now := time.Unix(1_700_000_000, 0)
	tid := pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	for i, svc := range []string{"frontend", "backend"} {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", svc)
		rs.Resource().Attributes().PutStr("host.name", "h1")
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("zipq-test")
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(tid)
		sp.SetSpanID(pcommon.SpanID{0, 0, 0, 0, 0, 0, 0, byte(i + 1)})
		if i == 1 {
			sp.SetParentSpanID(pcommon.SpanID{0, 0, 0, 0, 0, 0, 0, 1})
			sp.SetKind(ptrace.SpanKindServer)
			sp.Status().SetCode(ptrace.StatusCodeError)
			sp.Status().SetMessage("boom")
		} else {
			sp.SetKind(ptrace.SpanKindClient)
			sp.Attributes().PutStr("peer.service", "backend")
		}
		sp.SetName("GET /checkout")
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(25 * time.Millisecond)))
		a := sp.Attributes()
		a.PutStr("s", "v")
		a.PutInt("i", 42)
		a.PutDouble("d", 1.5)
		a.PutBool("b", true)
		a.PutEmptySlice("arr").AppendEmpty().SetStr("x")
		a.PutEmptyMap("m").PutStr("k", "v")
		a.PutEmptyBytes("raw").FromRaw([]byte{1, 2})
		ev := sp.Events().AppendEmpty()
		ev.SetName("cache miss")
		ev.SetTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
		l := sp.Links().AppendEmpty()
		l.SetTraceID(pcommon.TraceID{9})
		l.SetSpanID(pcommon.SpanID{9})
		bad := ss.Spans().AppendEmpty()
		bad.SetTraceID(tid)
		bad.SetName("no span id")
	}
	return ptraceotlp.NewExportRequestFromTraces(td)
}

func TestDecodeOTLPAsTheCollectorTranslates(t *testing.T) {
	t.Parallel()
	req := otlpRequest(t)
	pb, err := req.MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	js, err := req.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	fromProto, rejected, err := DefaultLimits().DecodeOTLP(pb, OTLPProto)
	if err != nil || rejected != 2 || len(fromProto) != 2 {
		t.Fatalf("proto: %d spans, %d rejected, %v", len(fromProto), rejected, err)
	}
	fromJSON, _, err := DefaultLimits().DecodeOTLP(js, OTLPJSON)
	if err != nil || string(zipkin.EncodeJSON(fromJSON)) != string(zipkin.EncodeJSON(fromProto)) {
		t.Fatalf("JSON and proto differ: %v\n%s\n%s", err, zipkin.EncodeJSON(fromJSON), zipkin.EncodeJSON(fromProto))
	}
	client, server := fromProto[0], fromProto[1]
	if client.LocalServiceName() != "frontend" || client.Kind != zipkin.KindClient || client.RemoteServiceName() != "backend" ||
		client.TraceID.String() != "0102030405060708090a0b0c0d0e0f10" || client.Duration != 25000 ||
		client.Timestamp != 1_700_000_000_000_000 || client.Name != "get /checkout" {
		t.Fatalf("client span: %+v", client)
	}
	if server.ParentID != client.ID || server.Kind != zipkin.KindServer || server.Tags["error"] == "" || server.Tags["otel.status_code"] != "STATUS_CODE_ERROR" || server.Tags["otel.status_description"] != "boom" {
		t.Fatalf("server span: %+v", server)
	}
	for k, want := range map[string]string{"s": "v", "i": "42", "d": "1.5", "b": "true", "arr": `["x"]`, "m": `{"k":"v"}`,
		"otel.library.name": "zipq-test", "host.name": "h1"} {
		if got := client.Tags[k]; got != want {
			t.Errorf("tag %s = %q, want %q", k, got, want)
		}
	}
	if !strings.HasPrefix(client.Tags["otlp.link.0"], "09000000000000000000000000000000|0900000000000000|") {
		t.Errorf("link tag %q", client.Tags["otlp.link.0"])
	}
	if len(client.Annotations) != 1 || client.Annotations[0].Value != "cache miss" {
		t.Errorf("annotations %+v", client.Annotations)
	}
}

func TestDecodeOTLPRefusesWhatIsNotOTLP(t *testing.T) {
	t.Parallel()
	pb, _ := otlpRequest(t).MarshalProto()
	for name, c := range map[string]struct {
		body []byte
		f    OTLPFormat
	}{
		"truncated":      {pb[:len(pb)/2], OTLPProto},
		"zipkin json":    {[]byte(`[{"traceId":"1","id":"1"}]`), OTLPProto},
		"garbage json":   {[]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}`), OTLPJSON},
		"short trace id": {[]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102","spanId":"0102030405060708"}]}]}]}`), OTLPJSON},
		"not json":       {[]byte(`{"resourceSpans":`), OTLPJSON},
	} {
		if _, _, err := DefaultLimits().DecodeOTLP(c.body, c.f); zipkin.ReasonOf(err) != zipkin.ReasonMalformedOTLP {
			t.Errorf("%s: %v, want %s", name, err, zipkin.ReasonMalformedOTLP)
		}
	}
}

// FuzzDecodeOTLP: whatever the bytes, decoding never panics, and what it
// accepts is exactly what Zipkin JSON v2 round-trips: every span has
// non-zero IDs, and encoding the spans as Zipkin JSON and decoding them
// again gives the same spans; with rejected spans counted, no span of the
// request is lost silently.
func FuzzDecodeOTLP(f *testing.F) {
	req := otlpRequest(f)
	pb, _ := req.MarshalProto()
	js, _ := req.MarshalJSON()
	f.Add(pb, false)
	f.Add(js, true)
	f.Add([]byte(`{}`), true)
	f.Fuzz(func(t *testing.T, body []byte, isJSON bool) {
		format := OTLPProto
		if isJSON {
			format = OTLPJSON
		}
		spans, rejected, err := DefaultLimits().DecodeOTLP(body, format)
		if err != nil {
			if zipkin.ReasonOf(err) == zipkin.ReasonTooLarge { // expands past the limits: refused whole
				return
			}
			if zipkin.ReasonOf(err) != zipkin.ReasonMalformedOTLP {
				t.Fatalf("error without the OTLP reason: %v", err)
			}
			if _, werr := decodeOTLPViaJSON(body, format); werr == nil {
				t.Fatalf("refused (%v) what the exporter's JSON path accepts", err)
			}
			return
		}
		r := ptraceotlp.NewExportRequest()
		if format == OTLPJSON {
			err = r.UnmarshalJSON(body)
		} else {
			err = r.UnmarshalProto(body)
		}
		if err != nil || len(spans)+rejected != r.Traces().SpanCount() {
			t.Fatalf("%d spans + %d rejected of %d (%v)", len(spans), rejected, r.Traces().SpanCount(), err)
		}
		for _, s := range spans {
			if s.TraceID.IsZero() || s.ID == 0 {
				t.Fatalf("span with a zero id: %+v", s)
			}
		}
		// The same spans as the Collector's Zipkin exporter's JSON, read
		// by DecodeJSON.
		if want, werr := decodeOTLPViaJSON(body, format); werr != nil {
			t.Fatalf("the exporter's JSON path refuses it: %v", werr)
		} else if string(zipkin.EncodeJSON(want)) != string(zipkin.EncodeJSON(spans)) {
			t.Fatalf("differs from the exporter's JSON path:\n%s\n%s", zipkin.EncodeJSON(spans), zipkin.EncodeJSON(want))
		}
		again, err := zipkin.DecodeJSON(zipkin.EncodeJSON(spans))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		a, _ := json.Marshal(zipkin.EncodeJSON(again))
		b, _ := json.Marshal(zipkin.EncodeJSON(spans))
		if string(a) != string(b) {
			t.Fatalf("not stable through Zipkin JSON:\n%s\n%s", a, b)
		}
		// What the edge publishes (proto3) is what the collector takes:
		// an export answered 200 is stored.
		if len(spans) > 0 {
			pb, err := zipkin.EncodeProto(spans)
			if err != nil {
				t.Fatalf("encode for the queue: %v", err)
			}
			queued, _, err := DefaultLimits().DecodeMessage(pb, "application/x-protobuf", "")
			if err != nil || string(zipkin.EncodeJSON(queued)) != string(zipkin.EncodeJSON(spans)) {
				t.Fatalf("the collector reads the published list differently (%v)", err)
			}
		}
	})
}

// decodeOTLPViaJSON is the path DecodeOTLP shortcuts: the Collector's
// Zipkin exporter's JSON, read by DecodeJSON.
func decodeOTLPViaJSON(body []byte, f OTLPFormat) ([]zipkin.Span, error) {
	req := ptraceotlp.NewExportRequest()
	var err error
	if f == OTLPJSON {
		err = req.UnmarshalJSON(body)
	} else {
		err = req.UnmarshalProto(body)
	}
	if err != nil {
		return nil, err
	}
	td := req.Traces()
	dropInvalid(td)
	if td.SpanCount() == 0 {
		return nil, nil
	}
	js, err := zipkinv2.NewJSONTracesMarshaler().MarshalTraces(td)
	if err != nil {
		return nil, err
	}
	return zipkin.DecodeJSON(js)
}

// TestImpossibleTimesAreRejectedAlone: a span whose times are not a moment
// (end before start, a start past 2^63 ns, an event at 0) is counted in
// OTLP's partial success, and its valid neighbours are stored: one such
// span no longer refuses the export. An unset end (zero) is no duration,
// not an impossible one.
func TestImpossibleTimesAreRejectedAlone(t *testing.T) {
	t.Parallel()
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	now := pcommon.NewTimestampFromTime(time.Unix(1_700_000_000, 0))
	add := func(id byte, start, end pcommon.Timestamp) ptrace.Span {
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{1})
		sp.SetSpanID(pcommon.SpanID{id})
		sp.SetName("s")
		sp.SetStartTimestamp(start)
		sp.SetEndTimestamp(end)
		return sp
	}
	for i := range 9 {
		add(byte(i+1), now, now+1000)
	}
	add(20, now, now-1)                      // end before start
	add(21, now, 0)                          // unfinished: kept, no duration
	add(22, pcommon.Timestamp(1<<63), 1<<63) // past 2^63 ns
	add(23, now, now+1).Events().AppendEmpty().SetTimestamp(0)
	pb, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	spans, rejected, err := DefaultLimits().DecodeOTLP(pb, OTLPProto)
	if err != nil || len(spans) != 10 || rejected != 3 {
		t.Fatalf("%d spans, %d rejected, %v: want the 10 valid ones and 3 rejected", len(spans), rejected, err)
	}
}

// TestAttributeAmplificationIsRefusedBeforeTranslation: 1,000 spans ×
// 1,000 resource attributes (a 69 KB-class request) would be a million
// tags and took 280 MB; it is refused as too large before anything is
// translated, allocating a small multiple of the body, and as a queue
// message it is parked too_large. Under the limits it is stored whole.
func TestAttributeAmplificationIsRefusedBeforeTranslation(t *testing.T) {
	body := otlptest.Amplified(t, 1000, 1000)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, _, err := DefaultLimits().DecodeOTLP(body, OTLPProto)
	runtime.ReadMemStats(&after)
	if zipkin.ReasonOf(err) != zipkin.ReasonTooLarge || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("%d-byte request of a million tags: %v, want too large", len(body), err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	if alloc > 40*uint64(len(body))+(4<<20) {
		t.Fatalf("refusing it allocated %d MB for a %d KB body", alloc>>20, len(body)>>10)
	}
	t.Logf("1,000 spans × 1,000 resource attributes: %d-byte body, refused having allocated %d bytes", len(body), alloc)
	if _, _, err := DefaultLimits().DecodeMessage(body, ContentTypeOTLPProto, ""); zipkin.ReasonOf(err) != zipkin.ReasonTooLarge {
		t.Fatalf("as a queue message: %v, want parked too_large", err)
	}
	spans, _, err := DefaultLimits().DecodeOTLP(otlptest.Amplified(t, 100, 100), OTLPProto)
	if err != nil || len(spans) != 100 || len(spans[0].Tags) < 100 {
		t.Fatalf("100 × 100: %d spans, %v", len(spans), err)
	}
}
