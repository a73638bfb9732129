package zipkin

import (
	"reflect"
	"slices"
	"testing"
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
	f.Fuzz(func(t *testing.T, body []byte) {
		spans, _, err := Decode(body)
		checkDecoded(t, spans, err)
	})
}

func FuzzDecodeJSON(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		spans, err := DecodeJSON(body)
		checkDecoded(t, spans, err)
	})
}

func FuzzDecodeProto(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		spans, err := DecodeProto(body)
		checkDecoded(t, spans, err)
	})
}
