package query

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/zipq/zipq/storage"
	"github.com/zipq/zipq/zipkin"
)

// TestPickExemplars holds pickExemplars to a brute-force reading of its
// contract on random series: for every slice of the range, the exemplars
// kept are exactly the slice's slowest span and slowest failed span
// (ties to the earlier point), nothing else is kept, and the points are
// otherwise the same and not changed in place.
func TestPickExemplars(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	for round := range 500 {
		step := time.Duration(1+rng.IntN(5)) * time.Minute
		buckets := 1 + rng.IntN(120)
		q := storage.StatsQuery{Start: start, End: start.Add(time.Duration(buckets) * step), Step: step}
		var points []storage.StatsPoint
		for b := range buckets {
			if rng.IntN(3) == 0 {
				continue // a step without calls has no point
			}
			ex := func() *storage.StatsExemplar {
				return &storage.StatsExemplar{TraceID: zipkin.TraceID{Low: rng.Uint64()}, DurationMic: int64(rng.IntN(50))}
			}
			p := storage.StatsPoint{Time: start.Add(time.Duration(b) * step), Calls: 1, Slowest: ex()}
			if rng.IntN(4) == 0 {
				p.Failed = ex()
			}
			points = append(points, p)
		}
		n := rng.IntN(buckets+3) - 1 // -1: none, 0: all
		orig := make([]storage.StatsPoint, len(points))
		copy(orig, points)
		got := pickExemplars(points, n, q)

		for i := range points {
			if points[i].Slowest != orig[i].Slowest || points[i].Failed != orig[i].Failed {
				t.Fatalf("round %d: point %d changed in place", round, i)
			}
		}
		if len(got) != len(points) {
			t.Fatalf("round %d: %d points, want %d", round, len(got), len(points))
		}
		// The oracle: per slice, the index of the slowest and slowest failed.
		wantSlow, wantFailed := map[int]bool{}, map[int]bool{}
		if n > 0 {
			slow, failed := map[int]int{}, map[int]int{}
			for i, p := range points {
				s := int(p.Time.Sub(start)/step) * n / buckets
				if j, ok := slow[s]; !ok || p.Slowest.DurationMic > points[j].Slowest.DurationMic {
					slow[s] = i
				}
				if j, ok := failed[s]; p.Failed != nil && (!ok || p.Failed.DurationMic > points[j].Failed.DurationMic) {
					failed[s] = i
				}
			}
			for _, i := range slow {
				wantSlow[i] = true
			}
			for _, i := range failed {
				wantFailed[i] = true
			}
		}
		for i, p := range got {
			keepAll := n == 0
			ws, wf := keepAll || wantSlow[i], (keepAll || wantFailed[i]) && points[i].Failed != nil
			if (p.Slowest != nil) != ws || (p.Failed != nil) != wf {
				t.Fatalf("round %d (n=%d, %d buckets): point %d kept slowest %v failed %v, want %v %v",
					round, n, buckets, i, p.Slowest != nil, p.Failed != nil, ws, wf)
			}
			if ws && p.Slowest != points[i].Slowest || wf && p.Failed != points[i].Failed {
				t.Fatalf("round %d: point %d kept another exemplar", round, i)
			}
			p.Slowest, p.Failed = points[i].Slowest, points[i].Failed
			if p.Time != points[i].Time || p.Calls != points[i].Calls {
				t.Fatalf("round %d: point %d changed", round, i)
			}
		}
	}
}
