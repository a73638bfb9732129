package zipkin

import (
	"crypto/sha256"
	"net/netip"
	"sort"
	"strings"
)

// Kind is the span kind; KindUnspecified means absent.
type Kind uint8

// Span kinds, numbered as in zipkin.proto.
const (
	KindUnspecified Kind = iota
	KindClient
	KindServer
	KindProducer
	KindConsumer
)

var kindNames = [...]string{"", "CLIENT", "SERVER", "PRODUCER", "CONSUMER"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return ""
}

// ParseKind is the Kind a JSON or model name (CLIENT, SERVER, …) names.
func ParseKind(s string) (Kind, bool) {
	for i, n := range kindNames {
		if i > 0 && n == s {
			return Kind(i), true
		}
	}
	return 0, false
}

// Endpoint is a network endpoint; a zero field is absent.
type Endpoint struct {
	ServiceName string
	IPv4        netip.Addr
	IPv6        netip.Addr
	Port        int32
}

func (e *Endpoint) empty() bool {
	return e.ServiceName == "" && !e.IPv4.IsValid() && !e.IPv6.IsValid() && e.Port == 0
}

// Annotation is a timestamped event (microseconds since epoch).
type Annotation struct {
	Timestamp int64
	Value     string
}

// Span is one Zipkin v2 span. Timestamp and Duration are microseconds; zero
// means absent. ParentID zero means root.
type Span struct {
	TraceID        TraceID
	ParentID       SpanID
	ID             SpanID
	Kind           Kind
	Name           string
	Timestamp      int64
	Duration       int64
	LocalEndpoint  *Endpoint
	RemoteEndpoint *Endpoint
	Annotations    []Annotation
	Tags           map[string]string
	Debug          bool
	Shared         bool
	// FromOTLP is whether the span was translated from OpenTelemetry's
	// OTLP, and Origins what its tags were there where that differs from
	// what the tag would mean in a Zipkin span (TagOrigin), sorted by key.
	FromOTLP bool
	Origins  []TagOrigin
}

// LocalServiceName is the local endpoint's service name, or "".
func (s *Span) LocalServiceName() string {
	if s.LocalEndpoint == nil {
		return ""
	}
	return s.LocalEndpoint.ServiceName
}

// RemoteServiceName is the remote endpoint's service name, or "".
func (s *Span) RemoteServiceName() string {
	if s.RemoteEndpoint == nil {
		return ""
	}
	return s.RemoteEndpoint.ServiceName
}

// IsError reports whether the span carries the "error" tag, which is how
// Zipkin marks failed spans (for the UI and dependency error counts).
func (s *Span) IsError() bool {
	_, ok := s.Tags["error"]
	return ok
}

// Failed reports whether the span failed: it carries the "error" tag, or
// it came from OpenTelemetry with status ERROR (the otel.status_code tag
// the OpenTelemetry Collector's Zipkin translator reads and writes). This
// is TraceQL's status = error on Zipkin spans, and an error in the RED
// metrics.
func (s *Span) Failed() bool {
	if s.IsError() {
		return true
	}
	switch s.Tags["otel.status_code"] {
	case "STATUS_CODE_ERROR", "Error":
		return true
	}
	return false
}

// StartTime is the span's timestamp if set, else its earliest annotation,
// else 0. It is a function of the span only, never of arrival time, so a
// redelivered span always lands in the same time partition.
func (s *Span) StartTime() int64 {
	if s.Timestamp != 0 {
		return s.Timestamp
	}
	if len(s.Annotations) > 0 {
		return s.Annotations[0].Timestamp // sorted by Normalize
	}
	return 0
}

// Normalize applies the Zipkin server's canonical form (zipkin2.Span.Builder
// and Endpoint.Builder): lower-case names, empty endpoints dropped, sorted
// and de-duplicated annotations, a parent equal to the span itself dropped,
// and `shared` kept only on SERVER spans, the one kind it means anything on.
func (s *Span) Normalize() {
	s.Name = strings.ToLower(s.Name)
	if s.Kind != KindServer {
		s.Shared = false
	}
	s.LocalEndpoint = normalizeEndpoint(s.LocalEndpoint)
	s.RemoteEndpoint = normalizeEndpoint(s.RemoteEndpoint)
	if s.ParentID == s.ID {
		s.ParentID = 0
	}
	if len(s.Annotations) > 1 {
		sort.Slice(s.Annotations, func(i, j int) bool {
			a, b := s.Annotations[i], s.Annotations[j]
			if a.Timestamp != b.Timestamp {
				return a.Timestamp < b.Timestamp
			}
			return a.Value < b.Value
		})
		out := s.Annotations[:1]
		for _, a := range s.Annotations[1:] {
			if a != out[len(out)-1] {
				out = append(out, a)
			}
		}
		s.Annotations = out
	}
	if len(s.Tags) == 0 {
		s.Tags = nil
	}
	s.Origins = normalizeOrigins(s.Origins, s.Tags)
	if !s.FromOTLP {
		s.Origins = nil
	}
}

func normalizeEndpoint(e *Endpoint) *Endpoint {
	if e == nil {
		return nil
	}
	e.ServiceName = strings.ToLower(e.ServiceName)
	if e.empty() {
		return nil
	}
	return e
}

// UID is a 128-bit hash of the span's canonical encoding. Two reports of
// the same span give the same UID whether they came as JSON or proto3, so
// the store's (trace, time, uid) key de-duplicates redeliveries, while a
// genuinely different report of the same span ID (a client or server half)
// keeps its own row, merged at read as Zipkin does.
func UID(canonical []byte) [16]byte {
	sum := sha256.Sum256(canonical)
	var u [16]byte
	copy(u[:], sum[:16])
	return u
}
