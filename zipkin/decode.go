package zipkin

import (
	"bytes"
	"errors"
)

// Format is a wire encoding of a span list.
type Format uint8

// The formats zipq reads and writes.
const (
	FormatUnknown Format = iota
	FormatJSON
	FormatProto3
)

func (f Format) String() string {
	switch f {
	case FormatJSON:
		return "json"
	case FormatProto3:
		return "proto3"
	}
	return "unknown"
}

// Detect tells the format from the first bytes of a body, as Zipkin's
// SpanBytesDecoderDetector does: '[' is a JSON list, 0x0a (field 1, length
// delimited) a proto3 ListOfSpans, 0x0c a Thrift list.
func Detect(body []byte) (Format, error) {
	if len(body) == 0 {
		return FormatUnknown, reject(ReasonEmpty, -1, "empty body")
	}
	switch body[0] {
	case '[':
		return jsonFormat(body)
	case 0x0a:
		return FormatProto3, nil
	case 0x0c:
		return FormatUnknown, reject(ReasonUnsupported, -1, "thrift encoding is not supported; send JSON v2 or proto3")
	}
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) > 0 && t[0] == '[' {
		return jsonFormat(t)
	}
	if len(bytes.TrimLeft(body, " \t\r\n")) == 0 {
		return FormatUnknown, reject(ReasonEmpty, -1, "blank body")
	}
	return FormatUnknown, reject(ReasonUnknownFormat, -1, "expected a JSON v2 span list or a proto3 ListOfSpans")
}

func jsonFormat(body []byte) (Format, error) {
	// JSON v1 spans carry binaryAnnotations or per-annotation endpoints;
	// zipq stores v2 only and says so instead of misreading them.
	if bytes.Contains(body, []byte(`"binaryAnnotations"`)) && hasSpanKey(body, "binaryAnnotations") {
		return FormatUnknown, reject(ReasonUnsupported, -1, "zipkin JSON v1 is not supported; send JSON v2")
	}
	return FormatJSON, nil
}

// hasSpanKey reports whether a span of a JSON list (an object directly in
// the top-level array) has the key name: a tag value or a nested key that
// happens to read "binaryAnnotations" is not a JSON v1 span. It scans
// tokens only (strings and nesting), so malformed JSON is the decoder's
// to refuse.
func hasSpanKey(body []byte, name string) bool {
	depth := 0
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '[', '{':
			depth++
		case ']', '}':
			depth--
		case '"':
			start := i + 1
			for i++; i < len(body) && body[i] != '"'; i++ {
				if body[i] == '\\' {
					i++
				}
			}
			if depth != 2 || i >= len(body) || string(body[start:i]) != name {
				continue
			}
			// A key is followed by a colon.
			j := i + 1
			for j < len(body) && (body[j] == ' ' || body[j] == '\t' || body[j] == '\r' || body[j] == '\n') {
				j++
			}
			if j < len(body) && body[j] == ':' {
				return true
			}
		}
	}
	return false
}

// Decode detects the format of body and decodes its spans, normalised. An
// error is always a *DecodeError; no spans are returned with it.
func Decode(body []byte) ([]Span, Format, error) {
	f, err := Detect(body)
	if err != nil {
		return nil, f, err
	}
	var spans []Span
	if f == FormatProto3 {
		spans, err = DecodeProto(body)
		// A JSON body that starts with a newline also starts with 0x0a.
		var de *DecodeError
		if errors.As(err, &de) && de.Reason == ReasonMalformedProto {
			if t := bytes.TrimLeft(body, " \t\r\n"); len(t) > 0 && t[0] == '[' {
				if _, jerr := jsonFormat(t); jerr != nil {
					return nil, FormatUnknown, jerr
				}
				spans, err = DecodeJSON(t)
				f = FormatJSON
			}
		}
	} else {
		spans, err = DecodeJSON(body)
	}
	if err != nil {
		return nil, f, err
	}
	return spans, f, nil
}

// Encode renders spans in the given format.
func Encode(f Format, spans []Span) ([]byte, error) {
	if f == FormatProto3 {
		return EncodeProto(spans)
	}
	return EncodeJSON(spans), nil
}
