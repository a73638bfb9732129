package zipkin

import (
	"strings"
	"unicode/utf8"
)

// MaxNameBytes bounds a service name (local or remote) and a span name.
// Names are listed whole by /api/v2/services, /spans and /remoteServices
// for the whole retention period, and the UI loads the service list on
// every search page: one span with a 4 MiB service name would make every
// such answer megabytes. Zipkin's own UI cuts names far shorter; tags keep
// their full values.
const MaxNameBytes = 1024

// TruncatedTag marks a span whose names CapNames cut; its value lists them
// (name, localEndpoint.serviceName, remoteEndpoint.serviceName).
const TruncatedTag = "zipq.truncated"

// CapNames cuts each name longer than MaxNameBytes at a UTF-8 boundary and
// records which in TruncatedTag; it reports whether it cut anything.
func (s *Span) CapNames() bool {
	var cut []string
	capName := func(p *string, field string) {
		if len(*p) > MaxNameBytes {
			*p = truncateUTF8(*p, MaxNameBytes)
			cut = append(cut, field)
		}
	}
	capName(&s.Name, "name")
	if s.LocalEndpoint != nil {
		capName(&s.LocalEndpoint.ServiceName, "localEndpoint.serviceName")
	}
	if s.RemoteEndpoint != nil {
		capName(&s.RemoteEndpoint.ServiceName, "remoteEndpoint.serviceName")
	}
	if len(cut) == 0 {
		return false
	}
	if s.Tags == nil {
		s.Tags = map[string]string{}
	}
	s.Tags[TruncatedTag] = strings.Join(cut, ",")
	return true
}

// truncateUTF8 is the longest prefix of s of at most n bytes that does not
// split a UTF-8 sequence.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Tally is what decoding one message left out or changed beside the spans
// it kept: spans rejected as unstorable (counted in OTLP's partial
// success), spans sampling left out, and spans whose names CapNames cut.
type Tally struct {
	Rejected, SampledOut, Truncated int
}
