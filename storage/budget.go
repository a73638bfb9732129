package storage

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// Usage is what the schema takes on disk, against RetentionBytes.
type Usage struct {
	Bytes  int64 // every table, index and TOAST table of the schema
	Budget int64 // Config.RetentionBytes; 0: none
	// OldestDay is the oldest daily partition of spans kept (UTC
	// midnight); zero when there is none.
	OldestDay time.Time
	// OverBudget: the budget is exceeded with only today's spans (and
	// what is not spans) left to drop.
	OverBudget bool
	// Dictionary is the newest learned zstd dictionary (dicts.go; 0:
	// none, segments use the shipped one) and DictionaryGain what it
	// saved on its held-out segments (0.33: a third smaller).
	Dictionary     int16
	DictionaryGain float64
	// Tenants is each tenant's share of the days of spans, against its
	// own budget (ZIPQ_TENANTS_FILE's retention_bytes), by tenant name.
	Tenants []TenantUsage
}

// Usage measures the schema now.
func (s *Store) Usage(ctx context.Context) (Usage, error) {
	u, err := usage(ctx, s.pool, s.cfg.RetentionBytes)
	if err != nil {
		return u, err
	}
	u.Tenants, err = s.tenantUsage(ctx, s.pool, time.Now().UTC().Truncate(day))
	return u, err
}

// LastUsage is what the last maintenance round of this process measured
// (zero before one ran here).
func (s *Store) LastUsage() Usage {
	if u := s.usage.Load(); u != nil {
		return *u
	}
	return Usage{Budget: s.cfg.RetentionBytes}
}

func usage(ctx context.Context, db interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, budget int64) (Usage, error) {
	u := Usage{Budget: budget}
	var oldest *time.Time
	err := db.QueryRow(ctx, `SELECT
		(SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
			WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'm')),
		(SELECT min(day)::timestamp AT TIME ZONE 'UTC' FROM `+dailyPartitions+` p WHERE parent = 'segments'::regclass),
		coalesce((SELECT id FROM zstd_dicts ORDER BY id DESC LIMIT 1), 0),
		coalesce((SELECT 1 - bytes_after::float8 / greatest(bytes_before, 1) FROM zstd_dicts ORDER BY id DESC LIMIT 1), 0)`).Scan(
		&u.Bytes, &oldest, &u.Dictionary, &u.DictionaryGain)
	if err != nil {
		return u, fmt.Errorf("storage usage: %w", err)
	}
	if oldest != nil {
		u.OldestDay = oldest.UTC()
	}
	return u, nil
}

// applyBudget drops the oldest days' partitions (and their days' names,
// links and dependency rows, as retention does) while the schema takes
// more than RetentionBytes, never today's; DROP returns the files to the
// file system at commit, where DELETE would leave them to vacuum.
func (s *Store) applyBudget(ctx context.Context, tx pgx.Tx, today time.Time) (Usage, error) {
	for {
		u, err := usage(ctx, tx, s.cfg.RetentionBytes)
		if err != nil {
			return u, err
		}
		over := u.Budget > 0 && u.Bytes > u.Budget
		if !over || u.OldestDay.IsZero() || !u.OldestDay.Before(today) {
			u.OverBudget = over
			if over {
				s.logger.Warn("over the storage budget with only today's spans left to drop",
					slog.Int64("bytes", u.Bytes), slog.Int64("budget", u.Budget))
			}
			return u, nil
		}
		s.logger.Info("over the storage budget: dropping the oldest day", slog.Int64("bytes", u.Bytes),
			slog.Int64("budget", u.Budget), slog.String("day", u.OldestDay.Format(time.DateOnly)))
		if err := s.applyRetention(ctx, tx, u.OldestDay.Add(day)); err != nil {
			return u, err
		}
	}
}

// TenantUsage is what one tenant's spans take of the daily partitions.
type TenantUsage struct {
	Tenant string
	// Bytes is the tenant's share of each daily partition of segments and
	// span_index it still has rows in, all-in (indexes, TOAST), by its
	// share of the day's stored segment bytes as the service metrics
	// counted them (span_stats' service totals). An estimate: an index
	// row's size is not in proportion to its segment's, spans without a
	// local service are not counted, and the minutes the stats job has
	// not folded yet are not either.
	Bytes  int64
	Budget int64 // its retention_bytes; 0: none
	// OldestDay is its oldest day of spans kept (UTC midnight).
	OldestDay time.Time
	// OverBudget: the budget is exceeded with only today's spans left.
	OverBudget bool

	id   int16
	days []dayBytes // oldest first
}

type dayBytes struct {
	day   time.Time
	bytes int64
}

// tenantUsage measures each tenant's share of the daily partitions it has
// rows in; a tenant with none is not listed.
func (s *Store) tenantUsage(ctx context.Context, db interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, today time.Time) ([]TenantUsage, error) {
	// The day's bytes are shared among the tenants that still have rows
	// in it (a tenant's day deleted by its own retention or budget shares
	// nothing), in proportion to their segment bytes that day. Whether it
	// has rows is one probe of the day's span_index partition's (tenant,
	// ts_max) index a tenant and day (LATERAL ... LIMIT 1: as EXISTS, the
	// planner hashed every partition's rows, 0.9 s at 720,000 spans); the
	// shares come from the service totals' partial index.
	rows, err := db.Query(ctx, `WITH parts AS (
			SELECT day, sum(pg_total_relation_size(oid))::float8 AS bytes FROM `+dailyPartitions+` p GROUP BY 1),
		shares AS (
			SELECT tenant, (ts AT TIME ZONE 'UTC')::date AS day, sum(bytes)::float8 AS seg
			FROM span_stats WHERE kind = -1 AND ts >= (SELECT min(day) FROM parts)::timestamp AT TIME ZONE 'UTC'
			GROUP BY 1, 2),
		held AS (
			SELECT s.tenant, p.day, p.bytes, s.seg FROM parts p JOIN shares s USING (day)
			CROSS JOIN LATERAL `+fmt.Sprintf(rowsOfDay, "s.tenant", "p.day")+` h
			WHERE s.seg > 0)
		SELECT tenant, day::timestamp AT TIME ZONE 'UTC', (bytes * seg / sum(seg) OVER (PARTITION BY day))::bigint
		FROM held ORDER BY tenant, day`)
	if err != nil {
		return nil, fmt.Errorf("tenant usage: %w", err)
	}
	var out []TenantUsage
	var id int16
	var d dayBytes
	_, err = pgx.ForEachRow(rows, []any{&id, &d.day, &d.bytes}, func() error {
		if len(out) == 0 || out[len(out)-1].id != id {
			name, err := s.tenantName(ctx, id)
			if err != nil {
				return err
			}
			out = append(out, TenantUsage{Tenant: name, Budget: s.tenantBudgets[name], id: id})
		}
		u := &out[len(out)-1]
		d.day = d.day.UTC()
		u.days = append(u.days, d)
		u.Bytes += d.bytes
		if u.OldestDay.IsZero() {
			u.OldestDay = d.day
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tenant usage: %w", err)
	}
	for i := range out {
		u := &out[i]
		u.OverBudget = u.Budget > 0 && u.Bytes > u.Budget && !u.OldestDay.Before(today)
	}
	return out, nil
}

// applyTenantBudgets deletes, for each tenant over its budget, its oldest
// day of spans at a time, never today's, and rewrites that day's
// partitions without its rows: the other tenants' rows share them, so the
// partitions cannot be dropped, and rows deleted in place would free no
// disk (a past day's partition takes no new rows to reuse the space).
func (s *Store) applyTenantBudgets(ctx context.Context, tx pgx.Tx, today time.Time) error {
	if len(s.tenantBudgets) == 0 {
		return nil
	}
	us, err := s.tenantUsage(ctx, tx, today)
	if err != nil {
		return err
	}
	for _, u := range us {
		for u.Budget > 0 && u.Bytes > u.Budget && len(u.days) > 0 && u.days[0].day.Before(today) {
			d := u.days[0]
			s.logger.Info("tenant over its storage budget: deleting its oldest day", slog.String("tenant", u.Tenant),
				slog.Int64("bytes", u.Bytes), slog.Int64("budget", u.Budget), slog.String("day", d.day.Format(time.DateOnly)))
			if err := s.dropTenantsDay(ctx, tx, []int16{u.id}, d.day); err != nil {
				return fmt.Errorf("maintain: budget of tenant %q: %w", u.Tenant, err)
			}
			u.Bytes, u.days = u.Bytes-d.bytes, u.days[1:]
		}
		if u.Budget > 0 && u.Bytes > u.Budget {
			s.logger.Warn("tenant over its storage budget with only today's spans left to delete", slog.String("tenant", u.Tenant),
				slog.Int64("bytes", u.Bytes), slog.Int64("budget", u.Budget))
		}
	}
	return nil
}

// rowsOfDay is a probe for a tenant's rows (%[1]s) in a day (%[2]s, a
// date) as one row or none: one range of the day's span_index partition's
// (tenant, ts_max) index (ts_max is within a minute after ts). As an
// EXISTS over every day, PostgreSQL hashed all the partitions' rows
// instead (0.9 s at 720,000 spans); as a LATERAL subquery with LIMIT 1 it
// probes each day.
const rowsOfDay = `(SELECT 1 FROM span_index x WHERE x.tenant = %[1]s
	AND x.ts >= %[2]s::timestamp AT TIME ZONE 'UTC' AND x.ts < (%[2]s + 1)::timestamp AT TIME ZONE 'UTC'
	AND x.ts_max >= %[2]s::timestamp AT TIME ZONE 'UTC' AND x.ts_max < (%[2]s + 1)::timestamp AT TIME ZONE 'UTC' + interval '1 minute'
	LIMIT 1)`

// tenantDaysBefore is the days (UTC midnights) ending at or before cutoff
// whose partitions hold rows of tenant id, oldest first.
func tenantDaysBefore(ctx context.Context, tx pgx.Tx, id int16, cutoff time.Time) ([]time.Time, error) {
	rows, err := tx.Query(ctx, `SELECT p.day::timestamp AT TIME ZONE 'UTC' FROM `+dailyPartitions+` p
		CROSS JOIN LATERAL `+fmt.Sprintf(rowsOfDay, "$1::smallint", "p.day")+` h
		WHERE p.parent = 'span_index'::regclass AND (p.day + 1)::timestamp AT TIME ZONE 'UTC' <= $2 ORDER BY 1`, id, cutoff)
	if err != nil {
		return nil, err
	}
	days, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	for i := range days {
		days[i] = days[i].UTC()
	}
	return days, err
}

// dropTenantsDay deletes the rows of day d of the tenants ids and
// rewrites the day's partitions without them, once. The partitions are
// held in SHARE mode first, as thinning holds them: a late span for the
// day waits for the commit (and is then stored in the rewritten
// partition) instead of landing in the one being copied.
func (s *Store) dropTenantsDay(ctx context.Context, tx pgx.Tx, ids []int16, d time.Time) error {
	for _, table := range partitioned {
		if _, err := tx.Exec(ctx, `LOCK TABLE `+pgx.Identifier{partitionName(table, d)}.Sanitize()+` IN SHARE MODE`); err != nil {
			return fmt.Errorf("lock the day: %w", err)
		}
	}
	for _, id := range ids {
		// From the microsecond before d: the day's first spans included.
		if err := deleteTenantRows(ctx, tx, id, "", d.Add(-time.Microsecond), d.Add(day)); err != nil {
			return err
		}
	}
	for _, table := range partitioned {
		var before, after int64
		if err := tx.QueryRow(ctx, `SELECT * FROM zipq_rewrite_partition($1, $2::date)`, table, d.Format(time.DateOnly)).Scan(&before, &after); err != nil {
			return fmt.Errorf("rewrite %s: %w", partitionName(table, d), err)
		}
		s.logger.Info("partition rewritten", slog.String("partition", partitionName(table, d)),
			slog.Int64("bytes_before", before), slog.Int64("bytes_after", after))
	}
	return nil
}
