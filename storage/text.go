package storage

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode/utf8"

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

// maxNameLen bounds the names kept in the name tables (services, span
// names, remote services, autocomplete values), whose primary keys are
// B-trees with a row limit of ~2.7 kB: a 10 KB span name must not make its
// batch unstorable. Longer names are cut at a character boundary and marked
// with "…"; the span keeps the whole name, and search, which uses hashes
// of the whole name, still finds it by it.
const maxNameLen = 1000

func nameText(s string) string {
	s = pgText(s)
	if len(s) <= maxNameLen {
		return s
	}
	cut := maxNameLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
