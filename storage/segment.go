package storage

import (
	"bytes"
	"cmp"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/zstd"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/zipq/zipq/zipkin"
)

// A segment is all the spans of one trace that one batch wrote: their
// canonical proto3 encodings (zipkin.MarshalCanonical) concatenated as a
// proto3 ListOfSpans — field 1, length-delimited, once per span — and
// compressed with zstd. Readers split it without decoding the spans, so a
// span's identity for de-duplication is the hash of its canonical bytes.

// dictV1 is a zstd dictionary trained (zstd --train, scripts/train-dict.sh)
// on segments of the benchmark's realistic spans. Segments record the id of
// the dictionary they were compressed with, so a later one can replace it
// for new segments while old ones stay readable.
//
//go:embed dict/v1.zdict
var dictV1 []byte

const currentDict = 1

var (
	codecOnce sync.Once
	encoderV1 *zstd.Encoder
	decoderV1 *zstd.Decoder
	codecErr  error
)

// codec is the shipped dictionary's encoder and decoder; learned ones are
// added by dicts.go.
func codec() (*zstd.Encoder, *zstd.Decoder, error) {
	codecOnce.Do(func() {
		encoderV1, codecErr = newEncoder(dictV1)
		if codecErr != nil {
			return
		}
		decoderV1, codecErr = newDecoder(dictV1)
	})
	return encoderV1, decoderV1, codecErr
}

// canonicalSpan is one span with its canonical encoding.
type canonicalSpan struct {
	span  *zipkin.Span
	bytes []byte
	start int64
}

// segment is one trace's spans from one batch, ready to store.
type segment struct {
	id    zipkin.TraceID
	ts    int64 // earliest start of a dated span (see storedAt), µs
	uid   int64
	spans []canonicalSpan
	data  []byte // compressed
	dict  int16  // zstd_dicts id of the dictionary data was compressed with
}

// buildSegments groups a batch's spans by trace ID and encodes each group
// as a segment. Spans are ordered by start time, then ID and kind, so the
// same spans always give the same bytes (and seg_uid); a span given twice
// in a batch is kept once.
func buildSegments(spans []zipkin.Span, arrival int64, c *segmentCodec) ([]*segment, error) {
	byTrace := map[zipkin.TraceID]*segment{}
	var order []*segment
	for i := range spans {
		sp := &spans[i]
		b, err := sp.MarshalCanonical(nil)
		if err != nil {
			return nil, fmt.Errorf("encode span %s/%s: %w", sp.TraceID, sp.ID, err)
		}
		seg := byTrace[sp.TraceID]
		if seg == nil {
			seg = &segment{id: sp.TraceID}
			byTrace[sp.TraceID] = seg
			order = append(order, seg)
		}
		seg.spans = append(seg.spans, canonicalSpan{span: sp, bytes: b, start: sp.StartTime()})
	}
	for _, seg := range order {
		slices.SortFunc(seg.spans, compareCanonical)
		seg.spans = slices.CompactFunc(seg.spans, func(a, b canonicalSpan) bool { return string(a.bytes) == string(b.bytes) })
		encodeSegment(seg, arrival, c)
	}
	return order, nil
}

// encodeSegment fills in a segment's date, identity and compressed bytes
// from its spans, which are in compareCanonical order without repeats;
// arrival (µs) is when they were received (storedAt); c compresses.
func encodeSegment(seg *segment, arrival int64, c *segmentCodec) *segment {
	raw := rawSegment(seg, arrival)
	seg.data, seg.dict = c.enc.EncodeAll(raw, make([]byte, 0, len(raw)/3)), c.id
	return seg
}

// rawSegment fills in a segment's date and identity as encodeSegment does
// and returns its uncompressed payload.
func rawSegment(seg *segment, arrival int64) []byte {
	// Dated by its earliest dated span: an undated piece (a late "finish"
	// without timestamp) must not pin the segment to the epoch. Then
	// storedAt keeps every date retention can reach.
	seg.ts = 0
	for _, cs := range seg.spans {
		if cs.start != 0 {
			seg.ts = cs.start
			break
		}
	}
	seg.ts = storedAt(seg.ts, arrival)
	size := 0
	for _, cs := range seg.spans {
		size += len(cs.bytes) + 6
	}
	raw := make([]byte, 0, size)
	for _, cs := range seg.spans {
		raw = protowire.AppendTag(raw, fieldSpan, protowire.BytesType)
		raw = protowire.AppendBytes(raw, cs.bytes)
	}
	seg.uid = int64(xxhash.Sum64(raw))
	return raw
}

// compareCanonical is the stable order of spans in a segment and in a
// trace read back: by start time, span ID, kind (client half before
// server half), then bytes.
func compareCanonical(a, b canonicalSpan) int {
	switch {
	case a.start != b.start:
		return cmp.Compare(a.start, b.start)
	case a.span.ID != b.span.ID:
		return cmp.Compare(a.span.ID, b.span.ID)
	case a.span.Kind != b.span.Kind:
		return cmp.Compare(a.span.Kind, b.span.Kind)
	}
	return slices.Compare(a.bytes, b.bytes)
}

var errCorruptSegment = errors.New("stored segment is corrupt")

// splitSegment decompresses a segment and calls fn with each span's
// canonical bytes (valid until the next segment is split).
func splitSegment(data []byte, buf []byte, fn func(canonical []byte) error) ([]byte, error) {
	raw, err := decompress(data, buf)
	if err != nil {
		return raw, err
	}
	return raw, splitRaw(raw, fn)
}

// decompress is a segment's or a block's uncompressed bytes, in buf.
func decompress(data []byte, buf []byte) ([]byte, error) {
	dec, err := decoder()
	if err != nil {
		return buf, err
	}
	raw, err := dec.DecodeAll(data, buf[:0])
	if err != nil {
		return buf, fmt.Errorf("%w: %w", errCorruptSegment, err)
	}
	return raw, nil
}

// decompressPrefix is at least the first n uncompressed bytes of a block,
// in buf: a stream decoder stops at the end of the zstd block (128 KB)
// holding byte n, where DecodeAll decodes the whole frame. A block of
// OTel-like traces is a few hundred KB uncompressed, and a reader wants
// one member of it.
func decompressPrefix(data []byte, buf []byte, n int) ([]byte, error) {
	dec, err := decoder()
	if err != nil {
		return buf, err
	}
	sd, _ := streamDecoders.Get().(*streamDecoder)
	if sd == nil || sd.of != dec {
		if sd != nil {
			sd.dec.Close()
		}
		sd = &streamDecoder{of: dec}
		if sd.dec, err = newStreamDecoder(); err != nil {
			return buf, err
		}
	}
	defer streamDecoders.Put(sd)
	// A bytes.Reader, not a bytes.Buffer: the decoder decodes a Buffer
	// whole (its shortcut for input in memory).
	if err := sd.dec.Reset(bytes.NewReader(data)); err != nil {
		return buf, fmt.Errorf("%w: %w", errCorruptSegment, err)
	}
	out := buf[:0]
	for len(out) < n {
		if len(out) == cap(out) {
			out = slices.Grow(out, max(n-len(out), 64<<10))
		}
		k, err := sd.dec.Read(out[len(out):cap(out)])
		out = out[:len(out)+k]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return out, fmt.Errorf("%w: %w", errCorruptSegment, err)
		}
	}
	return out, nil
}

// splitRaw calls fn with each span's canonical bytes of an uncompressed
// segment payload, or of a member's entry in a block.
func splitRaw(raw []byte, fn func(canonical []byte) error) error {
	return splitEntry(raw, fn, nil)
}

// A payload is a protobuf ListOfSpans: field 1, a span's canonical bytes,
// repeated. A member's entry in a block may also hold field 2 once, ahead
// of its spans: the trace's links record (appendLinksRecord), moved there
// from trace_links when its day was packed (pack.go).
const (
	fieldSpan  = 1
	fieldLinks = 2
)

// splitEntry is splitRaw that also calls links, if not nil, with an
// entry's links record; fn may be nil too.
func splitEntry(raw []byte, fn, links func([]byte) error) error {
	for len(raw) > 0 {
		num, typ, n := protowire.ConsumeTag(raw)
		if n < 0 || (num != fieldSpan && num != fieldLinks) || typ != protowire.BytesType {
			return fmt.Errorf("%w: bad tag", errCorruptSegment)
		}
		raw = raw[n:]
		b, n := protowire.ConsumeBytes(raw)
		if n < 0 {
			return fmt.Errorf("%w: truncated span", errCorruptSegment)
		}
		raw = raw[n:]
		call := fn
		if num == fieldLinks {
			call = links
		}
		if call == nil {
			continue
		}
		if err := call(b); err != nil {
			return err
		}
	}
	return nil
}

// traceBuilder merges a trace's segments into its spans: each distinct
// span once, whichever segments hold it (a redelivered message can store a
// span in two segments cut differently), in compareCanonical order.
type traceBuilder struct {
	seen     map[uint64]bool
	spans    []canonicalSpan
	segments []segKey // the segments merged, for compaction
}

func (t *traceBuilder) add(canonical []byte) error {
	if t.seen == nil {
		t.seen = map[uint64]bool{}
	}
	h := xxhash.Sum64(canonical)
	if t.seen[h] {
		return nil
	}
	t.seen[h] = true
	sp := new(zipkin.Span)
	if err := zipkin.UnmarshalCanonical(canonical, sp); err != nil {
		return fmt.Errorf("stored span unreadable: %w", err)
	}
	t.spans = append(t.spans, canonicalSpan{span: sp, bytes: slices.Clone(canonical), start: sp.StartTime()})
	return nil
}

// stored is the earliest date the trace's segments are stored under.
func (t *traceBuilder) stored() int64 {
	var ts int64
	for i, k := range t.segments {
		if u := k.ts.UnixMicro(); i == 0 || u < ts {
			ts = u
		}
	}
	return ts
}

// merged is the trace's spans as one segment (what compaction stores),
// dated by the same rule as its parts, with their earliest date standing
// for the arrival: a rewrite never moves a trace to a later day.
func (t *traceBuilder) merged(id zipkin.TraceID, c *segmentCodec) *segment {
	slices.SortFunc(t.spans, compareCanonical)
	return encodeSegment(&segment{id: id, spans: t.spans}, t.stored(), c)
}

func (t *traceBuilder) result() []zipkin.Span {
	slices.SortFunc(t.spans, compareCanonical)
	out := make([]zipkin.Span, len(t.spans))
	for i, cs := range t.spans {
		out[i] = *cs.span
	}
	return out
}
