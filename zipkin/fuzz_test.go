package zipkin

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	pb "github.com/openzipkin/zipkin-go/proto/zipkin_proto3"
	"google.golang.org/protobuf/proto"
)

// checkDecoded is the property every decoder must keep: accepted input has
// valid IDs and survives a round trip through both encodings unchanged;
// rejected input carries a reason from the fixed list and no spans.
func checkDecoded(t *testing.T, spans []Span, err error) {
	t.Helper()
	if err != nil {
		if spans != nil {
			t.Fatalf("spans returned with error %v", err)
		}
		if r := ReasonOf(err); !slices.Contains(Reasons, r) {
			t.Fatalf("reason %q not in the fixed list (%v)", r, err)
		}
		return
	}
	for i, s := range spans {
		if s.TraceID.IsZero() || s.ID == 0 || s.ParentID == s.ID {
			t.Fatalf("span %d accepted with invalid ids: %+v", i, s)
		}
	}
	fromJSON, err := DecodeJSON(EncodeJSON(spans))
	if err != nil {
		t.Fatalf("re-encoded JSON rejected: %v", err)
	}
	p, err := EncodeProto(spans)
	if err != nil {
		t.Fatalf("proto encode: %v", err)
	}
	var fromProto []Span
	if len(spans) > 0 {
		if fromProto, err = DecodeProto(p); err != nil {
			t.Fatalf("re-encoded proto3 rejected: %v", err)
		}
	}
	for i := range spans {
		// The hand-written canonical encoding is byte for byte the protobuf
		// runtime's deterministic one.
		got, err := spans[i].MarshalCanonical(nil)
		want, werr := deterministic.Marshal(spans[i].toProto())
		if err != nil || werr != nil || !bytes.Equal(got, want) {
			t.Fatalf("canonical encoding of span %d differs from the runtime's (%v, %v):\n%x\n%x", i, err, werr, got, want)
		}
		var back Span
		if err := UnmarshalCanonical(got, &back); err != nil || !reflect.DeepEqual(back, spans[i]) {
			t.Fatalf("canonical round trip changed span %d (%v):\n%+v\n%+v", i, err, spans[i], back)
		}
		if !reflect.DeepEqual(spans[i], fromJSON[i]) {
			t.Fatalf("JSON round trip changed span %d:\n%+v\n%+v", i, spans[i], fromJSON[i])
		}
		if !reflect.DeepEqual(spans[i], fromProto[i]) {
			t.Fatalf("proto3 round trip changed span %d:\n%+v\n%+v", i, spans[i], fromProto[i])
		}
	}
}

func addSeeds(f *testing.F) {
	f.Add([]byte(braveBody))
	f.Add([]byte(`[{"traceId":12345,"id":"1"}]`)) // zipkin-go's model accepts this; zipq must not
	f.Add([]byte(`[{"traceId":"463ac35c9f6413ad48485a3953bb6124","id":"a2fb4a1d1a96d312","name":"get","localEndpoint":{"serviceName":"svc"}}]`))
	f.Add([]byte("\n[]"))
	spans, _, _ := Decode([]byte(braveBody))
	p, _ := EncodeProto(spans)
	f.Add(p)
}

func FuzzDecode(f *testing.F) {
	addSeeds(f)
	f.Add([]byte(`[{"traceId":"1","id":"1","tags":{"binaryAnnotations":"binaryAnnotations"}}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		spans, _, err := Decode(body)
		checkDecoded(t, spans, err)
		// What zipq accepts as v2 stays v2: its own JSON of the spans,
		// whatever their names, tags and annotations say, is never taken
		// for JSON v1.
		if err == nil && len(spans) > 0 {
			if _, _, err := Decode(EncodeJSON(spans)); ReasonOf(err) == ReasonUnsupported {
				t.Fatalf("zipq's own v2 JSON refused as v1: %v", err)
			}
		}
	})
}

func FuzzDecodeJSON(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		spans, err := DecodeJSON(body)
		checkDecoded(t, spans, err)
		// The count taken before decoding (the span limit) is exact.
		if err == nil && jsonListLen(body) != len(spans) {
			t.Fatalf("pre-scan counted %d spans, decoding found %d", jsonListLen(body), len(spans))
		}
	})
}

func FuzzDecodeProto(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		spans, err := DecodeProto(body)
		checkDecoded(t, spans, err)
		// The count taken before decoding (the span limit) is exact.
		if err == nil && ProtoFieldCount(body, 1, nil) != len(spans) {
			t.Fatalf("pre-scan counted %d spans, decoding found %d", ProtoFieldCount(body, 1, nil), len(spans))
		}
	})
}

// FuzzParseAnnotationQuery: every term is trimmed, never the word "and",
// and joining the terms back with " and " parses to the same terms.
func FuzzParseAnnotationQuery(f *testing.F) {
	for _, s := range []string{"error", "error and http.method=GET", " a = b  AND c ", "=x", "and and", "k=v=w"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		terms, err := ParseAnnotationQuery(s)
		if err != nil {
			return
		}
		for _, term := range terms {
			if term == "" || term != strings.TrimSpace(term) || strings.EqualFold(term, "and") || strings.HasPrefix(term, "=") {
				t.Fatalf("term %q from %q", term, s)
			}
		}
		again, err := ParseAnnotationQuery(strings.Join(terms, " and "))
		if err != nil || !slices.Equal(again, terms) {
			t.Fatalf("%q → %q → %q (%v)", s, terms, again, err)
		}
	})
}

// FuzzLink: for any decodable trace, linking terminates and every link
// names both services and counts at least one call, never more errors than
// calls, and never more calls than the trace has spans.
func FuzzLink(f *testing.F) {
	f.Add([]byte(`[{"traceId":"1","id":"1","kind":"SERVER","localEndpoint":{"serviceName":"a"}},{"traceId":"1","parentId":"1","id":"2","kind":"CLIENT","localEndpoint":{"serviceName":"a"},"remoteEndpoint":{"serviceName":"b"},"tags":{"error":""}},{"traceId":"1","parentId":"1","id":"2","kind":"SERVER","shared":true,"localEndpoint":{"serviceName":"b"}}]`))
	f.Add([]byte(`[{"traceId":"1","parentId":"2","id":"1","kind":"SERVER","localEndpoint":{"serviceName":"a"},"remoteEndpoint":{"serviceName":"b"}},{"traceId":"1","parentId":"1","id":"2","kind":"CONSUMER","localEndpoint":{"serviceName":"b"},"remoteEndpoint":{"serviceName":"a"}}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		spans, err := DecodeJSON(body)
		if err != nil || len(spans) == 0 {
			return
		}
		var calls int64
		for _, l := range Link(spans) {
			if l.Parent == "" || l.Child == "" || l.CallCount < 1 || l.ErrorCount < 0 || l.ErrorCount > l.CallCount {
				t.Fatalf("bad link %+v", l)
			}
			calls += l.CallCount
		}
		// Each span adds at most two links (the backfilled hop and its own).
		if calls > int64(2*len(spans)) {
			t.Fatalf("%d calls from %d spans", calls, len(spans))
		}
	})
}

// TestMarshalCanonicalMatchesRuntime covers what the decoders never produce
// (they normalise spans) but the encoding must still get right.
func TestMarshalCanonicalMatchesRuntime(t *testing.T) {
	t.Parallel()
	for i, s := range []Span{
		{TraceID: TraceID{Low: 1}, ID: 1},
		{TraceID: TraceID{High: 1<<63 + 5, Low: 1<<64 - 1}, ID: 1<<64 - 1, ParentID: 2, Kind: KindConsumer, Name: "é\x00",
			Timestamp: 1<<63 - 1, Duration: 1<<63 - 1, Debug: true, Shared: true,
			LocalEndpoint: &Endpoint{}, RemoteEndpoint: &Endpoint{ServiceName: "r", Port: 65535,
				IPv4: netip.MustParseAddr("10.1.2.3"), IPv6: netip.MustParseAddr("2001:db8::1")},
			Annotations: []Annotation{{Timestamp: 1}, {Value: "v"}, {}},
			Tags:        map[string]string{"": "v", "k": "", "z": strings.Repeat("x", 300)}},
	} {
		got, err := s.MarshalCanonical(nil)
		want, werr := deterministic.Marshal(s.toProto())
		if err != nil || werr != nil || !bytes.Equal(got, want) {
			t.Fatalf("span %d: (%v, %v)\n%x\n%x", i, err, werr, got, want)
		}
	}
	bad := Span{TraceID: TraceID{Low: 1}, ID: 1, Tags: map[string]string{"k": "\xff"}}
	if _, err := bad.MarshalCanonical(nil); err == nil {
		t.Fatal("invalid UTF-8 must be refused, as the runtime refuses it")
	}
}

// FuzzUnmarshalCanonical: the protowire reader accepts exactly what the
// protobuf runtime's Unmarshal followed by DecodeProto's checks accepts, and
// gives the same span.
func FuzzUnmarshalCanonical(f *testing.F) {
	spans, _, _ := Decode([]byte(braveBody))
	for i := range spans {
		b, _ := spans[i].MarshalCanonical(nil)
		f.Add(b)
	}
	f.Add([]byte{0x0a, 0x08, 1, 2, 3, 4, 5, 6, 7, 8})
	otlp := Span{TraceID: TraceID{Low: 1}, ID: 1, FromOTLP: true, Tags: map[string]string{"n": "1"}, Origins: []TagOrigin{{"n", FromResource, TypeInt}}}
	b, _ := otlp.MarshalCanonical(nil)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		var p pb.Span
		var want Span
		werr := proto.Unmarshal(b, &p)
		if werr == nil {
			werr = fromProto(-1, &p, &want)
		}
		var got Span
		err := UnmarshalCanonical(b, &got)
		if (err == nil) != (werr == nil) {
			t.Fatalf("protowire reader says %v, runtime says %v", err, werr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("spans differ:\n%+v\n%+v", got, want)
		}
	})
}

// FuzzDecodeJSONLikeEncodingJSON: the goccy/go-json decoder accepts what
// encoding/json accepts, rejects what it rejects, for the same reason, and
// gives the same spans.
func FuzzDecodeJSONLikeEncodingJSON(f *testing.F) {
	addSeeds(f)
	f.Add([]byte(`[{"traceId":"1","id":"2","name":"\xff\u00e9","tags":{"a":1}}]`))
	f.Add([]byte(`[{"TRACEID":"1","Id":"2","tags":{"a":"b","a":"c"}}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		want, werr := decodeJSON(body, json.Unmarshal)
		got, err := DecodeJSON(body)
		if (err == nil) != (werr == nil) || ReasonOf(err) != ReasonOf(werr) {
			t.Fatalf("goccy: %v; encoding/json: %v", err, werr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("spans differ:\n%+v\n%+v", got, want)
		}
	})
}
