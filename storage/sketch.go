package storage

import (
	"errors"
	"fmt"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"
)

// span_stats.sketch: the durations (µs) of a cell's spans as a DDSketch
// (github.com/DataDog/sketches-go) — mergeable, so minutes add up to hours
// and a Services page's range, with a relative-error guarantee a
// fixed-bucket histogram cannot give over a day's range of latencies.
//
// Stored as one version byte, then the library's own encoding without the
// index mapping, which the version names: v1 is a logarithmic mapping with
// SketchAccuracy. Durations of 0 (a span without one) are not added: they
// are not latencies.
const (
	sketchV1 = 1
	// SketchAccuracy is the sketches' relative accuracy: a quantile read
	// from them is within 1 % of the exact one.
	SketchAccuracy = 0.01
)

// sketchMapping is v1's index mapping.
var sketchMapping = func() mapping.IndexMapping {
	m, err := mapping.NewLogarithmicMapping(SketchAccuracy)
	if err != nil {
		panic(err) // a constant accuracy in (0, 1)
	}
	return m
}()

var errBadSketch = errors.New("stored sketch is corrupt")

// newSketch is an empty sketch of the stored kind. Buffered paginated
// stores (the library's default): small while a cell's durations cover a
// few bins, and quantiles without sorting — the sparse store sorted its
// bins for every quantile, a third of a Services page's read.
func newSketch() *ddsketch.DDSketch {
	return ddsketch.NewDDSketchFromStoreProvider(sketchMapping, store.BufferedPaginatedStoreConstructor)
}

// encodeSketch appends s's stored form to b.
func encodeSketch(b []byte, s *ddsketch.DDSketch) []byte {
	b = append(b, sketchV1)
	s.Encode(&b, true)
	return b
}

// mergeSketch adds a stored sketch into s.
func mergeSketch(s *ddsketch.DDSketch, b []byte) error {
	if len(b) == 0 || b[0] != sketchV1 {
		return fmt.Errorf("%w: version %v", errBadSketch, b[:min(len(b), 1)])
	}
	if err := s.DecodeAndMergeWith(b[1:]); err != nil {
		return fmt.Errorf("%w: %w", errBadSketch, err)
	}
	return nil
}
