package ingest

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	zipkinmodel "github.com/openzipkin/zipkin-go/model"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/zipkin/zipkinv2"

	"github.com/zipq/zipq/traceql"
	"github.com/zipq/zipq/zipkin"
)

// TraceQLTrace is one trace's Zipkin spans as TraceQL sees them: exactly
// what the OpenTelemetry Collector's zipkin receiver makes of them with
// its defaults (the contrib zipkinv2 translator, fed their JSON), since
// that is what Tempo stores when sent the same spans. Local service →
// resource service.name, tags → span attributes that stay strings, the
// error tag → status error, annotations → events, remote endpoint →
// peer.service and net.peer.*. (README, "TraceQL".) go.mod pins the
// translator at the version released Tempo (2.10, 3.0) builds in: later
// ones rename http.status_code and peer.service by default, and Tempo
// fed the same spans must find what zipq finds (docs/BENCHMARKS.md,
// "Tempo side by side").
//
// It is built directly rather than through the translator's OTLP
// (receiverTraces, now the tests' oracle), because a TraceQL scan does this for every stored
// span and the detour through pdata was most of a scan's time
// (docs/BENCHMARKS.md). The rules below are the translator's
// (to_translator.go of the version in go.mod), and
// TestTraceQLTraceAsTheTranslator holds them equal on random spans. Which
// tags are resource attributes, and what the translator renames, is not
// copied: the translator itself is asked, once per tag key (tagRoles).
func TraceQLTrace(spans []zipkin.Span) (*traceql.Trace, error) {
	if len(spans) == 0 {
		return nil, fmt.Errorf("no spans")
	}
	for i := range spans {
		if spans[i].TraceID != spans[0].TraceID {
			return nil, fmt.Errorf("spans of 2 traces, want one")
		}
	}
	// The translator groups spans by local service, then scope, with
	// sort.Sort; the same sort of the same keys gives the same order (the
	// spans' order is visible in TraceQL's answers), and each group's
	// first span gives its resource and scope.
	order := make(byGroup, len(spans))
	for i := range spans {
		s := &spans[i]
		order[i] = grouped{s, localService(s), scopeName(s)}
	}
	sort.Sort(order)

	out := make([]*traceql.Span, 0, len(spans))
	var resource map[string]traceql.Value
	var scope, version string
	for i, g := range order {
		newResource := i == 0 || g.service != order[i-1].service
		if newResource {
			resource = resourceOf(g)
		}
		if newResource || g.scope != order[i-1].scope {
			scope, version = scopeOf(g)
		}
		sp, err := spanOf(g.Span)
		if err != nil {
			return nil, err
		}
		if !g.FromOTLP { // else its own, as sent
			sp.Resource, sp.ScopeName, sp.ScopeVersion = resource, scope, version
		}
		out = append(out, sp)
	}
	id := spans[0].TraceID
	var raw [16]byte
	binary.BigEndian.PutUint64(raw[:8], id.High)
	binary.BigEndian.PutUint64(raw[8:], id.Low)
	return traceql.NewTrace(hex.EncodeToString(raw[:]), out), nil
}

// The tags the translator reads itself, with meanings that depend on
// their values or on the span.
const (
	tagError          = "error"
	tagSpanKind       = "span.kind"
	tagStatusCode     = "otel.status_code"
	tagStatusMessage  = "otel.status_description"
	tagTraceState     = "w3c.tracestate"
	tagServiceSource  = "otlp.service.name.source"
	tagLibraryName    = "otel.library.name"
	tagLibraryVersion = "otel.library.version"
	// Where the translator zipq used before the pin (v0.165) wrote a
	// scope from OTLP; spans stored then still carry it there.
	tagLegacyScopeName    = "otel.scope.name"
	tagLegacyScopeVersion = "otel.scope.version"
	tagLinkPrefix         = "otlp.link."
	attrStartAbsent       = "otel.zipkin.absentField.startTime"
	noService             = "OTLPResourceNoServiceName"
)

type grouped struct {
	*zipkin.Span
	service, scope string
}

type byGroup []grouped

func (b byGroup) Len() int      { return len(b) }
func (b byGroup) Swap(i, j int) { b[i], b[j] = b[j], b[i] }

// Less is the translator's, <= included: sort.Sort's moves depend on it.
func (b byGroup) Less(i, j int) bool {
	if d := strings.Compare(b[i].service, b[j].service); d != 0 {
		return d <= 0
	}
	return strings.Compare(b[i].scope, b[j].scope) <= 0
}

func localService(s *zipkin.Span) string {
	if s.LocalEndpoint == nil || s.LocalEndpoint.ServiceName == "" {
		return noService
	}
	return s.LocalEndpoint.ServiceName
}

// scopeName is the span's instrumentation scope: the translator Tempo
// builds in reads otel.library.name (otel.scope.name is a plain tag).
func scopeName(s *zipkin.Span) string { return s.Tags[tagLibraryName] }

// resourceOf is the resource of g's group, made from its first span.
func resourceOf(g grouped) map[string]traceql.Value {
	if g.service == noService {
		return nil
	}
	key := "service.name"
	if src := g.Tags[tagServiceSource]; src != "" {
		key = src
	}
	res := map[string]traceql.Value{key: traceql.Str(g.service)}
	for k, v := range g.Tags {
		if k == tagServiceSource || isSpecialTag(k) {
			continue
		}
		for _, rk := range tagRolesOf(k).resource {
			res[rk] = traceql.Str(v)
		}
	}
	return res
}

// scopeOf is the instrumentation scope of g's group, from its first span.
func scopeOf(g grouped) (name, version string) {
	if g.scope == "" {
		return "", ""
	}
	return g.Tags[tagLibraryName], g.Tags[tagLibraryVersion]
}

// spanOf is s without its resource and scope.
func spanOf(s *zipkin.Span) (*traceql.Span, error) {
	sp := &traceql.Span{ID: spanHex(uint64(s.ID)), Name: s.Name, Kind: "unspecified", Status: "unset", TraceState: s.Tags[tagTraceState]}
	if s.ParentID != 0 && s.ParentID != s.ID {
		sp.ParentID = spanHex(uint64(s.ParentID))
	}
	if knownKind(s.Kind) {
		sp.Kind = strings.ToLower(s.Kind.String())
	} else if s.Tags[tagSpanKind] == "internal" {
		sp.Kind = "internal"
	}
	if v, ok := s.Tags[tagStatusCode]; ok {
		sp.Status = "unset"
		if st, ok := statusCodes[v]; ok {
			sp.Status = st
		}
		if m, ok := s.Tags[tagStatusMessage]; ok {
			sp.StatusMessage = m
		}
	}
	if _, ok := s.Tags[tagError]; ok {
		sp.Status = "error"
	}
	links, err := linksOf(s.Tags)
	if err != nil {
		return nil, err
	}
	sp.Links = links.links

	sp.Attrs = make(map[string]traceql.Value, len(s.Tags)+5)
	var scope scopeTags
	if s.FromOTLP {
		scope = scopeTagsOf(s)
		otlpScope(s, sp, scope)
	}
	for k, v := range s.Tags {
		switch {
		case isSpecialTag(k):
			if keepSpecial(s, k, v, links.consumed) {
				sp.Attrs[k] = traceql.Str(v)
			}
		case s.FromOTLP:
			otlpTag(s, sp, scope, k, v)
		default:
			for _, ak := range tagRolesOf(k).span {
				sp.Attrs[ak] = traceql.Str(v)
			}
		}
	}
	if len(sp.ScopeAttrs) == 0 {
		sp.ScopeAttrs = nil
	}
	endpointAttrs(s, sp.Attrs)

	start := time.Unix(0, 0)
	if s.Timestamp > 0 {
		start = time.UnixMicro(s.Timestamp)
	} else {
		sp.Attrs[attrStartAbsent] = traceql.Bool(true)
	}
	sp.Start, sp.End = start.UnixNano(), start.Add(time.Duration(s.Duration)*time.Microsecond).UnixNano()
	if len(sp.Attrs) == 0 {
		sp.Attrs = nil
	}
	for _, a := range s.Annotations {
		ev, err := eventOf(a)
		if err != nil {
			return nil, err
		}
		sp.Events = append(sp.Events, ev)
	}
	return sp, nil
}

// otlpScope sets the resource's service name and the scope of a span
// from OTLP, which are its own: the Zipkin translator's grouping by
// service (resourceOf) is what the zipkin receiver does, not what an OTLP
// exporter sent. The local service is the resource's service.name, or
// the attribute otlp.service.name.source names; none is the translator's
// "OTLPResourceNoServiceName" (lower-cased, as zipq stores service names).
func otlpScope(s *zipkin.Span, sp *traceql.Span, scope scopeTags) {
	if svc := s.LocalServiceName(); svc != "" && svc != strings.ToLower(noService) {
		key := "service.name"
		if src := s.Tags[tagServiceSource]; src != "" {
			key = src
		}
		sp.Resource = map[string]traceql.Value{key: traceql.Str(svc)}
	}
	for _, k := range scope {
		v, ok := s.Tags[k]
		if o, recorded := s.Origin(k); !ok || recorded && o.From == zipkin.FromNone {
			continue
		}
		if k == scope[0] {
			sp.ScopeName = v
		} else {
			sp.ScopeVersion = v
		}
	}
	sp.ScopeAttrs = map[string]traceql.Value{}
}

// scopeTags are the keys of the tags that hold a span's scope: name, version.
type scopeTags [2]string

// scopeTagsOf are the tags that hold the scope of s, a span from OTLP:
// otel.library.*, as the pinned translator writes it, unless s was stored
// before the pin with its scope in otel.scope.*. recordOrigins records an
// origin for every otel.scope.* tag of a span stored since, so a tag there
// without one is such a scope.
func scopeTagsOf(s *zipkin.Span) scopeTags {
	if _, ok := s.Tags[tagLibraryName]; !ok {
		for _, k := range [...]string{tagLegacyScopeName, tagLegacyScopeVersion} {
			if _, tagged := s.Tags[k]; tagged {
				if _, recorded := s.Origin(k); !recorded {
					return scopeTags{tagLegacyScopeName, tagLegacyScopeVersion}
				}
			}
		}
	}
	return scopeTags{tagLibraryName, tagLibraryVersion}
}

// otlpTag places tag k=v of a span from OTLP where its origin says, with
// its type; a tag without one is otlpDefault's, a string.
func otlpTag(s *zipkin.Span, sp *traceql.Span, scope scopeTags, k, v string) {
	if isScopeTag(k) || k == scope[0] || k == scope[1] || k == tagServiceSource {
		return
	}
	o, ok := s.Origin(k)
	if !ok {
		o = zipkin.TagOrigin{Key: k, From: otlpDefault(k), Type: zipkin.TypeString}
	}
	var dst *map[string]traceql.Value
	switch o.From {
	case zipkin.FromSpan:
		dst = &sp.Attrs
	case zipkin.FromResource:
		dst = &sp.Resource
	case zipkin.FromScope:
		dst = &sp.ScopeAttrs
	default:
		return // made by the translation
	}
	if *dst == nil {
		*dst = map[string]traceql.Value{}
	}
	(*dst)[k] = typed(v, o.Type)
}

// typed is a tag's value as the type it had in OTLP; pdata wrote it
// (Value.AsString) so that it parses back to the same value.
func typed(v string, t byte) traceql.Value {
	switch t {
	case zipkin.TypeInt:
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return traceql.Int(n)
		}
	case zipkin.TypeDouble:
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return traceql.Float(f)
		}
	case zipkin.TypeBool:
		if b, err := strconv.ParseBool(v); err == nil {
			return traceql.Bool(b)
		}
	}
	return traceql.Str(v)
}

// statusCodes is the translator's reading of otel.status_code; any other
// value is unset.
var statusCodes = map[string]string{
	"STATUS_CODE_UNSET": "unset", "STATUS_CODE_OK": "ok", "STATUS_CODE_ERROR": "error",
	"Unset": "unset", "Ok": "ok", "Error": "error",
}

func isSpecialTag(k string) bool {
	switch k {
	case tagError, tagSpanKind, tagStatusCode, tagStatusMessage, tagTraceState:
		return true
	}
	return strings.HasPrefix(k, tagLinkPrefix)
}

// keepSpecial says whether special tag k=v stays a span attribute: when
// the translator did not take it for what it means on this span.
func keepSpecial(s *zipkin.Span, k, v string, links int) bool {
	switch k {
	case tagTraceState:
		return false
	case tagError:
		return v != "true"
	case tagSpanKind:
		return knownKind(s.Kind)
	case tagStatusCode:
		return false
	case tagStatusMessage:
		_, coded := s.Tags[tagStatusCode]
		return !coded
	}
	// otlp.link.N: the translator takes them from 0 up to the first gap.
	n, err := strconv.Atoi(k[len(tagLinkPrefix):])
	return err != nil || n >= links || strconv.Itoa(n) != k[len(tagLinkPrefix):]
}

// knownKind is whether the translator takes the kind from the span's
// kind rather than from a span.kind tag.
func knownKind(k zipkin.Kind) bool {
	switch k {
	case zipkin.KindClient, zipkin.KindServer, zipkin.KindProducer, zipkin.KindConsumer:
		return true
	}
	return false
}

// endpointAttrs are the endpoints' attributes, with the addresses written
// as net.IP writes them (an IPv4-mapped IPv6 address as IPv4) and the
// port as a uint16, which is what zipkin-go's model holds.
func endpointAttrs(s *zipkin.Span, attrs map[string]traceql.Value) {
	if e := s.LocalEndpoint; endpointPresent(e) {
		address(attrs, e, "net.host.ip", "net.host.port")
	}
	if e := s.RemoteEndpoint; endpointPresent(e) {
		if e.ServiceName != "" {
			attrs["peer.service"] = traceql.Str(e.ServiceName)
		}
		address(attrs, e, "net.peer.ip", "net.peer.port")
	}
}

// address sets an endpoint's address (IPv6 over IPv4 when both are set,
// as the translator does) and port under these keys.
func address(attrs map[string]traceql.Value, e *zipkin.Endpoint, addrKey, portKey string) {
	if e.IPv4.IsValid() {
		attrs[addrKey] = traceql.Str(net.IP(e.IPv4.AsSlice()).String())
	}
	if e.IPv6.IsValid() {
		attrs[addrKey] = traceql.Str(net.IP(e.IPv6.AsSlice()).String())
	}
	if p := uint16(e.Port); p > 0 {
		attrs[portKey] = traceql.Int(int64(p))
	}
}

// endpointPresent is whether zipkin-go's JSON decoding gives the endpoint
// (toModelEndpoint in the tests).
func endpointPresent(e *zipkin.Endpoint) bool {
	return e != nil && (e.ServiceName != "" || e.IPv4.IsValid() || e.IPv6.IsValid() || e.Port != 0)
}

type spanLinks struct {
	links    []traceql.Link
	consumed int // otlp.link.0 … otlp.link.(consumed-1)
}

// linksOf reads OTLP links carried as otlp.link.N tags
// ("traceID|spanID|traceState|{attributes}|dropped"), as the translator
// does: from N = 0 up to the first missing, at most 128; with fewer than
// five parts the tag is dropped; a part that does not parse fails the
// whole trace, as it fails the translator's.
func linksOf(tags map[string]string) (spanLinks, error) {
	var out spanLinks
	for i := range 128 {
		val, ok := tags[tagLinkPrefix+strconv.Itoa(i)]
		if !ok {
			break
		}
		out.consumed++
		parts := strings.Split(val, "|")
		if len(parts) < 5 {
			continue
		}
		var tid [16]byte
		var sid [8]byte
		if err := decodeID(tid[:], parts[0]); err != nil {
			return out, err
		}
		if err := decodeID(sid[:], parts[1]); err != nil {
			return out, err
		}
		attrs, err := jsonAttrs(strings.Join(parts[3:len(parts)-1], "|"), parts[len(parts)-1])
		if err != nil {
			return out, err
		}
		out.links = append(out.links, traceql.Link{TraceID: hex.EncodeToString(tid[:]), SpanID: hex.EncodeToString(sid[:]),
			TraceState: parts[2], Attrs: attrs})
	}
	return out, nil
}

// eventOf is an annotation as an event: "name|{attributes}|dropped" when
// it has three parts or more, else all of it before a | is the name.
func eventOf(a zipkin.Annotation) (traceql.Event, error) {
	parts := strings.Split(a.Value, "|")
	ev := traceql.Event{Name: parts[0], Time: time.UnixMicro(a.Timestamp).UnixNano()}
	if len(parts) < 3 {
		return ev, nil
	}
	attrs, err := jsonAttrs(strings.Join(parts[1:len(parts)-1], "|"), parts[len(parts)-1])
	ev.Attrs = attrs
	return ev, err
}

// jsonAttrs is the translator's reading of a link's or an event's
// attributes: a JSON object whose strings, booleans and numbers (integers
// when whole) are kept, and a dropped count that must parse.
func jsonAttrs(object, dropped string) (map[string]traceql.Value, error) {
	var m map[string]any
	if err := json.Unmarshal([]byte(object), &m); err != nil {
		return nil, err
	}
	var out map[string]traceql.Value
	for k, v := range m {
		var tv traceql.Value
		switch v := v.(type) {
		case string:
			tv = traceql.Str(v)
		case float64:
			if math.Mod(v, 1.0) == 0.0 {
				tv = traceql.Int(int64(v))
			} else {
				tv = traceql.Float(v)
			}
		case bool:
			tv = traceql.Bool(v)
		default:
			continue
		}
		if out == nil {
			out = map[string]traceql.Value{}
		}
		out[k] = tv
	}
	if _, err := strconv.ParseUint(dropped, 10, 32); err != nil {
		return nil, err
	}
	return out, nil
}

// decodeID decodes an ID as the translator does: quotes allowed around it,
// empty is all zeros.
func decodeID(dst []byte, s string) error {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	if s == "" {
		return nil
	}
	if hex.DecodedLen(len(s)) != len(dst) {
		return errors.New("invalid length for ID")
	}
	if _, err := hex.Decode(dst, []byte(s)); err != nil {
		return fmt.Errorf("cannot unmarshal ID from string '%s': %w", s, err)
	}
	return nil
}

func spanHex(id uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], id)
	return hex.EncodeToString(b[:])
}

// tagRoles is what the translator makes of an ordinary tag (one that is
// not special): the span attribute keys it becomes (none for a resource
// key; http.status_code is renamed) and the resource keys it becomes on
// the first span of a service's group.
type tagRoles struct{ span, resource []string }

// tagRoleCache holds the translator's answer per tag key: tag keys are
// few in practice, but nothing bounds them, so past tagRoleLimit keys
// are asked each time rather than kept.
var (
	tagRoleCache sync.Map // string → tagRoles
	tagRoleCount atomic.Int64
)

const tagRoleLimit = 10_000

func tagRolesOf(k string) tagRoles {
	if r, ok := tagRoleCache.Load(k); ok {
		return r.(tagRoles)
	}
	r := askTranslator(k)
	if tagRoleCount.Add(1) <= tagRoleLimit {
		tagRoleCache.Store(k, r)
	}
	return r
}

// askTranslator translates one client span of service probeService with
// the single tag k = probeValue and sees where the value lands.
func askTranslator(k string) tagRoles {
	const probeService, probeValue = "zipq-probe-service", "\x00zipq-probe-value"
	m := &zipkinmodel.SpanModel{
		SpanContext: zipkinmodel.SpanContext{TraceID: zipkinmodel.TraceID{Low: 1}, ID: 1},
		Kind:        zipkinmodel.Client, Timestamp: time.UnixMicro(1),
		LocalEndpoint: &zipkinmodel.Endpoint{ServiceName: probeService},
		Tags:          map[string]string{k: probeValue},
	}
	td, err := zipkinv2.ToTranslator{}.ToTraces([]*zipkinmodel.SpanModel{m})
	var r tagRoles
	if err != nil || td.ResourceSpans().Len() != 1 {
		return tagRoles{span: []string{k}} // not reached: the probe is valid
	}
	rs := td.ResourceSpans().At(0)
	for rk, v := range rs.Resource().Attributes().All() {
		if v.Str() == probeValue {
			r.resource = append(r.resource, rk)
		}
	}
	ss := rs.ScopeSpans().At(0).Spans().At(0)
	for ak, v := range ss.Attributes().All() {
		if v.Str() == probeValue {
			r.span = append(r.span, ak)
		}
	}
	return r
}

// SpanColumns encodes spans for TraceQL scans (traceql.EncodeColumns):
// each of traces is the spans of one trace a block holds, parts merged.
// The columns hold only what a span's own fields give (spanOf), so the
// grouping into resources and the tree TraceQLTrace also builds are
// skipped: they cost a third of this on the write path. A trace whose
// model cannot be made is left out, as a search skips it.
func SpanColumns(traces [][]zipkin.Span) (names []string, sections [][]byte, err error) {
	models := make([]*traceql.Trace, 0, len(traces))
	var raw [16]byte
next:
	for _, spans := range traces {
		if len(spans) == 0 {
			continue
		}
		m := &traceql.Trace{Spans: make([]*traceql.Span, 0, len(spans))}
		for i := range spans {
			sp, err := spanOf(&spans[i])
			if err != nil || spans[i].TraceID != spans[0].TraceID {
				continue next
			}
			m.Spans = append(m.Spans, sp)
		}
		binary.BigEndian.PutUint64(raw[:8], spans[0].TraceID.High)
		binary.BigEndian.PutUint64(raw[8:], spans[0].TraceID.Low)
		m.ID = hex.EncodeToString(raw[:])
		models = append(models, m)
	}
	return traceql.EncodeColumns(models)
}
