package ingest

import (
	"slices"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/zipq/zipq/zipkin"
)

// recordOrigins marks the spans translated from td as from OTLP and
// records what each of their tags was there, where the Zipkin form would
// read otherwise (zipkin.TagOrigin): a typed value, an attribute of the
// resource or scope that the zipkin translator would make a span
// attribute, or a tag the translation made up (a scope attribute or name
// another scope of the resource left behind, since the translator copies
// them into one map per resource). TraceQL then sees the span's
// attributes as they were sent (otlpReading), as Tempo would. spans[i]
// must be the translation of td's i-th span, as FromTraces orders them.
func recordOrigins(td ptrace.Traces, spans []zipkin.Span) {
	i := 0
	var recs []zipkin.TagOrigin
	rss := td.ResourceSpans()
	for r := range rss.Len() {
		rs := rss.At(r)
		resource := map[string]byte{}
		for k, v := range rs.Resource().Attributes().All() {
			resource[k] = valueType(v)
		}
		sss := rs.ScopeSpans()
		for j := range sss.Len() {
			scope := sss.At(j).Scope()
			otlpSpans := sss.At(j).Spans()
			for k := range otlpSpans.Len() {
				if i >= len(spans) {
					return // not reached: one Zipkin span per OTLP span
				}
				s := &spans[i]
				i++
				recs = recs[:0]
				attrs := otlpSpans.At(k).Attributes()
				for key := range s.Tags {
					if isSpecialTag(key) || isScopeTag(key) || key == tagServiceSource {
						continue
					}
					from, typ := byte(zipkin.FromNone), byte(zipkin.TypeString)
					if v, ok := attrs.Get(key); ok {
						from, typ = zipkin.FromSpan, valueType(v)
					} else if v, ok := scope.Attributes().Get(key); ok {
						from, typ = zipkin.FromScope, valueType(v)
					} else if t, ok := resource[key]; ok {
						from, typ = zipkin.FromResource, t
					}
					// An otel.scope.* tag is always recorded: one without a
					// record is a scope stored before the pin (scopeTagsOf).
					legacy := key == tagLegacyScopeName || key == tagLegacyScopeVersion
					if from != otlpDefault(key) || typ != zipkin.TypeString || legacy {
						recs = append(recs, zipkin.TagOrigin{Key: key, From: from, Type: typ})
					}
				}
				for _, kv := range [...][2]string{{tagLibraryName, scope.Name()}, {tagLibraryVersion, scope.Version()}} {
					if _, ok := s.Tags[kv[0]]; ok && kv[1] == "" {
						recs = append(recs, zipkin.TagOrigin{Key: kv[0], From: zipkin.FromNone, Type: zipkin.TypeString})
					}
				}
				s.SetOrigins(slices.Clone(recs))
			}
		}
	}
}

// otlpDefault is where a tag of a span from OTLP with no origin recorded
// came from: the resource when the zipkin translator reads it as a
// resource attribute of that name, else the span, under its own name.
func otlpDefault(key string) byte {
	if r := tagRolesOf(key); len(r.span) == 0 && slices.Contains(r.resource, key) {
		return zipkin.FromResource
	}
	return zipkin.FromSpan
}

func isScopeTag(k string) bool {
	return k == tagLibraryName || k == tagLibraryVersion
}

// valueType is the type TraceQL gives an OTLP value: arrays, maps and
// bytes are compared as their JSON text, a string.
func valueType(v pcommon.Value) byte {
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return zipkin.TypeInt
	case pcommon.ValueTypeDouble:
		return zipkin.TypeDouble
	case pcommon.ValueTypeBool:
		return zipkin.TypeBool
	}
	return zipkin.TypeString
}
