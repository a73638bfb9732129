package storage

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zipq/zipq/zipkin"
)

// The stats job keeps span_stats small: it folds the rows writers append
// (one per cell and batch) into one row per cell and minute once the
// minute is over, folds minutes into hours once they are a day old
// (statsHourlyAfter), and deletes rows older than StatsRetention. Late
// rows (a backlog drained an hour later, a skewed clock) are folded when
// they come, into the minute or hour of their spans.

// statsHourlyAfter is the age after which minutes are rolled up to hours.
const statsHourlyAfter = 24 * time.Hour

// statsFoldDelay keeps the job off the minute writers are filling.
const statsFoldDelay = time.Minute

// FoldStats does one round of the stats job as of now and reports whether
// more is left. One process per schema runs it at a time (an advisory
// lock); others return false.
func (s *Store) FoldStats(ctx context.Context, now time.Time) (more bool, err error) {
	err = s.job(ctx, "stats", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM span_stats WHERE ts < $1`, now.Add(-s.cfg.StatsRetention)); err != nil {
			return fmt.Errorf("stats retention: %w", err)
		}
		hourly := now.Add(-statsHourlyAfter).UTC().Truncate(time.Hour)
		var oldest *time.Time
		if err := tx.QueryRow(ctx, `SELECT min(ts) FROM span_stats WHERE res = 60 AND ts < $1`, hourly).Scan(&oldest); err != nil {
			return fmt.Errorf("stats: find hours to fold: %w", err)
		}
		if oldest != nil {
			more = true
			return fold(ctx, tx, oldest.UTC().Truncate(time.Hour), time.Hour)
		}
		if err := tx.QueryRow(ctx, `SELECT min(ts) FROM span_stats WHERE NOT merged AND ts < $1`, now.Add(-statsFoldDelay)).Scan(&oldest); err != nil {
			return fmt.Errorf("stats: find minutes to fold: %w", err)
		}
		if oldest != nil {
			more = true
			return fold(ctx, tx, oldest.UTC().Truncate(time.Minute), time.Minute)
		}
		return nil
	})
	return more, err
}

// foldChunks is how many slices of the cell hash space fold takes one at
// a time, so that the cells it holds at once are a sixteenth of a minute's
// or an hour's: with 100,000 distinct operations, one pass held 340 MiB
// of sketches (BenchmarkStatsManyOperations).
const foldChunks = 16

// fold replaces every row in [from, from+res) by one merged row per
// tenant and cell, plus each service's total of them. Cells are taken a
// slice of their hash space at a time; the totals (one per service) are
// summed across slices and written last.
func fold(ctx context.Context, tx pgx.Tx, from time.Time, res time.Duration) error {
	left := "NOT merged"
	if res == time.Hour {
		left = "res = 60"
	}
	totals := map[int16]statTally{}
	add := func(byTenant map[int16]statTally, tenant int16, k statKey, a *statAgg) error {
		t := byTenant[tenant]
		if t == nil {
			t = statTally{}
			byTenant[tenant] = t
		}
		if have := t[k]; have != nil {
			return have.merge(a)
		}
		t[k] = a
		return nil
	}
	const width = uint64(1) << 60 // 2^64 / foldChunks
	for c := range uint64(foldChunks) {
		lo := int64(c*width + 1<<63) // wraps: chunk 0 starts at math.MinInt64
		hi := lo + int64(width-1)
		// The rows left to fold, through their partial index: a minute's
		// unmerged rows, an hour's minutes. A minute (or hour) folded again
		// for late spans gets a second merged row, which reads add up like
		// any other.
		rows, err := tx.Query(ctx, `DELETE FROM span_stats WHERE ts >= $1 AND ts < $2 AND cell_h BETWEEN $3 AND $4 AND `+left+`
			RETURNING tenant, `+statsColumns,
			from, from.Add(res), lo, hi)
		if err != nil {
			return fmt.Errorf("stats: take %v from %v: %w", res, from, err)
		}
		cells := map[int16]statTally{}
		var tenant int16
		err = scanStats(rows, []any{&tenant}, func(k statKey, a *statAgg) error {
			if k.cell.total {
				return nil // recomputed from the cells
			}
			k.ts = from.UnixMicro()
			return add(cells, tenant, k, a)
		})
		if err != nil {
			return fmt.Errorf("stats: fold %v from %v: %w", res, from, err)
		}
		b := &pgx.Batch{}
		for tenant, t := range cells {
			for k, a := range t {
				tk := statKey{cell: statCell{service: k.cell.service, total: true}, ts: k.ts}
				if have := totals[tenant][tk]; have != nil {
					if err := have.merge(a); err != nil {
						return fmt.Errorf("stats: total %v from %v: %w", res, from, err)
					}
				} else if err := add(totals, tenant, tk, cloneAgg(a)); err != nil { // its own: a's row is written too
					return fmt.Errorf("stats: total %v from %v: %w", res, from, err)
				}
			}
			b.Queue(insertStats, append([]any{tenant}, t.rows(true, res)...)...)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("stats: write folded %v from %v: %w", res, from, err)
		}
	}
	b := &pgx.Batch{}
	for tenant, t := range totals {
		b.Queue(insertStats, append([]any{tenant}, t.rows(true, res)...)...)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("stats: write totals %v from %v: %w", res, from, err)
	}
	return nil
}

// cloneAgg is a copy of a with a sketch of its own, for a total that
// other cells merge into while a's row is still to be written.
func cloneAgg(a *statAgg) *statAgg {
	c := *a
	c.sketch = a.sketch.Copy()
	return &c
}

// scanStats reads rows of extra columns, then statsColumns, calling fn
// with each row's cell and totals (a fresh sketch each).
func scanStats(rows pgx.Rows, extra []any, fn func(statKey, *statAgg) error) error {
	var (
		ts                      time.Time
		res                     int32
		k                       statKey
		kind                    int16
		calls, errs, sum        int64
		sketch                  []byte
		sHigh, sLow, sSpan, sUs *int64
		eHigh, eLow, eSpan, eUs *int64
		sAt, eAt                *time.Time
	)
	dest := append(slices.Clip(extra), &ts, &res, &k.cell.service, &k.cell.name, &kind, &k.cell.remote, &calls, &errs, &sum, &sketch,
		&sHigh, &sLow, &sSpan, &sUs, &sAt, &eHigh, &eLow, &eSpan, &eUs, &eAt)
	_, err := pgx.ForEachRow(rows, dest, func() error {
		k.cell.kind, k.cell.total = zipkin.Kind(max(kind, 0)), kind == totalKind
		k.ts = ts.UnixMicro()
		a := &statAgg{calls: calls, errors: errs, durSum: sum, sketch: newSketch(),
			slow: exemplarOf(sHigh, sLow, sSpan, sUs, sAt), failed: exemplarOf(eHigh, eLow, eSpan, eUs, eAt)}
		if err := mergeSketch(a.sketch, sketch); err != nil {
			return err
		}
		return fn(k, a)
	})
	return err
}

func exemplarOf(high, low, span, us *int64, at *time.Time) *exemplar {
	if high == nil || low == nil || span == nil || us == nil || at == nil {
		return nil
	}
	return &exemplar{trace: zipkin.TraceID{High: uint64(*high), Low: uint64(*low)}, span: zipkin.SpanID(*span), us: *us, at: at.UnixMicro()}
}

// RunStats runs one round of the stats job every LinkInterval until ctx
// ends: one minute or hour folded a second (60× real time), never back to
// back. While a backlog of spans from the last hour drains, every minute
// of that hour keeps receiving rows; folding them back to back rewrote
// each minute again and again and took the cores the drain needed (with
// the metrics on, the drain ran at 0.79× its rate with them off; one
// round a second: 0.94×, docs/BENCHMARKS.md). Reads are exact whatever
// is left unfolded.
func (s *Store) RunStats(ctx context.Context) error {
	return s.every(ctx, s.cfg.LinkInterval, "stats folding", func(ctx context.Context) (bool, error) {
		_, err := s.FoldStats(ctx, time.Now())
		return false, err
	})
}
