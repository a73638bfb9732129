package zipkin

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A Brave-style two-span body: a client and server sharing a span ID.
const braveBody = `[
 {"traceId":"86154A4BA6E91385","parentId":"86154a4ba6e91385","id":"4d1e00c0db9010db","kind":"CLIENT",
  "name":"GET /Api","timestamp":1472470996199000,"duration":207000,
  "localEndpoint":{"serviceName":"Frontend","ipv4":"127.0.0.1","port":8080},
  "remoteEndpoint":{"serviceName":"backend","ipv6":"2001:db8::c001","port":9000},
  "annotations":[{"timestamp":1472470996403000,"value":"wr"},{"timestamp":1472470996238000,"value":"ws"},{"timestamp":1472470996238000,"value":"ws"}],
  "tags":{"http.path":"/api","clnt/finagle.version":"6.45.0","error":""},"debug":true,"unknown":{"x":[1,2]}},
 {"traceId":"00000000000000005af7183fb1d4cf5f","id":"4d1e00c0db9010db","kind":"SERVER","shared":true,
  "timestamp":1472470996250000,"duration":100000,"localEndpoint":{"serviceName":"backend","ipv4":"not-an-ip","port":0}}
]`

func TestDecodeJSONNormalises(t *testing.T) {
	spans, f, err := Decode([]byte(braveBody))
	if err != nil || f != FormatJSON {
		t.Fatalf("Decode: %v %v", f, err)
	}
	if len(spans) != 2 {
		t.Fatalf("got %d spans", len(spans))
	}
	s := spans[0]
	if got := s.TraceID.String(); got != "86154a4ba6e91385" {
		t.Errorf("trace id %q", got)
	}
	if s.ParentID != 0x86154a4ba6e91385 {
		t.Errorf("parent equal to the trace id must survive (only parent == id is dropped); got %v", s.ParentID)
	}
	if s.Name != "get /api" || s.LocalServiceName() != "frontend" || s.RemoteServiceName() != "backend" {
		t.Errorf("names not lower-cased: %q %q %q", s.Name, s.LocalServiceName(), s.RemoteServiceName())
	}
	if s.LocalEndpoint.IPv4 != netip.MustParseAddr("127.0.0.1") || s.RemoteEndpoint.IPv6 != netip.MustParseAddr("2001:db8::c001") {
		t.Errorf("endpoints %+v %+v", s.LocalEndpoint, s.RemoteEndpoint)
	}
	want := []Annotation{{1472470996238000, "ws"}, {1472470996403000, "wr"}}
	if !reflect.DeepEqual(s.Annotations, want) {
		t.Errorf("annotations %v, want sorted and de-duplicated %v", s.Annotations, want)
	}
	if !s.Debug || s.Kind != KindClient || !s.IsError() || s.StartTime() != 1472470996199000 {
		t.Errorf("flags %+v", s)
	}
	s2 := spans[1]
	if s2.TraceID.High != 0 || s2.TraceID.String() != "5af7183fb1d4cf5f" {
		t.Errorf("32-char id with zero high half must equal the 64-bit id, got %s", s2.TraceID)
	}
	if s2.LocalEndpoint.IPv4.IsValid() || s2.LocalEndpoint.Port != 0 || !s2.Shared {
		t.Errorf("bad ip must be dropped, zero port absent: %+v", s2.LocalEndpoint)
	}
}

func TestParentEqualToIDIsDropped(t *testing.T) {
	spans, _, err := Decode([]byte(`[{"traceId":"1","id":"2","parentId":"0002"}]`))
	if err != nil {
		t.Fatal(err)
	}
	if spans[0].ParentID != 0 || spans[0].TraceID.String() != "0000000000000001" {
		t.Errorf("%+v", spans[0])
	}
}

func TestRejections(t *testing.T) {
	cases := []struct {
		name string
		body string
		want Reason
	}{
		{"empty", "", ReasonEmpty},
		{"blank", "  \n ", ReasonEmpty},
		{"object not list", `{"traceId":"1","id":"1"}`, ReasonUnknownFormat},
		{"garbage", "hello", ReasonUnknownFormat},
		{"thrift", "\x0c\x00\x00\x00\x01", ReasonUnsupported},
		{"json v1", `[{"traceId":"1","id":"1","binaryAnnotations":[]}]`, ReasonUnsupported},
		{"json v1 after a v2 span", `[{"traceId":"1","id":"2"}, {"traceId":"1","id":"1", "binaryAnnotations" :[]}]`, ReasonUnsupported},
		{"truncated json", `[{"traceId":"1"`, ReasonMalformedJSON},
		{"trailing garbage", `[]x`, ReasonMalformedJSON},
		{"numeric trace id", `[{"traceId":12345,"id":"1"}]`, ReasonWrongType},
		{"string timestamp", `[{"traceId":"1","id":"1","timestamp":"now"}]`, ReasonWrongType},
		{"float timestamp", `[{"traceId":"1","id":"1","timestamp":1.5}]`, ReasonWrongType},
		{"numeric tag", `[{"traceId":"1","id":"1","tags":{"a":1}}]`, ReasonWrongType},
		{"null list", `null`, ReasonUnknownFormat},
		{"missing trace id", `[{"id":"1"}]`, ReasonMissingTraceID},
		{"bad hex trace", `[{"traceId":"xyz","id":"1"}]`, ReasonInvalidTraceID},
		{"long trace", `[{"traceId":"` + strings.Repeat("a", 33) + `","id":"1"}]`, ReasonInvalidTraceID},
		{"zero trace", `[{"traceId":"0000","id":"1"}]`, ReasonInvalidTraceID},
		{"missing id", `[{"traceId":"1"}]`, ReasonMissingSpanID},
		{"bad id", `[{"traceId":"1","id":"0x12"}]`, ReasonInvalidSpanID},
		{"long id", `[{"traceId":"1","id":"11111111111111111"}]`, ReasonInvalidSpanID},
		{"bad parent", `[{"traceId":"1","id":"1","parentId":"g"}]`, ReasonInvalidSpanID},
		{"bad kind", `[{"traceId":"1","id":"1","kind":"SIDEWAYS"}]`, ReasonInvalidField},
		{"negative duration", `[{"traceId":"1","id":"1","duration":-1}]`, ReasonInvalidField},
		{"big port", `[{"traceId":"1","id":"1","localEndpoint":{"port":70000}}]`, ReasonInvalidField},
		{"second span bad", `[{"traceId":"1","id":"1"},{"traceId":"1"}]`, ReasonMissingSpanID},
		{"proto garbage", "\x0a\xff\xff", ReasonMalformedProto},
		{"proto no trace", "\x0a\x0a\x1a\x08\x00\x00\x00\x00\x00\x00\x00\x01", ReasonMissingTraceID},
		{"proto short trace", "\x0a\x0e\x0a\x02\x00\x01\x1a\x08\x00\x00\x00\x00\x00\x00\x00\x01", ReasonInvalidTraceID},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spans, _, err := Decode([]byte(c.body))
			if err == nil {
				t.Fatalf("accepted %q as %+v", c.body, spans)
			}
			if spans != nil {
				t.Errorf("spans returned with an error")
			}
			if got := ReasonOf(err); got != c.want {
				t.Errorf("reason %s, want %s (%v)", got, c.want, err)
			}
		})
	}
}

func TestEmptyListIsAccepted(t *testing.T) {
	// Zipkin accepts an empty list (nothing to store); it is not malformed.
	spans, _, err := Decode([]byte(" []"))
	if err != nil || len(spans) != 0 {
		t.Fatalf("%v %v", spans, err)
	}
}

func TestJSONAndProtoAgree(t *testing.T) {
	spans, _, err := Decode([]byte(braveBody))
	if err != nil {
		t.Fatal(err)
	}
	pbody, err := EncodeProto(spans)
	if err != nil {
		t.Fatal(err)
	}
	fromProto, f, err := Decode(pbody)
	if err != nil || f != FormatProto3 {
		t.Fatalf("proto decode: %v %v", f, err)
	}
	fromJSON, _, err := Decode(EncodeJSON(spans))
	if err != nil {
		t.Fatal(err)
	}
	for i := range spans {
		if !reflect.DeepEqual(spans[i], fromProto[i]) || !reflect.DeepEqual(spans[i], fromJSON[i]) {
			t.Fatalf("span %d differs:\n%+v\n%+v\n%+v", i, spans[i], fromProto[i], fromJSON[i])
		}
		a, _ := spans[i].MarshalCanonical(nil)
		b, _ := fromProto[i].MarshalCanonical(nil)
		if UID(a) != UID(b) {
			t.Errorf("UID differs between JSON and proto3 forms")
		}
		var back Span
		if err := UnmarshalCanonical(a, &back); err != nil || !reflect.DeepEqual(back, spans[i]) {
			t.Errorf("canonical round trip: %v %+v", err, back)
		}
	}
	if uidOf(t, spans[0]) == uidOf(t, spans[1]) {
		t.Error("client and server halves must have different UIDs")
	}
}

func uidOf(t *testing.T, s Span) [16]byte {
	b, err := s.MarshalCanonical(nil)
	if err != nil {
		t.Fatal(err)
	}
	return UID(b)
}

func TestJSONWithLeadingNewline(t *testing.T) {
	spans, f, err := Decode([]byte("\n[{\"traceId\":\"a\",\"id\":\"b\"}]"))
	if err != nil || f != FormatJSON || len(spans) != 1 {
		t.Fatalf("%v %v %v", spans, f, err)
	}
}

func TestEncodeJSONShape(t *testing.T) {
	s := Span{TraceID: TraceID{High: 1, Low: 2}, ID: 3, Name: "x", Tags: map[string]string{"b": "2", "a": "1"}}
	got := string(EncodeJSON([]Span{s}))
	want := `[{"traceId":"00000000000000010000000000000002","id":"0000000000000003","name":"x","tags":{"a":"1","b":"2"}}]`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestParseTraceIDPads(t *testing.T) {
	for in, want := range map[string]string{
		"1":                                  "0000000000000001",
		"ABCDEF":                             "0000000000abcdef",
		"1" + strings.Repeat("0", 16):        "00000000000000010000000000000000",
		strings.Repeat("0", 16) + "00000001": "0000000000000001",
	} {
		id, err := ParseTraceID(in)
		if err != nil || id.String() != want {
			t.Errorf("%s → %s %v, want %s", in, id, err, want)
		}
	}
	if _, err := ParseTraceID("0"); !errors.Is(err, errZeroID) {
		t.Errorf("zero id: %v", err)
	}
}

func TestReasonsAreFixed(t *testing.T) {
	if !slices.Contains(Reasons, ReasonEmpty) || slices.Contains(Reasons, ReasonUnknownRejected) {
		t.Error("Reasons must list every reason zipq assigns, and only those")
	}
}

// TestSharedOnlyOnServerSpans: Zipkin's normalisation keeps `shared` only
// on SERVER spans.
func TestSharedOnlyOnServerSpans(t *testing.T) {
	t.Parallel()
	spans, err := DecodeJSON([]byte(`[{"traceId":"1","id":"1","kind":"SERVER","shared":true},
		{"traceId":"1","id":"2","kind":"CLIENT","shared":true},{"traceId":"1","id":"3","shared":true}]`))
	if err != nil {
		t.Fatal(err)
	}
	if !spans[0].Shared || spans[1].Shared || spans[2].Shared {
		t.Fatalf("shared: %v %v %v, want only the SERVER span's", spans[0].Shared, spans[1].Shared, spans[2].Shared)
	}
}

// TestBinaryAnnotationsAsATagIsNotJSONv1: only a span's own key
// binaryAnnotations makes a list JSON v1; the word as a tag value, a tag
// key or an annotation is an ordinary v2 span.
func TestBinaryAnnotationsAsATagIsNotJSONv1(t *testing.T) {
	for _, body := range []string{
		`[{"traceId":"1","id":"1","tags":{"note":"binaryAnnotations"}}]`,
		`[{"traceId":"1","id":"1","tags":{"binaryAnnotations":"x"}}]`,
		`[{"traceId":"1","id":"1","annotations":[{"timestamp":1,"value":"\"binaryAnnotations\":"}]}]`,
		`[{"traceId":"1","id":"1","name":"binaryAnnotations"}]`,
	} {
		if spans, _, err := Decode([]byte(body)); err != nil || len(spans) != 1 {
			t.Errorf("%s: %v", body, err)
		}
	}
}

// TestCapNames: names over MaxNameBytes are cut at a UTF-8 boundary and the
// span says which were cut; shorter ones are untouched.
func TestCapNames(t *testing.T) {
	long := strings.Repeat("é", MaxNameBytes) // 2 bytes each: the cut falls mid-rune
	s := Span{Name: long, LocalEndpoint: &Endpoint{ServiceName: "ok"}, RemoteEndpoint: &Endpoint{ServiceName: long}}
	if !s.CapNames() {
		t.Fatal("nothing cut")
	}
	if len(s.Name) > MaxNameBytes || !utf8.ValidString(s.Name) || len(s.Name) < MaxNameBytes-1 {
		t.Fatalf("name cut to %d bytes, valid %v", len(s.Name), utf8.ValidString(s.Name))
	}
	if s.LocalEndpoint.ServiceName != "ok" || s.Tags[TruncatedTag] != "name,remoteEndpoint.serviceName" {
		t.Fatalf("%q, tag %q", s.LocalEndpoint.ServiceName, s.Tags[TruncatedTag])
	}
	short := Span{Name: "get", LocalEndpoint: &Endpoint{ServiceName: "svc"}}
	if short.CapNames() || short.Tags != nil {
		t.Fatalf("a short span was changed: %+v", short)
	}
}

// TestTooManySpansIsRefusedBeforeDecoding: 5 MiB of empty spans (1.7
// million) took a gigabyte to refuse; now they are counted by a scan and
// refused as too large having allocated next to nothing, in JSON and in
// proto3.
func TestTooManySpansIsRefusedBeforeDecoding(t *testing.T) {
	empties := []byte("[" + strings.Repeat("{},", 5<<20/3-1) + "{}]")
	one, _ := EncodeProto([]Span{{TraceID: TraceID{Low: 1}, ID: 1}})
	protos := bytes.Repeat(one, MaxSpansPerMessage+1)
	for name, body := range map[string][]byte{"json": empties, "proto3": protos} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, _, err := Decode(body)
		runtime.ReadMemStats(&after)
		if ReasonOf(err) != ReasonTooLarge {
			t.Fatalf("%s: %v, want too large", name, err)
		}
		alloc := after.TotalAlloc - before.TotalAlloc
		if alloc > 1<<20 {
			t.Fatalf("%s: refusing %d bytes allocated %d", name, len(body), alloc)
		}
		t.Logf("%s: %d-byte body of %d+ spans refused having allocated %d bytes", name, len(body), MaxSpansPerMessage, alloc)
	}
	// At the limit, a list is decoded.
	if spans, _, err := Decode(bytes.Repeat(one, 1000)); err != nil || len(spans) != 1000 {
		t.Fatalf("1,000 spans: %d, %v", len(spans), err)
	}
}
