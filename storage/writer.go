package storage

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zipq/zipq/zipkin"
)

var spanColumns = []string{
	"trace_id_low", "trace_id_high", "ts", "span_uid", "span_id", "parent_id", "kind",
	"local_service", "remote_service", "name", "duration", "is_error", "terms", "span",
}

// The stage is per connection and emptied at commit, so a pool connection
// reuses it batch after batch.
const createStage = `CREATE TEMP TABLE IF NOT EXISTS spans_stage
	(LIKE spans INCLUDING DEFAULTS) ON COMMIT DELETE ROWS`

// No conflict target: the targetless form also works on Citus columnar and
// postgres_fdw partitions, where a targeted ON CONFLICT fails.
const insertFromStage = `INSERT INTO spans SELECT * FROM spans_stage ORDER BY trace_id_low, ts ON CONFLICT DO NOTHING`

// The name tables are filled from the stage in a fixed order so concurrent
// collectors inserting the same names cannot deadlock.
const insertNames = `INSERT INTO span_names (day, service, name)
	SELECT DISTINCT (ts AT TIME ZONE 'UTC')::date, local_service, name
	FROM spans_stage WHERE local_service <> '' ORDER BY 2, 3, 1
	ON CONFLICT DO NOTHING`

const insertRemotes = `INSERT INTO remote_services (day, service, remote)
	SELECT DISTINCT (ts AT TIME ZONE 'UTC')::date, local_service, remote_service
	FROM spans_stage WHERE local_service <> '' AND remote_service <> '' ORDER BY 2, 3, 1
	ON CONFLICT DO NOTHING`

const insertAutocomplete = `INSERT INTO autocomplete_tags (day, key, value)
	SELECT DISTINCT d, k, v FROM unnest($1::date[], $2::text[], $3::text[]) AS t(d, k, v)
	ORDER BY 2, 3, 1 ON CONFLICT DO NOTHING`

// WriteSpans stores a batch in one transaction and returns nil only after
// it committed. It is idempotent: spans already stored (a redelivered
// message) insert nothing. A *DataError means PostgreSQL refused the data.
func (s *Store) WriteSpans(ctx context.Context, spans []zipkin.Span) error {
	if len(spans) == 0 {
		return nil
	}
	rows, ac, err := s.encodeRows(spans)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, createStage); err != nil {
			return fmt.Errorf("create stage: %w", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"spans_stage"}, spanColumns, pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("copy spans: %w", err)
		}
		b := &pgx.Batch{}
		b.Queue(insertFromStage)
		b.Queue(insertNames)
		b.Queue(insertRemotes)
		b.Queue(markPending)
		if len(ac.keys) > 0 {
			b.Queue(insertAutocomplete, ac.days, ac.keys, ac.values)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("insert spans: %w", err)
		}
		return nil
	})
	if err != nil {
		return classify(fmt.Errorf("write %d spans: %w", len(spans), err))
	}
	return nil
}

// CopySpans is the raw, non-idempotent path: COPY straight into spans. It
// exists as the benchmark baseline that WriteSpans is measured against.
func (s *Store) CopySpans(ctx context.Context, spans []zipkin.Span) error {
	rows, _, err := s.encodeRows(spans)
	if err != nil {
		return err
	}
	if _, err := s.pool.CopyFrom(ctx, pgx.Identifier{"spans"}, spanColumns, pgx.CopyFromRows(rows)); err != nil {
		return classify(fmt.Errorf("copy %d spans: %w", len(spans), err))
	}
	return nil
}

type autocomplete struct {
	days         []time.Time
	keys, values []string
}

func (s *Store) encodeRows(spans []zipkin.Span) ([][]any, autocomplete, error) {
	rows := make([][]any, len(spans))
	var ac autocomplete
	for i := range spans {
		sp := &spans[i]
		payload, err := sp.MarshalCanonical(nil)
		if err != nil {
			return nil, ac, fmt.Errorf("encode span %s/%s: %w", sp.TraceID, sp.ID, err)
		}
		ts := time.UnixMicro(sp.StartTime()).UTC()
		var parent, duration any
		if sp.ParentID != 0 {
			parent = int64(sp.ParentID)
		}
		if sp.Duration != 0 {
			duration = sp.Duration
		}
		rows[i] = []any{
			int64(sp.TraceID.Low), int64(sp.TraceID.High), ts, zipkin.UID(payload),
			int64(sp.ID), parent, int16(sp.Kind),
			pgText(sp.LocalServiceName()), pgText(sp.RemoteServiceName()), pgText(sp.Name),
			duration, sp.IsError(), terms(sp), payload,
		}
		for _, k := range s.cfg.AutocompleteKeys {
			if v, ok := sp.Tags[k]; ok {
				ac.days = append(ac.days, ts.Truncate(24*time.Hour))
				ac.keys = append(ac.keys, pgText(k))
				ac.values = append(ac.values, pgText(v))
			}
		}
	}
	return rows, ac, nil
}

// terms are what annotationQuery matches: a bare key matches a tag key or
// an annotation value, key=value matches a tag.
func terms(sp *zipkin.Span) []string {
	t := make([]string, 0, 2*len(sp.Tags)+len(sp.Annotations))
	for k, v := range sp.Tags {
		t = append(t, term(k), term(k+"="+v))
	}
	for _, a := range sp.Annotations {
		t = append(t, term(a.Value))
	}
	slices.Sort(t)
	return slices.Compact(t)
}
