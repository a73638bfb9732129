package zipkin

import (
	"encoding/json"
	"errors"
	"net/netip"

	gojson "github.com/goccy/go-json"
)

// jsonSpan is the JSON v2 shape, shared by the decoder and the encoder so
// that what zipq writes is exactly what it reads.
type jsonSpan struct {
	TraceID        string            `json:"traceId"`
	ParentID       string            `json:"parentId,omitempty"`
	ID             string            `json:"id"`
	Kind           string            `json:"kind,omitempty"`
	Name           string            `json:"name,omitempty"`
	Timestamp      int64             `json:"timestamp,omitempty"`
	Duration       int64             `json:"duration,omitempty"`
	LocalEndpoint  *jsonEndpoint     `json:"localEndpoint,omitempty"`
	RemoteEndpoint *jsonEndpoint     `json:"remoteEndpoint,omitempty"`
	Annotations    []jsonAnnotation  `json:"annotations,omitempty"`
	Tags           map[string]string `json:"tags,omitempty"`
	Debug          bool              `json:"debug,omitempty"`
	Shared         bool              `json:"shared,omitempty"`
}

type jsonEndpoint struct {
	ServiceName string `json:"serviceName,omitempty"`
	IPv4        string `json:"ipv4,omitempty"`
	IPv6        string `json:"ipv6,omitempty"`
	Port        int32  `json:"port,omitempty"`
}

type jsonAnnotation struct {
	Timestamp int64  `json:"timestamp"`
	Value     string `json:"value"`
}

// DecodeJSON decodes a JSON v2 span list. Unknown fields are ignored, as
// Zipkin ignores them; a value of the wrong type is a rejection.
//
// It parses with goccy/go-json, a drop-in for encoding/json that decodes
// these span lists about 4× faster (zipkin's BenchmarkDecode) — JSON
// decoding was the collector's largest CPU cost. A fuzz target holds it to
// encoding/json's answers on every input.
func DecodeJSON(body []byte) ([]Span, error) { return decodeJSON(body, gojson.Unmarshal) }

func decodeJSON(body []byte, unmarshal func([]byte, any) error) ([]Span, error) {
	if err := tooManySpans(jsonListLen(body)); err != nil {
		return nil, err
	}
	var in []jsonSpan
	if err := unmarshal(body, &in); err != nil {
		var te *json.UnmarshalTypeError
		var gte *gojson.UnmarshalTypeError
		switch {
		case errors.As(err, &te):
			return nil, reject(ReasonWrongType, -1, "field %q: %s is not a %s", te.Field, te.Value, te.Type)
		case errors.As(err, &gte):
			return nil, reject(ReasonWrongType, -1, "field %q: %s is not a %s", gte.Field, gte.Value, gte.Type)
		}
		return nil, reject(ReasonMalformedJSON, -1, "%v", err)
	}
	if in == nil {
		return nil, reject(ReasonWrongType, -1, "expected a JSON array of spans, got null")
	}
	out := make([]Span, len(in))
	for i := range in {
		if err := in[i].toSpan(i, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (j *jsonSpan) toSpan(i int, s *Span) error {
	var err error
	if j.TraceID == "" {
		return reject(ReasonMissingTraceID, i, "traceId is required")
	}
	if s.TraceID, err = ParseTraceID(j.TraceID); err != nil {
		return reject(ReasonInvalidTraceID, i, "traceId %.40q: %v", j.TraceID, err)
	}
	if j.ID == "" {
		return reject(ReasonMissingSpanID, i, "id is required")
	}
	if s.ID, err = ParseSpanID(j.ID); err != nil {
		return reject(ReasonInvalidSpanID, i, "id %.40q: %v", j.ID, err)
	}
	if j.ParentID != "" {
		if s.ParentID, err = parseParentID(j.ParentID); err != nil {
			return reject(ReasonInvalidSpanID, i, "parentId %.40q: %v", j.ParentID, err)
		}
	}
	if j.Kind != "" {
		k, ok := ParseKind(j.Kind)
		if !ok {
			return reject(ReasonInvalidField, i, "kind %.40q is not CLIENT, SERVER, PRODUCER or CONSUMER", j.Kind)
		}
		s.Kind = k
	}
	if j.Timestamp < 0 || j.Duration < 0 {
		return reject(ReasonInvalidField, i, "timestamp and duration must not be negative")
	}
	s.Name, s.Timestamp, s.Duration = j.Name, j.Timestamp, j.Duration
	if s.LocalEndpoint, err = j.LocalEndpoint.toEndpoint(); err != nil {
		return reject(ReasonInvalidField, i, "localEndpoint: %v", err)
	}
	if s.RemoteEndpoint, err = j.RemoteEndpoint.toEndpoint(); err != nil {
		return reject(ReasonInvalidField, i, "remoteEndpoint: %v", err)
	}
	if len(j.Annotations) > 0 {
		s.Annotations = make([]Annotation, len(j.Annotations))
		for k, a := range j.Annotations {
			if a.Timestamp <= 0 {
				return reject(ReasonInvalidField, i, "annotation %d: timestamp must be positive", k)
			}
			s.Annotations[k] = Annotation(a)
		}
	}
	s.Tags, s.Debug, s.Shared = j.Tags, j.Debug, j.Shared
	s.Normalize()
	return nil
}

// parseParentID accepts an all-zero parent as "root", as Zipkin does.
func parseParentID(s string) (SpanID, error) {
	id, err := ParseSpanID(s)
	if errors.Is(err, errZeroID) {
		return 0, nil
	}
	return id, err
}

var errBadPort = errors.New("port must be at most 65535")

func (j *jsonEndpoint) toEndpoint() (*Endpoint, error) {
	if j == nil {
		return nil, nil
	}
	if j.Port > 0xffff {
		return nil, errBadPort
	}
	e := &Endpoint{ServiceName: j.ServiceName, IPv4: ParseIP(j.IPv4, true), IPv6: ParseIP(j.IPv6, false)}
	if j.Port > 0 {
		e.Port = j.Port
	}
	return e, nil
}

// ParseIP drops an address that does not parse or is of the wrong family,
// as Zipkin's Endpoint.Builder does: a bad IP is not worth losing the span.
func ParseIP(s string, v4 bool) netip.Addr {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Is4() != v4 || a.Zone() != "" {
		return netip.Addr{}
	}
	return a
}

func (s *Span) toJSON() jsonSpan {
	j := jsonSpan{
		TraceID: s.TraceID.String(), ID: s.ID.String(), Kind: s.Kind.String(), Name: s.Name,
		Timestamp: s.Timestamp, Duration: s.Duration,
		LocalEndpoint: endpointJSON(s.LocalEndpoint), RemoteEndpoint: endpointJSON(s.RemoteEndpoint),
		Tags: s.Tags, Debug: s.Debug, Shared: s.Shared,
	}
	if s.ParentID != 0 {
		j.ParentID = s.ParentID.String()
	}
	if len(s.Annotations) > 0 {
		j.Annotations = make([]jsonAnnotation, len(s.Annotations))
		for i, a := range s.Annotations {
			j.Annotations[i] = jsonAnnotation(a)
		}
	}
	return j
}

func endpointJSON(e *Endpoint) *jsonEndpoint {
	if e == nil {
		return nil
	}
	j := &jsonEndpoint{ServiceName: e.ServiceName, Port: e.Port}
	if e.IPv4.IsValid() {
		j.IPv4 = e.IPv4.String()
	}
	if e.IPv6.IsValid() {
		j.IPv6 = e.IPv6.String()
	}
	return j
}

// EncodeJSON renders spans as a JSON v2 list in Zipkin's field order, with
// empty fields omitted and tags sorted by key.
func EncodeJSON(spans []Span) []byte {
	out := make([]jsonSpan, len(spans))
	for i := range spans {
		out[i] = spans[i].toJSON()
	}
	b, err := json.Marshal(out)
	if err != nil { // unreachable: strings, integers and booleans always marshal
		panic(err)
	}
	return b
}
