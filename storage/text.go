package storage

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

// hash32 is how span_index stores names and terms: the low 32 bits of
// xxhash64 of the text as the span holds it. Stored rows depend on it, so
// it never changes. Collisions only add search candidates, which the exact
// check on the spans (spanMatches) removes.
func hash32(s string) int32 { return int32(xxhash.Sum64String(s)) }

// nameKey is zipq_key(a, b) of migration 00007: the key the name tables
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
