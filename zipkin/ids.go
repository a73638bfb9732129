package zipkin

import (
	"encoding/binary"
	"errors"
)

// TraceID is a 64- or 128-bit Zipkin trace ID. High is zero for 64-bit IDs.
type TraceID struct {
	High, Low uint64
}

// IsZero reports whether the ID is unset (all zeros is never a valid ID).
func (t TraceID) IsZero() bool { return t.High == 0 && t.Low == 0 }

// String renders the ID as Zipkin does: 16 lower-hex characters when the
// high bits are zero, else 32.
func (t TraceID) String() string {
	if t.High == 0 {
		return hex16(t.Low)
	}
	return hex16(t.High) + hex16(t.Low)
}

// Bytes is the proto3 form: 8 bytes for a 64-bit ID, else 16.
func (t TraceID) Bytes() []byte {
	if t.High == 0 {
		return binary.BigEndian.AppendUint64(nil, t.Low)
	}
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 16), t.High)
	return binary.BigEndian.AppendUint64(b, t.Low)
}

// SpanID is a 64-bit span ID; zero means absent (for parent IDs).
type SpanID uint64

// String renders the ID as 16 lower-hex characters.
func (s SpanID) String() string { return hex16(uint64(s)) }

func hex16(v uint64) string {
	var b [16]byte
	const digits = "0123456789abcdef"
	for i := 15; i >= 0; i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
	return string(b[:])
}

var (
	errEmptyID   = errors.New("empty")
	errIDTooLong = errors.New("too long")
	errNotHex    = errors.New("not hex")
	errZeroID    = errors.New("all zeros")
)

// ParseTraceID accepts 1 to 32 hex characters in either case, as Zipkin
// does (shorter IDs are left-padded). A 32-character ID whose high half is
// zero is the same trace as its lower 16 characters.
func ParseTraceID(s string) (TraceID, error) {
	var t TraceID
	switch n := len(s); {
	case n == 0:
		return t, errEmptyID
	case n > 32:
		return t, errIDTooLong
	case n > 16:
		hi, err := parseHex(s[:n-16])
		if err != nil {
			return t, err
		}
		lo, err := parseHex(s[n-16:])
		if err != nil {
			return t, err
		}
		t = TraceID{High: hi, Low: lo}
	default:
		lo, err := parseHex(s)
		if err != nil {
			return t, err
		}
		t = TraceID{Low: lo}
	}
	if t.IsZero() {
		return t, errZeroID
	}
	return t, nil
}

// ParseSpanID accepts 1 to 16 hex characters in either case; all zeros is
// rejected because Zipkin reserves it for "absent".
func ParseSpanID(s string) (SpanID, error) {
	if len(s) == 0 {
		return 0, errEmptyID
	}
	if len(s) > 16 {
		return 0, errIDTooLong
	}
	v, err := parseHex(s)
	if err != nil {
		return 0, err
	}
	if v == 0 {
		return 0, errZeroID
	}
	return SpanID(v), nil
}

func parseHex(s string) (uint64, error) {
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, errNotHex
		}
		v = v<<4 | uint64(d)
	}
	return v, nil
}
