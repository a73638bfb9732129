package storage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/zipq/zipq/zipkin"
)

// Packing: once a day has closed (Config.PackAfter past its end, and
// thinned first when keep by value is on), its traces are merged, each
// into one payload as compaction merges them, and packed a few dozen to a
// block (block.go), which lists them in its directory; the day's segments
// partition is then rewritten without their rows, and its old files go
// back to the file system. Traces too large to merge (compactMaxSpans) and
// segments arriving after the day was packed stay as they are: readers
// take both kinds of row.

// packPage is how many segments rows one step of a day's packing reads.
const packPage = 4096

// packMaxRaw bounds a trace packed: a larger one keeps its own frame, so
// a block stays quick to decode for the traces beside it.
const packMaxRaw = 1 << 20

// PackResult is one day's packing.
type PackResult struct {
	Day                     time.Time // zero: no day was due
	Traces, Blocks          int64
	BytesBefore, BytesAfter int64 // the day's segments partition; after, with its blocks partition
}

// errPackWait: the day is due but keep by value has not thinned it yet.
var errPackWait = errors.New("day not thinned yet")

// Pack packs the oldest day due, if any, under a lock that one process per
// schema holds at a time. The day is packed in one transaction: readers
// see its traces unpacked until the commit, then packed.
func (s *Store) Pack(ctx context.Context, now time.Time) (PackResult, error) {
	var res PackResult
	if s.cfg.PackAfter < 0 {
		return res, nil
	}
	err := s.job(ctx, "pack", func(tx pgx.Tx) error {
		d, ok, err := duePackDay(ctx, tx, now.Add(-s.cfg.PackAfter), s.keep != nil)
		if err != nil || !ok {
			return err
		}
		res, err = s.packDay(ctx, tx, d)
		return err
	})
	if errors.Is(err, errPackWait) {
		return PackResult{}, nil
	}
	if err != nil {
		return PackResult{}, fmt.Errorf("pack: %w", err)
	}
	return res, nil
}

// duePackDay is the oldest day with a segments partition that ends before
// cutoff and was not packed; with thinning, it must have been thinned.
func duePackDay(ctx context.Context, tx pgx.Tx, cutoff time.Time, thinning bool) (time.Time, bool, error) {
	var d *time.Time
	var thinned bool
	err := tx.QueryRow(ctx, `SELECT day::timestamp AT TIME ZONE 'UTC', day IN (SELECT day FROM thin_days) FROM `+dailyPartitions+` p
		WHERE parent = 'segments'::regclass AND (day + 1)::timestamp AT TIME ZONE 'UTC' <= $1 AND day NOT IN (SELECT day FROM packed_days)
		ORDER BY day LIMIT 1`, cutoff).Scan(&d, &thinned)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, err
	}
	if thinning && !thinned {
		return time.Time{}, false, errPackWait
	}
	return d.UTC(), true, nil
}

// packTrace is one trace of the day being packed.
type packTrace struct {
	tenant int16
	id     zipkin.TraceID
	rows   []segmentRow
	spans  int64
}

func (s *Store) packDay(ctx context.Context, tx pgx.Tx, d time.Time) (PackResult, error) {
	res := PackResult{Day: d}
	if err := s.ensurePartition(ctx, tx, d); err != nil {
		return res, err
	}
	part := pgx.Identifier{partitionName("segments", d)}.Sanitize()
	c, err := s.segmentCodec()
	if err != nil {
		return res, err
	}
	if err := tx.QueryRow(ctx, `SELECT pg_total_relation_size($1::regclass)`, partitionName("segments", d)).Scan(&res.BytesBefore); err != nil {
		return res, err
	}
	// The day's rows in pages by trace ID (the partition's key order); a
	// page ends before the trace ID it was cut in, which starts the next.
	limit := packPage
	if s.packRows > 0 {
		limit = s.packRows
	}
	from := int64(math.MinInt64)
	for {
		page, rows, err := readPackPage(ctx, tx, part, `trace_id_low >= $1 ORDER BY trace_id_low LIMIT $2`, from, limit)
		if err != nil {
			return res, err
		}
		last := rows < limit
		if !last {
			cut := page[len(page)-1].id.Low
			i := slices.IndexFunc(page, func(t *packTrace) bool { return t.id.Low == cut })
			if i == 0 { // the whole page is one trace ID's: read all of it
				if page, _, err = readPackPage(ctx, tx, part, `trace_id_low = $1`, int64(cut)); err != nil {
					return res, err
				}
				last = int64(cut) == math.MaxInt64
				from = int64(cut) + 1
			} else {
				page, from = page[:i], int64(cut)
			}
		}
		traces, blocks, err := packTraces(ctx, tx, d, page, c)
		if err != nil {
			return res, err
		}
		res.Traces += traces
		res.Blocks += blocks
		if last {
			break
		}
	}
	// The rewrite copies the day's live rows and drops the old file: no
	// late span may land in the old one meanwhile (it waits, then lands
	// in the new one).
	if _, err := tx.Exec(ctx, `LOCK TABLE `+part+` IN SHARE MODE`); err != nil {
		return res, fmt.Errorf("lock the day: %w", err)
	}
	if err := tx.QueryRow(ctx, `SELECT bytes_after FROM zipq_rewrite_partition('segments', $1::date)`, d.Format(time.DateOnly)).Scan(&res.BytesAfter); err != nil {
		return res, fmt.Errorf("rewrite %s: %w", part, err)
	}
	// The day's search index too, in group rows (indexgroup.go): a
	// trace's rows, one a segment until then (a service's batch: a trace
	// reported by four services has four), become part of a row of a few
	// dozen traces of its minute.
	index := pgx.Identifier{partitionName("span_index", d)}.Sanitize()
	if _, err := tx.Exec(ctx, `LOCK TABLE `+index+` IN SHARE MODE`); err != nil {
		return res, fmt.Errorf("lock the day's index: %w", err)
	}
	if err := groupIndex(ctx, tx, d); err != nil {
		return res, fmt.Errorf("%s: %w", index, err)
	}
	// A packed day's span columns go: scans of it read whole traces again
	// (columnsSince), and its bytes are what packing is for. A day is
	// packed once it is hours old, and scans are mostly of the last hours.
	if _, err := tx.Exec(ctx, `TRUNCATE `+pgx.Identifier{partitionName("span_columns", d)}.Sanitize()); err != nil {
		return res, fmt.Errorf("drop the day's span columns: %w", err)
	}
	// The day's GIN index (keys) with its pending list emptied: the day
	// is sealed, and every search scans what is still pending (a trace
	// lookup's probe of the GIN index blocks had on lows until migration
	// 23 read 17 pages, not 4, at BenchmarkPack's 80,000 traces).
	if _, err := tx.Exec(ctx, `SELECT gin_clean_pending_list(i.indexrelid) FROM pg_index i
		JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
		WHERE a.amname = 'gin' AND i.indrelid = $1::regclass`, partitionName("span_index", d)); err != nil {
		return res, fmt.Errorf("empty the day's GIN pending lists: %w", err)
	}
	// Statistics for the day's new tables now, not at the next
	// maintenance round's tidy: until then the planner knew nothing of
	// the blocks and looked a trace up by reading every directory of the
	// day through the primary key (1.2 ms for 180 blocks, BenchmarkPack)
	// instead of probing an index.
	for _, table := range []string{"segments", "span_index", "segment_blocks"} {
		if _, err := tx.Exec(ctx, `ANALYZE `+pgx.Identifier{partitionName(table, d)}.Sanitize()); err != nil {
			return res, fmt.Errorf("analyze the day's %s: %w", table, err)
		}
	}
	var blockBytes int64
	if err := tx.QueryRow(ctx, `SELECT pg_total_relation_size($1::regclass)`, partitionName("segment_blocks", d)).Scan(&blockBytes); err != nil {
		return res, err
	}
	res.BytesAfter += blockBytes
	if _, err := tx.Exec(ctx, `INSERT INTO packed_days (day, packed_at, traces, blocks, bytes_before, bytes_after) VALUES ($1, now(), $2, $3, $4, $5)`,
		d, res.Traces, res.Blocks, res.BytesBefore, res.BytesAfter); err != nil {
		return res, fmt.Errorf("record the day: %w", err)
	}
	// packed_days gains a row a day, never autovacuum's 50 to analyze
	// it: without statistics the planner takes it for 113 rows, and the
	// lookup by ID (byIDQuery), planned for as many days, keeps being
	// planned again for each read instead of reusing its generic plan.
	if _, err := tx.Exec(ctx, `ANALYZE packed_days`); err != nil {
		return res, fmt.Errorf("analyze packed_days: %w", err)
	}
	return res, nil
}

// readPackPage reads the rows of the day's partition part that where
// selects (with args), grouped by trace in the order read, and says how
// many rows it read (what a page's LIMIT counts).
func readPackPage(ctx context.Context, tx pgx.Tx, part, where string, args ...any) ([]*packTrace, int, error) {
	rows, err := tx.Query(ctx, `SELECT tenant, trace_id_low, trace_id_high, ts, seg_uid, span_count, data
		FROM `+part+` WHERE `+where, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("read the day: %w", err)
	}
	var page []*packTrace
	byID := map[thinKey]*packTrace{}
	var tn int16
	var count int32
	var r segmentRow
	n := 0
	_, err = pgx.ForEachRow(rows, []any{&tn, &r.low, &r.high, &r.ts, &r.uid, &count, &r.data}, func() error {
		k := thinKey{tn, zipkin.TraceID{High: uint64(r.high), Low: uint64(r.low)}}
		t := byID[k]
		if t == nil {
			t = &packTrace{tenant: tn, id: k.id}
			byID[k] = t
			page = append(page, t)
		}
		t.rows = append(t.rows, r) // pgx gives each row's data its own slice
		t.spans += int64(count)
		n++
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("read the day: %w", err)
	}
	return page, n, nil
}

// packTraces merges a page's traces and writes them packed, replacing
// their rows; it returns how many traces and blocks it wrote. A trace
// that is one member already, too large, or dated outside the day once
// merged (compaction's dating rule, storedAt) stays as it is.
func packTraces(ctx context.Context, tx pgx.Tx, d time.Time, page []*packTrace, c *segmentCodec) (int64, int64, error) {
	var todo []*packTrace
	var inBlocks members
	builders := map[*packTrace]*traceBuilder{}
	var buf []byte
	for _, t := range page {
		if t.spans > compactMaxSpans || (len(t.rows) == 1 && isBlockRef(t.rows[0].data)) {
			continue
		}
		b := &traceBuilder{}
		builders[t] = b
		todo = append(todo, t)
		for i := range t.rows {
			r := &t.rows[i]
			b.segments = append(b.segments, segKey{r.ts, r.uid})
			var err error
			if buf, err = r.split(t.tenant, buf, &inBlocks, b.add); err != nil {
				return 0, 0, err
			}
		}
	}
	if err := inBlocks.read(ctx, tx); err != nil {
		return 0, 0, err
	}
	links, err := lockLinks(ctx, tx, d, todo)
	if err != nil {
		return 0, 0, err
	}
	// Blocks hold one tenant's traces, in trace ID order, up to about
	// blockTarget compressed bytes (estimated by the last block's ratio).
	slices.SortStableFunc(todo, func(a, b *packTrace) int { return cmp.Compare(a.tenant, b.tenant) })
	type packedTrace struct {
		t        *packTrace
		linksRow bool // its trace_links row went into its entry
	}
	var (
		out    []packedTrace
		blocks [][]any
		open   *block
		ratio  = 0.2
	)
	seal := func() {
		if open == nil {
			return
		}
		open.seal(c)
		ratio = float64(len(open.data)) / float64(len(open.raw))
		blocks = append(blocks, []any{open.key.low, open.key.tenant, open.key.day, open.key.uid, open.dict, open.data, open.lows, open.dir})
		open = nil
	}
	for _, t := range todo {
		b := builders[t]
		slices.SortFunc(b.spans, compareCanonical)
		seg := &segment{id: t.id, spans: b.spans}
		raw := rawSegment(seg, b.stored())
		ts := time.UnixMicro(seg.ts).UTC()
		if len(raw) > packMaxRaw || len(b.spans) == 0 || ts.Before(d) || !ts.Before(d.Add(day)) {
			continue
		}
		entry := raw
		rec, linksRow := links[thinKey{t.tenant, t.id}]
		if linksRow {
			entry = protowire.AppendBytes(protowire.AppendTag(nil, fieldLinks, protowire.BytesType), rec)
			entry = append(entry, raw...)
		}
		if open != nil && (open.key.tenant != t.tenant || float64(len(open.raw)+len(entry))*ratio > blockTarget) {
			seal()
		}
		if open == nil {
			open = &block{key: blockKey{tenant: t.tenant, day: d}}
		}
		open.add(t.id, ts, int32(len(b.spans)), entry)
		out = append(out, packedTrace{t: t, linksRow: linksRow})
	}
	seal()
	if len(out) == 0 {
		return 0, 0, nil
	}
	var (
		delLows, delUIDs []int64
		delTenants       []int16
		delTS            []time.Time
		gLows, gHighs    []int64
		gTenants         []int16
	)
	for _, m := range out {
		for _, k := range builders[m.t].segments {
			delLows, delTenants, delTS, delUIDs = append(delLows, int64(m.t.id.Low)), append(delTenants, m.t.tenant), append(delTS, k.ts), append(delUIDs, k.uid)
		}
		if m.linksRow {
			gLows, gHighs, gTenants = append(gLows, int64(m.t.id.Low)), append(gHighs, int64(m.t.id.High)), append(gTenants, m.t.tenant)
		}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"segment_blocks"}, []string{"trace_id_low", "tenant", "ts", "block_uid", "dict", "data", "lows", "dir"}, pgx.CopyFromRows(blocks)); err != nil {
		return 0, 0, fmt.Errorf("write blocks: %w", err)
	}
	// The old rows go by key, not by trace: a late segment written since
	// this page was read stays, beside the entry.
	if _, err := tx.Exec(ctx, `DELETE FROM segments s USING unnest($1::bigint[], $2::smallint[], $3::timestamptz[], $4::bigint[]) AS o(low, tenant, ts, uid)
		WHERE s.trace_id_low = o.low AND s.tenant = o.tenant AND s.ts = o.ts AND s.seg_uid = o.uid`, delLows, delTenants, delTS, delUIDs); err != nil {
		return 0, 0, fmt.Errorf("replace the packed rows: %w", err)
	}
	// The links rows now carried by an entry go.
	if _, err := tx.Exec(ctx, `DELETE FROM trace_links t USING unnest($1::bigint[], $2::bigint[], $3::smallint[]) AS g(low, high, tenant)
		WHERE t.trace_id_low = g.low AND t.trace_id_high = g.high AND t.tenant = g.tenant AND t.hour >= $4 AND t.hour < $5`,
		gLows, gHighs, gTenants, d, d.Add(day)); err != nil {
		return 0, 0, fmt.Errorf("move the links into the blocks: %w", err)
	}
	return int64(len(out)), int64(len(blocks)), nil
}

// lockLinks reads and locks the trace_links rows of the traces being
// packed whose hour is in the day d, as the records their members will
// carry (appendLinksRecord). The row is a trace's contribution to the
// dependency totals, which the linker subtracts when late spans relink
// it: a member carrying it lets the row go (12–34 bytes a span), and the
// linker reads it back from the member (linksOf). Only rows of the day
// move, so retention drops them with the day as it would have dropped
// the rows. A row the linker is replacing right now is skipped: it stays
// a row, which is read first.
func lockLinks(ctx context.Context, tx pgx.Tx, d time.Time, todo []*packTrace) (map[thinKey][]byte, error) {
	lows, highs, tenants := make([]int64, len(todo)), make([]int64, len(todo)), make([]int16, len(todo))
	for i, t := range todo {
		lows[i], highs[i], tenants[i] = int64(t.id.Low), int64(t.id.High), t.tenant
	}
	rows, err := tx.Query(ctx, `SELECT t.tenant, t.trace_id_low, t.trace_id_high, t.hour, t.edges FROM trace_links t
		JOIN unnest($1::bigint[], $2::bigint[], $3::smallint[]) AS k(low, high, tenant)
		  ON t.trace_id_low = k.low AND t.trace_id_high = k.high AND t.tenant = k.tenant
		WHERE t.hour >= $4 AND t.hour < $5 FOR UPDATE OF t SKIP LOCKED`, lows, highs, tenants, d, d.Add(day))
	if err != nil {
		return nil, fmt.Errorf("read the day's links: %w", err)
	}
	out := map[thinKey][]byte{}
	var tn int16
	var low, high int64
	var hour time.Time
	var edges []byte
	if _, err := pgx.ForEachRow(rows, []any{&tn, &low, &high, &hour, &edges}, func() error {
		out[thinKey{tn, zipkin.TraceID{High: uint64(high), Low: uint64(low)}}] = appendLinksRecord(nil, hour, edges)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read the day's links: %w", err)
	}
	return out, nil
}

// RunPacking packs each day once it is due, checking every ten minutes
// (and a day after another while days are due), until ctx ends.
func (s *Store) RunPacking(ctx context.Context) error {
	if s.cfg.PackAfter < 0 {
		<-ctx.Done()
		return nil
	}
	return s.every(ctx, 10*time.Minute, "packing", func(ctx context.Context) (bool, error) {
		res, err := s.Pack(ctx, time.Now())
		if err != nil || res.Day.IsZero() {
			return false, err
		}
		s.logger.Info("day packed", slog.String("day", res.Day.Format(time.DateOnly)), slog.Int64("traces", res.Traces),
			slog.Int64("blocks", res.Blocks), slog.Int64("bytes_before", res.BytesBefore), slog.Int64("bytes_after", res.BytesAfter))
		return true, nil
	})
}
