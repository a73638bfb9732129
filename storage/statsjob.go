package storage

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
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
		// By whole hours, so that no strip is left with minutes cut from
		// under it.
		cutoff := now.Add(-s.cfg.StatsRetention).UTC().Truncate(time.Hour)
		for _, table := range []string{"span_stats", "span_stats_batches"} {
			if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE ts < $1`, cutoff); err != nil {
				return fmt.Errorf("stats retention: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM span_strips WHERE hour < $1`, cutoff); err != nil {
			return fmt.Errorf("stats retention: %w", err)
		}
		hourly := now.Add(-statsHourlyAfter).UTC().Truncate(time.Hour)
		var oldest *time.Time
		if err := tx.QueryRow(ctx, `SELECT least((SELECT min(ts) FROM span_stats WHERE res = 60 AND ts < $1),
			(SELECT min(ts) FROM span_stats_batches WHERE ts < $1))`, hourly).Scan(&oldest); err != nil {
			return fmt.Errorf("stats: find hours to fold: %w", err)
		}
		if oldest != nil {
			more = true
			return fold(ctx, tx, oldest.UTC().Truncate(time.Hour), time.Hour)
		}
		if err := tx.QueryRow(ctx, `SELECT least((SELECT min(ts) FROM span_stats WHERE NOT merged AND ts < $1),
			(SELECT min(ts) FROM span_stats_batches WHERE ts < $1))`, now.Add(-statsFoldDelay)).Scan(&oldest); err != nil {
			return fmt.Errorf("stats: find minutes to fold: %w", err)
		}
		if oldest != nil {
			more = true
			return fold(ctx, tx, oldest.UTC().Truncate(time.Minute), time.Minute)
		}
		more, err = backfillStrips(ctx, tx)
		return err
	})
	return more, err
}

// fold replaces every row in [from, from+res) by one merged row per
// tenant and cell, plus each service's total of them: the span_stats rows
// left to fold and the batches' (span_stats_batches). Cells are taken a
// slice of their hash space at a time; the totals (one per service) are
// summed across slices and written last.
func fold(ctx context.Context, tx pgx.Tx, from time.Time, res time.Duration) error {
	left := "NOT merged"
	if res == time.Hour {
		left = "res = 60"
	}
	// The batches are read a slice at a time, so the ones to fold are
	// chosen first: a batch committed while the job reads is left whole
	// for its next round, never folded in part and then deleted.
	var batches []int64
	if err := tx.QueryRow(ctx, `SELECT coalesce(array_agg(id), '{}') FROM span_stats_batches WHERE ts >= $1 AND ts < $2`,
		from, from.Add(res)).Scan(&batches); err != nil {
		return fmt.Errorf("stats: take batches of %v from %v: %w", res, from, err)
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
	for c := range statChunks {
		lo, hi := chunkBounds(c)
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
		if len(batches) > 0 {
			rows, err := tx.Query(ctx, `SELECT tenant, ts, substring(cells FROM chunks[$2::int] + 1 FOR chunks[$2::int + 1] - chunks[$2::int])
				FROM span_stats_batches WHERE id = ANY($1)`, batches, c+1)
			if err != nil {
				return fmt.Errorf("stats: read batches of %v from %v: %w", res, from, err)
			}
			var minute time.Time
			var section []byte
			_, err = pgx.ForEachRow(rows, []any{&tenant, &minute, &section}, func() error {
				return decodeStatBatch(minute.UnixMicro(), section, nil, func(k statKey, a *statAgg) error {
					k.ts = from.UnixMicro()
					return add(cells, tenant, k, a)
				})
			})
			if err != nil {
				return fmt.Errorf("stats: fold batches of %v from %v: %w", res, from, err)
			}
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
			b.Queue(insertStats, append([]any{tenant}, t.rows(res)...)...)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("stats: write folded %v from %v: %w", res, from, err)
		}
	}
	b := &pgx.Batch{}
	if len(batches) > 0 {
		b.Queue(`DELETE FROM span_stats_batches WHERE id = ANY($1)`, batches)
	}
	for tenant, t := range totals {
		b.Queue(insertStats, append([]any{tenant}, t.rows(res)...)...)
	}
	if res == time.Hour {
		// The hour's minutes are gone: reads take its hourly total.
		b.Queue(`DELETE FROM span_strips WHERE hour = $1`, from)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("stats: write totals %v from %v: %w", res, from, err)
	}
	if res == time.Hour {
		return nil
	}
	services := map[int16]map[string]bool{}
	for tenant, t := range totals {
		services[tenant] = map[string]bool{}
		for k := range t {
			services[tenant][k.cell.service] = true
		}
	}
	return buildStrips(ctx, tx, from.Truncate(time.Hour), services)
}

// buildStrips writes the strips (strip.go) of an hour anew from its
// services' minute totals: of the given tenants' services, or of every
// service when only is nil. Rebuilt whole rather than patched, so a
// minute folded a second time for late spans reads its two totals merged.
func buildStrips(ctx context.Context, tx pgx.Tx, hour time.Time, only map[int16]map[string]bool) error {
	var tenants []int16
	var hashes []int64
	for t, services := range only {
		for s := range services {
			tenants, hashes = append(tenants, t), append(hashes, nameKey(s, ""))
		}
	}
	rows, err := tx.Query(ctx, `SELECT tenant, `+statsColumns+` FROM span_stats
		WHERE ts >= $1 AND ts < $2 AND res = 60 AND kind = $3 AND merged
		AND ($6 OR (tenant, service_h) IN (SELECT * FROM unnest($4::smallint[], $5::bigint[])))`,
		hour, hour.Add(time.Hour), totalKind, tenants, hashes, only == nil)
	if err != nil {
		return fmt.Errorf("stats: read the minutes of %v: %w", hour, err)
	}
	type key struct {
		tenant  int16
		service string
	}
	minutes := map[key]map[int64]*statAgg{}
	var tenant int16
	err = scanStats(rows, []any{&tenant}, func(k statKey, a *statAgg) error {
		if only != nil && !only[tenant][k.cell.service] {
			return nil // another service of the same hash
		}
		m := minutes[key{tenant, k.cell.service}]
		if m == nil {
			m = map[int64]*statAgg{}
			minutes[key{tenant, k.cell.service}] = m
		}
		if have := m[k.ts]; have != nil {
			return have.merge(a)
		}
		m[k.ts] = a
		return nil
	})
	if err != nil {
		return fmt.Errorf("stats: read the minutes of %v: %w", hour, err)
	}
	n := len(minutes)
	var (
		ts       = make([]int16, 0, n)
		hs       = make([]int64, 0, n)
		names    = make([]string, 0, n)
		points   = make([][]byte, 0, n)
		sketches = make([][]byte, 0, n)
	)
	h := hour.UnixMicro()
	for k, m := range minutes {
		at := slices.Sorted(maps.Keys(m))
		all := newSketch()
		strip := make([]stripPoint, len(at))
		for i, t := range at {
			a := m[t]
			strip[i] = a.stripPoint(uint8((t - h) / time.Minute.Microseconds()))
			if err := all.MergeWith(a.sketch); err != nil {
				return fmt.Errorf("stats: strip of %v: %w", hour, err)
			}
		}
		ts, hs, names = append(ts, k.tenant), append(hs, nameKey(k.service, "")), append(names, k.service)
		points, sketches = append(points, encodeStrip(nil, h, strip)), append(sketches, encodeSketch(nil, all))
	}
	if _, err := tx.Exec(ctx, `INSERT INTO span_strips (tenant, service_h, service, hour, points, sketch)
		SELECT u.t, u.h, u.s, $1, u.p, u.k FROM unnest($2::smallint[], $3::bigint[], $4::text[], $5::bytea[], $6::bytea[]) AS u (t, h, s, p, k)
		ON CONFLICT (tenant, service_h, service, hour) DO UPDATE SET points = excluded.points, sketch = excluded.sketch,
			rev = nextval('span_strips_rev')`,
		hour, ts, hs, names, points, sketches); err != nil {
		return fmt.Errorf("stats: write the strips of %v: %w", hour, err)
	}
	return nil
}

// stripPoint is a minute's totals as a strip keeps them.
func (a *statAgg) stripPoint(minute uint8) stripPoint {
	p := stripPoint{minute: minute, calls: a.calls, errors: a.errors, durSum: a.durSum, bytes: a.bytes, slow: a.slow, failed: a.failed}
	if a.sketch.IsEmpty() {
		for i := range p.quantiles {
			p.quantiles[i] = float32(math.NaN()) // none, as point() reads none
		}
		return p
	}
	qs, _ := a.sketch.GetValuesAtQuantiles(stripQuantiles[:]) // errs only on an empty sketch or a quantile outside [0, 1]
	for i, q := range qs {
		p.quantiles[i] = float32(q)
	}
	return p
}

// backfillStrips builds the strips of one hour whose minutes were folded
// before strips existed (migration 12 records up to when), newest hour
// first; reads take such hours from span_stats until then. It reports
// whether any hour was left.
func backfillStrips(ctx context.Context, tx pgx.Tx) (bool, error) {
	var before *time.Time
	err := tx.QueryRow(ctx, `SELECT before FROM span_strips_backfill`).Scan(&before)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stats: strips to backfill: %w", err)
	}
	var last *time.Time
	if err := tx.QueryRow(ctx, `SELECT max(ts) FROM span_stats WHERE res = 60 AND kind = $1 AND merged AND ts < $2`, totalKind, before).Scan(&last); err != nil {
		return false, fmt.Errorf("stats: strips to backfill: %w", err)
	}
	if last == nil {
		_, err := tx.Exec(ctx, `DELETE FROM span_strips_backfill`)
		return false, err
	}
	hour := last.UTC().Truncate(time.Hour)
	if err := buildStrips(ctx, tx, hour, nil); err != nil {
		return false, err
	}
	_, err = tx.Exec(ctx, `UPDATE span_strips_backfill SET before = $1`, hour)
	return true, err
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
		calls, errs, sum, bytes int64
		sketch                  []byte
		sHigh, sLow, sSpan, sUs *int64
		eHigh, eLow, eSpan, eUs *int64
		sAt, eAt                *time.Time
	)
	dest := append(slices.Clip(extra), &ts, &res, &k.cell.service, &k.cell.name, &kind, &k.cell.remote, &calls, &errs, &sum, &bytes, &sketch,
		&sHigh, &sLow, &sSpan, &sUs, &sAt, &eHigh, &eLow, &eSpan, &eUs, &eAt)
	_, err := pgx.ForEachRow(rows, dest, func() error {
		k.cell.kind, k.cell.total = zipkin.Kind(max(kind, 0)), kind == totalKind
		k.ts = ts.UnixMicro()
		a := &statAgg{calls: calls, errors: errs, durSum: sum, bytes: bytes, sketch: newSketch(),
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
