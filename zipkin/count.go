package zipkin

import "google.golang.org/protobuf/encoding/protowire"

// MaxSpansPerMessage bounds how many spans one message or request may
// hold. Decoding costs a few hundred bytes of memory per span whatever the
// span holds, so 5 MiB of empty spans (`[{},{},…]`, 1.7 million of them)
// took a gigabyte before being refused; the count is taken by a scan that
// allocates nothing, before decoding.
const MaxSpansPerMessage = 100_000

// tooManySpans refuses a list of n spans past MaxSpansPerMessage.
func tooManySpans(n int) error {
	if n <= MaxSpansPerMessage {
		return nil
	}
	return reject(ReasonTooLarge, -1, "%d spans in one message, limit %d: send smaller batches", n, MaxSpansPerMessage)
}

// jsonListLen counts the elements of a JSON list's top level, scanning
// strings and nesting only (malformed JSON is the decoder's to refuse).
func jsonListLen(body []byte) int {
	depth, n, empty := 0, 0, true
	for i := 0; i < len(body); i++ {
		switch c := body[i]; c {
		case '[', '{':
			if depth == 1 && empty {
				n, empty = n+1, false
			}
			depth++
		case ']', '}':
			depth--
		case ',':
			if depth == 1 {
				empty = true
			}
		case '"':
			if depth == 1 && empty {
				n, empty = n+1, false
			}
			for i++; i < len(body) && body[i] != '"'; i++ {
				if body[i] == '\\' {
					i++
				}
			}
		case ' ', '\t', '\r', '\n':
		default:
			if depth == 1 && empty {
				n, empty = n+1, false
			}
		}
	}
	return n
}

// ProtoFieldCount counts the occurrences of field num in a protobuf
// message's top level, reading tags and lengths only; -1 when the bytes
// are not a well-formed message.
func ProtoFieldCount(b []byte, num protowire.Number, fn func(field []byte) int) int {
	n := 0
	for len(b) > 0 {
		f, typ, k := protowire.ConsumeTag(b)
		if k < 0 {
			return -1
		}
		b = b[k:]
		m := protowire.ConsumeFieldValue(f, typ, b)
		if m < 0 {
			return -1
		}
		if f == num && typ == protowire.BytesType {
			if fn == nil {
				n++
			} else {
				v, _ := protowire.ConsumeBytes(b[:m])
				c := fn(v)
				if c < 0 {
					return -1
				}
				n += c
			}
		}
		b = b[m:]
	}
	return n
}
