package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zipq/zipq/zipkin"
)

// CompactBatch is how many queued traces one compaction round takes.
const CompactBatch = 1000

// Compact rewrites up to limit queued traces (compact_pending, filled by
// the linker) each as one segment holding every distinct span once: a
// trace stored as several segments (its services reported in different
// batches, or a redelivery cut it differently) then reads faster and
// compresses better. It returns how many traces it took. One compactor
// runs at a time per schema (an advisory lock); others return 0.
func (s *Store) Compact(ctx context.Context, limit int) (int, error) {
	n := 0
	err := s.job(ctx, "compact", func(tx pgx.Tx) error {
		n = 0
		lows := map[int16][]int64{}
		ids := map[int16]map[zipkin.TraceID]bool{}
		if err := claim(ctx, tx, "compact_pending", nil, limit, nil, func(tenant int16, id zipkin.TraceID) {
			if ids[tenant] == nil {
				ids[tenant] = map[zipkin.TraceID]bool{}
			}
			ids[tenant][id] = true
			lows[tenant] = append(lows[tenant], int64(id.Low))
			n++
		}); err != nil {
			return err
		}
		for tenant, want := range ids {
			builders, err := readSegments(ctx, tx, tenant, lows[tenant], func(id zipkin.TraceID) (zipkin.TraceID, bool) { return id, want[id] })
			if err != nil {
				return fmt.Errorf("read spans: %w", err)
			}
			c, err := s.segmentCodec()
			if err != nil {
				return err
			}
			if err := compact(ctx, tx, tenant, builders, c, s.cfg.Columns); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("compact traces: %w", err)
	}
	return n, nil
}

// RunCompactor compacts queued traces every LinkInterval, and back to back
// while a backlog remains, until ctx ends. Failures are logged and retried.
func (s *Store) RunCompactor(ctx context.Context) error {
	return s.every(ctx, s.cfg.LinkInterval, "compaction", func(ctx context.Context) (bool, error) {
		n, err := s.Compact(ctx, CompactBatch)
		return n == CompactBatch, err
	})
}

// queueCompaction queues tenant's traces the linker read that are stored
// as several segments.
func queueCompaction(ctx context.Context, tx pgx.Tx, tenant int16, builders map[zipkin.TraceID]*traceBuilder) error {
	var lows, highs []int64
	for id, tb := range builders {
		if len(tb.segments) > 1 && len(tb.spans) <= compactMaxSpans {
			lows, highs = append(lows, int64(id.Low)), append(highs, int64(id.High))
		}
	}
	if len(lows) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `INSERT INTO compact_pending (trace_id_low, trace_id_high, tenant)
		SELECT u.*, $3::smallint FROM unnest($1::bigint[], $2::bigint[]) AS u ORDER BY 1, 2 ON CONFLICT DO NOTHING`, lows, highs, tenant); err != nil {
		return fmt.Errorf("queue compaction: %w", err)
	}
	return nil
}

// compactMaxSpans bounds compaction: a trace larger than this (one that
// keeps growing for an hour, say) stays in its segments rather than being
// rewritten whole each time it grows.
const compactMaxSpans = 10000

// compact replaces each of tenant's multi-segment traces' segments by
// their merge.
// Where the segments hold pieces of one span (reported in parts, in
// different batches), the merged spans get index rows and span columns of
// their own: each segment's saw only its pieces, so a search naming the
// service and the span name could not nominate the trace.
func compact(ctx context.Context, tx pgx.Tx, tenant int16, builders map[zipkin.TraceID]*traceBuilder, c *segmentCodec, cols ColumnEncoder) error {
	b := &pgx.Batch{}
	var index [][]any
	var wholes [][]canonicalSpan
	var lows, highs []int64
	for id, tb := range builders {
		if len(tb.segments) < 2 || len(tb.spans) > compactMaxSpans {
			continue
		}
		lows, highs = append(lows, int64(id.Low)), append(highs, int64(id.High))
		seg := tb.merged(id, c)
		if whole := indexSpans(seg.spans); len(whole) < len(seg.spans) {
			index = appendIndexRows(index, id, whole, seg.ts)
			wholes = append(wholes, whole)
		}
		ts := time.UnixMicro(seg.ts).UTC()
		b.Queue(`INSERT INTO segments (trace_id_low, ts, seg_uid, trace_id_high, span_count, dict, data, tenant)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
			int64(id.Low), ts, seg.uid, int64(id.High), int32(len(seg.spans)), seg.dict, seg.data, tenant)
		olds, uids := make([]time.Time, 0, len(tb.segments)), make([]int64, 0, len(tb.segments))
		for _, k := range tb.segments {
			if !k.ts.Equal(ts) || k.uid != seg.uid {
				olds, uids = append(olds, k.ts), append(uids, k.uid)
			}
		}
		b.Queue(`DELETE FROM segments s USING unnest($2::timestamptz[], $3::bigint[]) AS o(ts, uid)
			WHERE s.trace_id_low = $1 AND s.tenant = $4 AND s.ts = o.ts AND s.seg_uid = o.uid`, int64(id.Low), olds, uids, tenant)
		tb.segments = []segKey{{ts, seg.uid}}
	}
	if b.Len() == 0 {
		return nil
	}
	blocks, err := columnBlocks(cols, wholes, time.Now().UnixMicro())
	if err != nil {
		return fmt.Errorf("compact segments: %w", err)
	}
	queueColumns(b, blocks, tenant)
	// A mark still pending for a merged trace carries the links of the
	// one segment its write stored; the linker trusts them when it finds
	// the trace in one segment, which after this merge is not that one (a
	// trace's root span, written after the rest and merged with it, had
	// its links replaced by the root's none: TestRealClientsEndToEnd's
	// lost edge). Without them, the linker reads the trace whole. A
	// linker holding such a mark makes this wait for its commit; its own
	// count of segments then still sees them apart.
	b.Queue(`UPDATE link_pending p SET edges = NULL FROM unnest($1::bigint[], $2::bigint[]) AS u(low, high)
		WHERE p.trace_id_low = u.low AND p.trace_id_high = u.high AND p.tenant = $3 AND p.edges IS NOT NULL`, lows, highs, tenant)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("compact segments: %w", err)
	}
	if len(index) > 0 {
		for _, row := range index {
			row[len(row)-1] = tenant
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"span_index"}, indexColumns, pgx.CopyFromRows(index)); err != nil {
			return fmt.Errorf("compact segments: index merged spans: %w", err)
		}
	}
	return nil
}
