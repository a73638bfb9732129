package storage

// The index keys' encoding: span_index.keys (a span's service, names, tags
// and annotations as 32-bit term keys, appendSpanKeys) and the name
// tables' and dependency_links' 64-bit name-pair keys (nameKey, the same
// as SQL's zipq_key), with the text mapping both apply (pgText, term).

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/zipq/zipq/zipkin"
)

// pgText makes a string storable in a PostgreSQL text column: NUL is the
// one character text cannot hold, and invalid UTF-8 is refused by a UTF8
// database. The full span, byte for byte, is kept in the bytea payload;
// this only affects the indexed copies, and queries apply the same mapping
// so a hostile name still finds itself.
func pgText(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// maxTermLen keeps GIN entries far below PostgreSQL's index row limit.
const maxTermLen = 256

// term is the indexed form of an annotationQuery term. Long terms are
// replaced by a digest so a 10 KB tag value cannot make a batch
// unstorable; the query side applies the same function, so they still match.
func term(s string) string {
	s = pgText(s)
	if len(s) <= maxTermLen {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "\uFFFDsha256:" + hex.EncodeToString(sum[:])
}

// forEachTerm calls fn with every annotationQuery term a span answers to:
// each tag key, each key=value, each annotation value. A bare key in a
// query matches a tag key or an annotation value; key=value matches a tag.
func forEachTerm(sp *zipkin.Span, fn func(string)) {
	for k, v := range sp.Tags {
		fn(k)
		fn(k + "=" + v)
	}
	for _, a := range sp.Annotations {
		fn(a.Value)
	}
}

// Kinds of span_index keys: each is hashed with its own prefix, so a
// service named like a tag cannot answer for it.
const (
	keyService = 's'
	keyRemote  = 'r'
	keyName    = 'n'
	keyTerm    = 't'
)

// key is how span_index stores a name or term: the low 32 bits of xxhash64
// of its kind and the text as the span holds it. Stored rows depend on it,
// so it never changes. Collisions only add search candidates, which the
// exact check on the spans (spanMatches) removes.
func key(kind byte, s string) int32 {
	var d xxhash.Digest
	d.Reset()
	_, _ = d.Write([]byte{kind, 0})
	_, _ = d.WriteString(s)
	return int32(d.Sum64())
}

// valueBits is how many low bits of a key=value term's key come from the
// whole term; the high bits come from the tag key alone, so a tag's values
// share 2^14 keys. A tag with a new value on every span (a URL, a SQL
// statement, an ID) then no longer makes a GIN entry per span, each about
// 57 bytes, but adds a few bytes to a shared entry's posting list: on
// 450k OpenTelemetry-demo-like spans the GIN index fell from 166 to 37
// B/span (docs/BENCHMARKS.md, "A smaller search index"). The price is
// candidates: a search for one such value also nominates the rows of the
// others in its bucket (at 10M spans a day, about 25 an hour of window),
// which the exact check on the spans removes. Two values of one tag share a
// key with odds 1 in 16,384, so a rare value is rarely searched through a
// common one's rows.
const valueBits = 14

// foldValues is off only in a benchmark measuring the whole-term keys
// beside the folded ones in the same run.
var foldValues = true

// termKey is the key of an annotationQuery term (migration 00015). A
// key=value term is split at its first '=' — the query's term and the
// span's "key=value" are split by the same rule, so a tag key holding '='
// still finds itself. Other terms (a bare tag key, an annotation's value)
// keep their whole key.
func termKey(t string) int32 {
	k, _, ok := strings.Cut(t, "=")
	if !ok || !foldValues {
		return key(keyTerm, t)
	}
	const low = int32(1)<<valueBits - 1
	return key(keyTerm, k)&^low | key(keyTerm, t)&low
}

// legacyTermKey is the key rows written before migration 00015 hold for
// a term: the whole term hashed. Search asks for either, so those rows are
// found until retention drops them.
func legacyTermKey(t string) int32 { return key(keyTerm, t) }

// appendSpanKeys adds the keys a span answers to: its local service, span
// name, remote service (when set) and annotationQuery terms.
func appendSpanKeys(keys []int32, sp *zipkin.Span) []int32 {
	keys = append(keys, key(keyService, sp.LocalServiceName()), key(keyName, sp.Name))
	if r := sp.RemoteServiceName(); r != "" {
		keys = append(keys, key(keyRemote, r))
	}
	forEachTerm(sp, func(t string) { keys = append(keys, termKey(t)) })
	return keys
}

// nameKey is zipq_key(a, b) of migration 00005: the key the name tables
// and dependency_links are stored under, so a name of any length fits
// their B-trees. Both sides must agree byte for byte.
func nameKey(a, b string) int64 {
	h := md5.New()
	h.Write(strconv.AppendInt(nil, int64(len(a)), 10))
	h.Write([]byte{':'})
	h.Write([]byte(a))
	h.Write([]byte(b))
	return int64(binary.BigEndian.Uint64(h.Sum(nil)))
}
