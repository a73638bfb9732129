package zipkin

import (
	"encoding/binary"
	"net/netip"

	pb "github.com/openzipkin/zipkin-go/proto/zipkin_proto3"
	"google.golang.org/protobuf/proto"
)

// DecodeProto decodes a proto3 ListOfSpans with the protobuf runtime (the
// message types generated from zipkin.proto and shipped by zipkin-go).
func DecodeProto(body []byte) ([]Span, error) {
	var list pb.ListOfSpans
	if err := proto.Unmarshal(body, &list); err != nil {
		return nil, reject(ReasonMalformedProto, -1, "%v", err)
	}
	if len(list.Spans) == 0 {
		return nil, reject(ReasonMalformedProto, -1, "ListOfSpans holds no spans")
	}
	out := make([]Span, len(list.Spans))
	for i, p := range list.Spans {
		if err := fromProto(i, p, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func fromProto(i int, p *pb.Span, s *Span) error {
	switch len(p.TraceId) {
	case 0:
		return reject(ReasonMissingTraceID, i, "trace_id is required")
	case 8:
		s.TraceID.Low = binary.BigEndian.Uint64(p.TraceId)
	case 16:
		s.TraceID.High = binary.BigEndian.Uint64(p.TraceId)
		s.TraceID.Low = binary.BigEndian.Uint64(p.TraceId[8:])
	default:
		return reject(ReasonInvalidTraceID, i, "trace_id is %d bytes, want 8 or 16", len(p.TraceId))
	}
	if s.TraceID.IsZero() {
		return reject(ReasonInvalidTraceID, i, "trace_id is all zeros")
	}
	switch len(p.Id) {
	case 0:
		return reject(ReasonMissingSpanID, i, "id is required")
	case 8:
		s.ID = SpanID(binary.BigEndian.Uint64(p.Id))
	default:
		return reject(ReasonInvalidSpanID, i, "id is %d bytes, want 8", len(p.Id))
	}
	if s.ID == 0 {
		return reject(ReasonInvalidSpanID, i, "id is all zeros")
	}
	switch len(p.ParentId) {
	case 0:
	case 8:
		s.ParentID = SpanID(binary.BigEndian.Uint64(p.ParentId))
	default:
		return reject(ReasonInvalidSpanID, i, "parent_id is %d bytes, want 8", len(p.ParentId))
	}
	// Unknown kinds are ignored rather than rejected: proto3 enums are open,
	// and a newer client's kind should not cost the span.
	if p.Kind >= pb.Span_CLIENT && p.Kind <= pb.Span_CONSUMER {
		s.Kind = Kind(p.Kind)
	}
	if p.Timestamp > 1<<63-1 || p.Duration > 1<<63-1 {
		return reject(ReasonInvalidField, i, "timestamp or duration out of range")
	}
	s.Name, s.Timestamp, s.Duration = p.Name, int64(p.Timestamp), int64(p.Duration)
	s.LocalEndpoint = endpointFromProto(p.LocalEndpoint)
	s.RemoteEndpoint = endpointFromProto(p.RemoteEndpoint)
	if len(p.Annotations) > 0 {
		s.Annotations = make([]Annotation, len(p.Annotations))
		for k, a := range p.Annotations {
			if a.Timestamp == 0 || a.Timestamp > 1<<63-1 {
				return reject(ReasonInvalidField, i, "annotation %d: timestamp out of range", k)
			}
			s.Annotations[k] = Annotation{Timestamp: int64(a.Timestamp), Value: a.Value}
		}
	}
	if p.LocalEndpoint != nil && p.LocalEndpoint.Port > 0xffff ||
		p.RemoteEndpoint != nil && p.RemoteEndpoint.Port > 0xffff {
		return reject(ReasonInvalidField, i, "port out of range")
	}
	s.Tags, s.Debug, s.Shared = p.Tags, p.Debug, p.Shared
	s.normalize()
	return nil
}

func endpointFromProto(p *pb.Endpoint) *Endpoint {
	if p == nil {
		return nil
	}
	e := &Endpoint{ServiceName: p.ServiceName}
	if p.Port > 0 {
		e.Port = p.Port
	}
	if a, ok := netip.AddrFromSlice(p.Ipv4); ok && a.Is4() {
		e.IPv4 = a
	}
	if a, ok := netip.AddrFromSlice(p.Ipv6); ok && len(p.Ipv6) == 16 {
		e.IPv6 = a
	}
	return e
}

func (s *Span) toProto() *pb.Span {
	p := &pb.Span{
		TraceId: s.TraceID.Bytes(), Id: binary.BigEndian.AppendUint64(nil, uint64(s.ID)),
		Kind: pb.Span_Kind(s.Kind), Name: s.Name,
		Timestamp: uint64(s.Timestamp), Duration: uint64(s.Duration),
		LocalEndpoint: endpointToProto(s.LocalEndpoint), RemoteEndpoint: endpointToProto(s.RemoteEndpoint),
		Tags: s.Tags, Debug: s.Debug, Shared: s.Shared,
	}
	if s.ParentID != 0 {
		p.ParentId = binary.BigEndian.AppendUint64(nil, uint64(s.ParentID))
	}
	for _, a := range s.Annotations {
		p.Annotations = append(p.Annotations, &pb.Annotation{Timestamp: uint64(a.Timestamp), Value: a.Value})
	}
	return p
}

func endpointToProto(e *Endpoint) *pb.Endpoint {
	if e == nil {
		return nil
	}
	p := &pb.Endpoint{ServiceName: e.ServiceName, Port: e.Port}
	if e.IPv4.IsValid() {
		b := e.IPv4.As4()
		p.Ipv4 = b[:]
	}
	if e.IPv6.IsValid() {
		b := e.IPv6.As16()
		p.Ipv6 = b[:]
	}
	return p
}

var deterministic = proto.MarshalOptions{Deterministic: true}

// EncodeProto renders spans as a proto3 ListOfSpans.
func EncodeProto(spans []Span) ([]byte, error) {
	list := &pb.ListOfSpans{Spans: make([]*pb.Span, len(spans))}
	for i := range spans {
		list.Spans[i] = spans[i].toProto()
	}
	return deterministic.Marshal(list)
}

// MarshalCanonical is the span's deterministic proto3 encoding: the form the
// store keeps and the input to UID. Map order is fixed, so equal spans give
// equal bytes.
func (s *Span) MarshalCanonical(buf []byte) ([]byte, error) {
	return deterministic.MarshalAppend(buf[:0], s.toProto())
}

// UnmarshalCanonical reverses MarshalCanonical.
func UnmarshalCanonical(b []byte, s *Span) error {
	var p pb.Span
	if err := proto.Unmarshal(b, &p); err != nil {
		return reject(ReasonMalformedProto, -1, "%v", err)
	}
	*s = Span{}
	return fromProto(-1, &p, s)
}
