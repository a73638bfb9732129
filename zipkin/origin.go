package zipkin

import (
	"cmp"
	"fmt"
	"slices"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// TagOrigin says what one tag of a span translated from OpenTelemetry was
// there, where its Zipkin form does not: Zipkin tags are strings on the
// span, while an OTLP attribute has a type and belongs to the span, its
// resource or its instrumentation scope. Search by TraceQL reads it so
// that an OTLP span keeps its attributes' types and scopes, as Tempo
// keeps them. Spans sent as Zipkin have none.
//
// It travels and is stored as proto3 field 100 of the span (repeated
// bytes: From, Type, then the key), and FromOTLP as field 101 (varint 1):
// zipkin.proto does not define them, so any other reader of the bytes
// skips them as unknown fields.
type TagOrigin struct {
	Key  string
	From byte // FromSpan, FromResource, FromScope or FromNone
	Type byte // TypeString, TypeInt, TypeDouble or TypeBool
}

// Where a tag came from, and what type its value had.
const (
	FromSpan     = 's' // a span attribute
	FromResource = 'r' // a resource attribute
	FromScope    = 'i' // an instrumentation scope attribute
	FromNone     = '-' // made by the translation, not an attribute

	TypeString = 's'
	TypeInt    = 'i'
	TypeDouble = 'd'
	TypeBool   = 'b'
)

const originField, otlpField = 100, 101

func (o TagOrigin) valid() error {
	switch {
	case o.From != FromSpan && o.From != FromResource && o.From != FromScope && o.From != FromNone:
		return fmt.Errorf("tag origin %q: unknown source %q", o.Key, o.From)
	case o.Type != TypeString && o.Type != TypeInt && o.Type != TypeDouble && o.Type != TypeBool:
		return fmt.Errorf("tag origin %q: unknown type %q", o.Key, o.Type)
	case !utf8.ValidString(o.Key):
		return fmt.Errorf("tag origin: key is not UTF-8")
	}
	return nil
}

// normalizeOrigins sorts origins by key, keeps the last of a key given
// twice, and drops those of keys the span has no tag for, so that equal
// spans encode equally.
func normalizeOrigins(os []TagOrigin, tags map[string]string) []TagOrigin {
	if len(os) == 0 {
		return nil
	}
	slices.SortStableFunc(os, func(a, b TagOrigin) int { return cmp.Compare(a.Key, b.Key) })
	out := os[:0]
	for i, o := range os {
		if _, ok := tags[o.Key]; !ok || i+1 < len(os) && os[i+1].Key == o.Key {
			continue
		}
		out = append(out, o)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// SetOrigins marks s as translated from OTLP, with the origins of its tags.
func (s *Span) SetOrigins(os []TagOrigin) {
	s.FromOTLP, s.Origins = true, normalizeOrigins(os, s.Tags)
}

// Origin is the origin recorded for tag key, if any.
func (s *Span) Origin(key string) (TagOrigin, bool) {
	i, ok := slices.BinarySearchFunc(s.Origins, key, func(o TagOrigin, k string) int { return cmp.Compare(o.Key, k) })
	if !ok {
		return TagOrigin{}, false
	}
	return s.Origins[i], true
}

func appendOrigins(b []byte, fromOTLP bool, os []TagOrigin) []byte {
	for _, o := range os {
		b = protowire.AppendTag(b, originField, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(2+len(o.Key)))
		b = append(b, o.From, o.Type)
		b = append(b, o.Key...)
	}
	if fromOTLP {
		b = protowire.AppendTag(b, otlpField, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	return b
}

// readOrigins reads the origin fields among a span's unknown fields.
func readOrigins(unknown []byte) (fromOTLP bool, _ []TagOrigin, _ error) {
	var out []TagOrigin
	err := fields(unknown, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		if num == otlpField {
			if typ != protowire.VarintType {
				return fmt.Errorf("from OTLP: wire type %d", typ)
			}
			fromOTLP = x != 0
			return nil
		}
		if num != originField {
			return nil
		}
		if typ != protowire.BytesType || len(v) < 2 {
			return fmt.Errorf("tag origin: want 2 code bytes and a key, got %d bytes", len(v))
		}
		o := TagOrigin{From: v[0], Type: v[1], Key: string(v[2:])}
		if err := o.valid(); err != nil {
			return err
		}
		out = append(out, o)
		return nil
	})
	return fromOTLP, out, err
}
