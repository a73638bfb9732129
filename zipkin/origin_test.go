package zipkin

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	pb "github.com/openzipkin/zipkin-go/proto/zipkin_proto3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// TestOrigins: a span's tag origins survive the queue's proto3 and the
// store's canonical encoding (the runtime's bytes, as for every field),
// are normalised (sorted, last of a key, only keys with a tag, only on
// OTLP spans), are invisible to other readers of the bytes, and a bad one
// is refused with its reason.
func TestOrigins(t *testing.T) {
	t.Parallel()
	s := Span{TraceID: TraceID{Low: 1}, ID: 2, FromOTLP: true, Tags: map[string]string{"http.response.status_code": "503", "team": "a", "ok": "true"},
		Origins: []TagOrigin{{Key: "team", From: FromResource, Type: TypeString}, {Key: "http.response.status_code", From: FromSpan, Type: TypeDouble},
			{Key: "gone", From: FromSpan, Type: TypeInt}, {Key: "http.response.status_code", From: FromSpan, Type: TypeInt},
			{Key: "ok", From: FromScope, Type: TypeBool}}}
	s.Normalize()
	want := []TagOrigin{{"http.response.status_code", FromSpan, TypeInt}, {"ok", FromScope, TypeBool}, {"team", FromResource, TypeString}}
	if !reflect.DeepEqual(s.Origins, want) {
		t.Fatalf("normalised origins %+v, want %+v", s.Origins, want)
	}
	if o, ok := s.Origin("ok"); !ok || o.Type != TypeBool {
		t.Fatalf("Origin(ok) = %+v, %v", o, ok)
	}
	if _, ok := s.Origin("nope"); ok {
		t.Fatal("Origin of a key without one")
	}
	got, err := s.MarshalCanonical(nil)
	runtime, werr := deterministic.Marshal(s.toProto())
	if err != nil || werr != nil || !bytes.Equal(got, runtime) {
		t.Fatalf("canonical %x (%v), runtime %x (%v)", got, err, runtime, werr)
	}
	var back Span
	if err := UnmarshalCanonical(got, &back); err != nil || !reflect.DeepEqual(back, s) {
		t.Fatalf("canonical round trip (%v): %+v", err, back)
	}
	body, _ := EncodeProto([]Span{s})
	if spans, err := DecodeProto(body); err != nil || !reflect.DeepEqual(spans[0], s) {
		t.Fatalf("proto3 round trip (%v): %+v", err, spans)
	}
	// Another reader: zipkin.proto's own message sees the same span
	// without them.
	var p pb.Span
	if err := proto.Unmarshal(got, &p); err != nil || p.Name != "" || len(p.Tags) != 3 {
		t.Fatalf("zipkin.proto reader: %v %+v", err, &p)
	}
	plain := s
	plain.FromOTLP, plain.Origins = false, nil
	if p.ProtoReflect().SetUnknown(nil); !proto.Equal(&p, plain.toProto()) {
		t.Fatal("zipkin.proto reader sees other fields")
	}
	// A Zipkin span's origins are dropped.
	z := Span{TraceID: TraceID{Low: 1}, ID: 2, Tags: map[string]string{"k": "v"}, Origins: []TagOrigin{{"k", FromResource, TypeString}}}
	if z.Normalize(); z.Origins != nil {
		t.Fatal("origins kept on a span not from OTLP")
	}
	for _, bad := range [][]byte{{'x', TypeInt, 'k'}, {FromSpan, 'q', 'k'}, {FromSpan}, {FromSpan, TypeInt, 0xff}} {
		b := protowire.AppendBytes(protowire.AppendTag(bytes.Clone(got), originField, protowire.BytesType), bad)
		if err := UnmarshalCanonical(b, &back); err == nil || !strings.Contains(err.Error(), "origin") {
			t.Errorf("origin %q: %v, want refused", bad, err)
		}
	}
	b := protowire.AppendFixed32(protowire.AppendTag(bytes.Clone(got), otlpField, protowire.Fixed32Type), 1)
	if err := UnmarshalCanonical(b, &back); err == nil {
		t.Error("a fixed32 OTLP flag accepted")
	}
}
