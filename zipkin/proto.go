package zipkin

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"unicode/utf8"

	pb "github.com/openzipkin/zipkin-go/proto/zipkin_proto3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// DecodeProto decodes a proto3 ListOfSpans with the protobuf runtime (the
// message types generated from zipkin.proto and shipped by zipkin-go).
func DecodeProto(body []byte) ([]Span, error) {
	if err := tooManySpans(ProtoFieldCount(body, 1, nil)); err != nil {
		return nil, err
	}
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
	var err error
	if s.FromOTLP, s.Origins, err = readOrigins(p.ProtoReflect().GetUnknown()); err != nil {
		return reject(ReasonInvalidField, i, "%v", err)
	}
	s.Normalize()
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
	if s.FromOTLP || len(s.Origins) > 0 {
		p.ProtoReflect().SetUnknown(appendOrigins(nil, s.FromOTLP, s.Origins))
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
	// A ListOfSpans is its spans as field 1: each span's canonical
	// encoding, which is byte for byte the runtime's deterministic one
	// (fuzzed), at a fraction of the cost.
	var out, one []byte
	for i := range spans {
		var err error
		if one, err = spans[i].MarshalCanonical(one[:0]); err != nil {
			return nil, err
		}
		out = protowire.AppendTag(out, 1, protowire.BytesType)
		out = protowire.AppendBytes(out, one)
	}
	return out, nil
}

// MarshalCanonical is the span's deterministic proto3 encoding: the form the
// store keeps and the input to UID. Map order is fixed, so equal spans give
// equal bytes. It writes the wire format with protowire directly: the same
// bytes as the protobuf runtime's deterministic Marshal of the span's
// zipkin.proto message (a property the fuzz targets check on every input),
// at a fraction of the cost of building that message and walking it by
// reflection — this runs for every span stored.
func (s *Span) MarshalCanonical(buf []byte) ([]byte, error) {
	b := buf[:0]
	b = appendBytesField(b, 1, s.TraceID.Bytes())
	if s.ParentID != 0 {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendVarint(b, 8)
		b = binary.BigEndian.AppendUint64(b, uint64(s.ParentID))
	}
	b = protowire.AppendTag(b, 3, protowire.BytesType)
	b = protowire.AppendVarint(b, 8)
	b = binary.BigEndian.AppendUint64(b, uint64(s.ID))
	if s.Kind != KindUnspecified {
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(s.Kind))
	}
	b = appendStringField(b, 5, s.Name)
	if s.Timestamp != 0 {
		b = protowire.AppendTag(b, 6, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, uint64(s.Timestamp))
	}
	if s.Duration != 0 {
		b = protowire.AppendTag(b, 7, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(s.Duration))
	}
	b = appendEndpoint(b, 8, s.LocalEndpoint)
	b = appendEndpoint(b, 9, s.RemoteEndpoint)
	for _, a := range s.Annotations {
		size := 0
		if a.Timestamp != 0 {
			size += 1 + 8
		}
		if a.Value != "" {
			size += 1 + protowire.SizeBytes(len(a.Value))
		}
		b = protowire.AppendTag(b, 10, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(size))
		if a.Timestamp != 0 {
			b = protowire.AppendTag(b, 1, protowire.Fixed64Type)
			b = protowire.AppendFixed64(b, uint64(a.Timestamp))
		}
		b = appendStringField(b, 2, a.Value)
	}
	if len(s.Tags) > 0 {
		keys := make([]string, 0, len(s.Tags))
		for k := range s.Tags {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			// A map entry always carries both fields, even empty ones.
			v := s.Tags[k]
			b = protowire.AppendTag(b, 11, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(2+protowire.SizeBytes(len(k))+protowire.SizeBytes(len(v))))
			b = protowire.AppendTag(b, 1, protowire.BytesType)
			b = protowire.AppendString(b, k)
			b = protowire.AppendTag(b, 2, protowire.BytesType)
			b = protowire.AppendString(b, v)
		}
	}
	if s.Debug {
		b = protowire.AppendTag(b, 12, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	if s.Shared {
		b = protowire.AppendTag(b, 13, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	// Where the runtime writes unknown fields: after the known ones.
	b = appendOrigins(b, s.FromOTLP, s.Origins)
	for _, f := range []string{s.Name, s.LocalServiceName(), s.RemoteServiceName()} {
		if !utf8.ValidString(f) {
			return nil, errors.New("string field contains invalid UTF-8")
		}
	}
	for k, v := range s.Tags {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, errors.New("string field contains invalid UTF-8")
		}
	}
	for _, a := range s.Annotations {
		if !utf8.ValidString(a.Value) {
			return nil, errors.New("string field contains invalid UTF-8")
		}
	}
	return b, nil
}

func appendBytesField(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendStringField(b []byte, num protowire.Number, v string) []byte {
	if v == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, v)
}

func appendEndpoint(b []byte, num protowire.Number, e *Endpoint) []byte {
	if e == nil {
		return b
	}
	var ip4, ip6 []byte
	if e.IPv4.IsValid() {
		a := e.IPv4.As4()
		ip4 = a[:]
	}
	if e.IPv6.IsValid() {
		a := e.IPv6.As16()
		ip6 = a[:]
	}
	size := 0
	if e.ServiceName != "" {
		size += 1 + protowire.SizeBytes(len(e.ServiceName))
	}
	if len(ip4) > 0 {
		size += 1 + protowire.SizeBytes(len(ip4))
	}
	if len(ip6) > 0 {
		size += 1 + protowire.SizeBytes(len(ip6))
	}
	if e.Port != 0 {
		size += 1 + protowire.SizeVarint(uint64(int64(e.Port)))
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(size))
	b = appendStringField(b, 1, e.ServiceName)
	b = appendBytesField(b, 2, ip4)
	b = appendBytesField(b, 3, ip6)
	if e.Port != 0 {
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(int64(e.Port)))
	}
	return b
}

// UnmarshalCanonical reverses MarshalCanonical. It reads the wire format
// with protowire into the zipkin.proto message and then applies the same
// checks as DecodeProto (fromProto); like MarshalCanonical it skips the
// runtime's reflection because every stored span read passes here.
func UnmarshalCanonical(b []byte, s *Span) error {
	var p pb.Span
	if err := consumeSpan(b, &p); err != nil {
		return reject(ReasonMalformedProto, -1, "%v", err)
	}
	*s = Span{}
	return fromProto(-1, &p, s)
}

var errWire = errors.New("malformed wire data")

// fields walks a message's fields, calling fn with each field's number,
// type and value (the bytes of a length-delimited field, else the field).
func fields(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		// ConsumeTag takes numbers up to MaxInt32; the runtime refuses
		// those above the protobuf maximum, and so does this reader.
		if n < 0 || num > protowire.MaxValidNumber {
			return errWire
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			typ = -1 // unknown: skipped
		}
		if n < 0 {
			return errWire
		}
		b = b[n:]
		if err := fn(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

func str(v []byte) (string, error) {
	if !utf8.Valid(v) {
		return "", errors.New("string field contains invalid UTF-8")
	}
	return string(v), nil
}

// consumeSpan reads a span's fields into p. Its byte fields alias b:
// fromProto copies IDs into integers and addresses into netip.Addr, so
// nothing of b outlives UnmarshalCanonical (one allocation less per ID
// on every stored span read).
func consumeSpan(b []byte, p *pb.Span) error {
	return fields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		var err error
		switch {
		case typ == protowire.BytesType && num == 1:
			p.TraceId = v
		case typ == protowire.BytesType && num == 2:
			p.ParentId = v
		case typ == protowire.BytesType && num == 3:
			p.Id = v
		case typ == protowire.VarintType && num == 4:
			p.Kind = pb.Span_Kind(int32(x))
		case typ == protowire.BytesType && num == 5:
			p.Name, err = str(v)
		case typ == protowire.Fixed64Type && num == 6:
			p.Timestamp = x
		case typ == protowire.VarintType && num == 7:
			p.Duration = x
		case typ == protowire.BytesType && (num == 8 || num == 9):
			// A message field given twice is merged, as the runtime
			// merges it: the second does not replace the first.
			ep := &p.LocalEndpoint
			if num == 9 {
				ep = &p.RemoteEndpoint
			}
			if *ep == nil {
				*ep = &pb.Endpoint{}
			}
			err = consumeEndpoint(v, *ep)
		case typ == protowire.BytesType && num == 10:
			a := &pb.Annotation{}
			err = fields(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
				var err error
				switch {
				case typ == protowire.Fixed64Type && num == 1:
					a.Timestamp = x
				case typ == protowire.BytesType && num == 2:
					a.Value, err = str(v)
				}
				return err
			})
			p.Annotations = append(p.Annotations, a)
		case typ == protowire.BytesType && num == 11:
			var k, val string
			err = fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
				var err error
				switch {
				case typ == protowire.BytesType && num == 1:
					k, err = str(v)
				case typ == protowire.BytesType && num == 2:
					val, err = str(v)
				}
				return err
			})
			if p.Tags == nil {
				p.Tags = map[string]string{}
			}
			p.Tags[k] = val
		case typ == protowire.VarintType && num == 12:
			p.Debug = x != 0
		case typ == protowire.VarintType && num == 13:
			p.Shared = x != 0
		case num == originField || num == otlpField:
			// Kept as the runtime keeps them, unknown fields, for
			// fromProto to read.
			m := p.ProtoReflect()
			switch typ {
			case protowire.BytesType:
				m.SetUnknown(protowire.AppendBytes(protowire.AppendTag(m.GetUnknown(), num, typ), v))
			case protowire.VarintType:
				m.SetUnknown(protowire.AppendVarint(protowire.AppendTag(m.GetUnknown(), num, typ), x))
			default:
				return fmt.Errorf("field %d: wire type %d", num, typ)
			}
		}
		return err
	})
}

func consumeEndpoint(b []byte, e *pb.Endpoint) error {
	return fields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		var err error
		switch {
		case typ == protowire.BytesType && num == 1:
			e.ServiceName, err = str(v)
		case typ == protowire.BytesType && num == 2:
			e.Ipv4 = v
		case typ == protowire.BytesType && num == 3:
			e.Ipv6 = v
		case typ == protowire.VarintType && num == 4:
			e.Port = int32(x)
		}
		return err
	})
}
