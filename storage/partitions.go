package storage

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zipq/zipq/internal/tenant"
)

const day = 24 * time.Hour

// partitioned are the tables range-partitioned by day on ts, each with a
// default partition <table>_other for rows outside the daily ones. What a
// daily partition is made of is defined in SQL (migrations/00008:
// zipq_ensure_partition, zipq_drop_partitions_before).
var partitioned = []string{"segments", "span_index", "segment_blocks", "span_columns"}

func partitionName(table string, d time.Time) string { return table + "_p" + d.Format("20060102") }

// dailyPartitions is the daily partitions of the partitioned tables (not
// their default ones) as rows (parent, day, oid), read back from the names
// zipq_ensure_partition gives them, in one place for every query that
// walks the days kept.
const dailyPartitions = `(SELECT i.inhparent AS parent, to_date(right(c.relname, 8), 'YYYYMMDD') AS day, c.oid
	FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
	WHERE i.inhparent IN ('segments'::regclass, 'span_index'::regclass, 'segment_blocks'::regclass, 'span_columns'::regclass) AND c.relname ~ '_p[0-9]{8}$')`

// Maintain creates the daily partitions from yesterday to PartitionsAhead
// days ahead and applies retention: whole partitions older than Retention
// are dropped, never deleted row by row. It runs under an advisory lock so
// replicas doing the same at the same time take turns.
func (s *Store) Maintain(ctx context.Context, now time.Time) error {
	today := now.UTC().Truncate(day)
	cutoff := now.Add(-s.cfg.Retention).UTC()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.zipq.maintain'))`); err != nil {
			return fmt.Errorf("maintain: lock: %w", err)
		}
		for d := today.Add(-day); !d.After(today.Add(time.Duration(s.cfg.PartitionsAhead) * day)); d = d.Add(day) {
			if d.Add(day).Before(cutoff) {
				continue
			}
			if err := s.ensurePartition(ctx, tx, d); err != nil {
				return err
			}
		}
		if err := s.applyRetention(ctx, tx, cutoff); err != nil {
			return err
		}
		if err := s.applyTenantRetention(ctx, tx, now); err != nil {
			return err
		}
		if err := s.applyTenantBudgets(ctx, tx, today); err != nil {
			return err
		}
		u, err := s.applyBudget(ctx, tx, today)
		if err != nil {
			return err
		}
		if u.Tenants, err = s.tenantUsage(ctx, tx, today); err != nil {
			return err
		}
		s.usage.Store(&u)
		return s.trainDict(ctx, tx, now)
	})
	if err != nil {
		return err
	}
	return s.tidy(ctx)
}

// applyTenantRetention deletes the days of spans (and their index, name,
// link and dependency rows) of each tenant whose retention is shorter
// than the installation's, whole days as Retention drops them: a day
// whose end is older than the tenant's retention goes. Their partitions
// also hold other tenants' rows, so they cannot be dropped; each such day
// is rewritten without the rows, once for all the tenants it loses
// (rows deleted in place would free no disk, and finding them took a
// scan of every older partition at every round).
func (s *Store) applyTenantRetention(ctx context.Context, tx pgx.Tx, now time.Time) error {
	byDay := map[time.Time][]int16{}
	for name, keep := range s.tenantRetention {
		if keep >= s.cfg.Retention {
			continue
		}
		id, ok, err := s.readTenant(tenant.With(ctx, name))
		if err != nil {
			return err
		}
		if !ok {
			continue // it stored nothing
		}
		// Whole days: what started before the day the cutoff falls in.
		// Rows outside the daily partitions (in <table>_other) and those
		// days' names and links go now, row by row, as Retention deletes
		// the default partitions' (spans dated at the epoch, having no
		// timestamp, are kept); the days' partitions are rewritten below.
		before := now.Add(-keep).UTC().Truncate(day)
		if err := deleteTenantRows(ctx, tx, id, "_other", time.Unix(0, 0), before); err != nil {
			return fmt.Errorf("maintain: retention of tenant %q: %w", name, err)
		}
		days, err := tenantDaysBefore(ctx, tx, id, before)
		if err != nil {
			return fmt.Errorf("maintain: retention of tenant %q: %w", name, err)
		}
		for _, d := range days {
			byDay[d] = append(byDay[d], id)
		}
	}
	for _, d := range slices.SortedFunc(maps.Keys(byDay), time.Time.Compare) {
		s.logger.Info("tenants' retention: deleting their day", slog.String("day", d.Format(time.DateOnly)), slog.Int("tenants", len(byDay[d])))
		if err := s.dropTenantsDay(ctx, tx, byDay[d], d); err != nil {
			return fmt.Errorf("maintain: tenants' retention: %w", err)
		}
	}
	return nil
}

// deleteTenantRows deletes tenant id's spans (and index rows, and packed
// blocks) dated after from and before to, from the partitioned tables
// with suffix ("": the parents; "_other": their default partitions
// alone), and its name, link, dependency and thinning rows of the days
// and hours before to.
func deleteTenantRows(ctx context.Context, tx pgx.Tx, id int16, suffix string, from, to time.Time) error {
	for _, table := range partitioned {
		if _, err := tx.Exec(ctx, `DELETE FROM `+table+suffix+` WHERE tenant = $1 AND ts < $2 AND ts > $3`, id, to, from); err != nil {
			return err
		}
	}
	for _, q := range []string{
		`DELETE FROM span_names WHERE tenant = $1 AND day < $2::timestamptz::date`,
		`DELETE FROM remote_services WHERE tenant = $1 AND day < $2::timestamptz::date`,
		`DELETE FROM autocomplete_tags WHERE tenant = $1 AND day < $2::timestamptz::date`,
		`DELETE FROM trace_links WHERE tenant = $1 AND hour < $2`,
		`DELETE FROM dependency_links WHERE tenant = $1 AND hour < $2`,
		`DELETE FROM thinned_traces WHERE tenant = $1 AND day < $2::timestamptz::date`,
		`DELETE FROM thin_counts WHERE tenant = $1 AND day < $2::timestamptz::date`,
	} {
		if _, err := tx.Exec(ctx, q, id, to); err != nil {
			return err
		}
	}
	return nil
}

// tidy analyzes zipq's tables whose statistics are missing or stale, and
// vacuums those with many dead rows (link_pending churns constantly), with
// autovacuum's default thresholds. zipq does it itself because without
// statistics a fresh daily partition of millions of rows is read by
// sequential scans (a trace lookup by id took seconds in the 10M-span
// benchmark on a server running with autovacuum off).
func (s *Store) tidy(ctx context.Context) error {
	rows, err := s.pool.Query(ctx, `SELECT relname, n_mod_since_analyze > 50 + n_live_tup / 10,
		n_dead_tup > 50 + n_live_tup / 5 FROM pg_stat_user_tables WHERE schemaname = current_schema()`)
	if err != nil {
		return fmt.Errorf("maintain: table statistics: %w", err)
	}
	type table struct {
		Name            string
		Analyze, Vacuum bool
	}
	tables, err := pgx.CollectRows(rows, pgx.RowToStructByPos[table])
	if err != nil {
		return fmt.Errorf("maintain: table statistics: %w", err)
	}
	for _, t := range tables {
		var q string
		switch {
		case t.Vacuum:
			q = "VACUUM (ANALYZE) "
		case t.Analyze:
			q = "ANALYZE "
		default:
			continue
		}
		if _, err := s.pool.Exec(ctx, q+pgx.Identifier{t.Name}.Sanitize()); err != nil {
			return fmt.Errorf("maintain: %s%s: %w", q, t.Name, err)
		}
	}
	return nil
}

// ensurePartition creates one day's partition of every partitioned table.
func (s *Store) ensurePartition(ctx context.Context, tx pgx.Tx, d time.Time) error {
	for _, table := range partitioned {
		var created bool
		if err := tx.QueryRow(ctx, `SELECT zipq_ensure_partition($1, $2::date)`, table, d.Format(time.DateOnly)).Scan(&created); err != nil {
			return fmt.Errorf("maintain: partition %s of %s: %w", d.Format(time.DateOnly), table, err)
		}
		if created {
			s.logger.Info("partition created", slog.String("partition", partitionName(table, d)))
		}
	}
	return nil
}

// applyRetention drops whole daily partitions older than cutoff and the
// name, link and dependency rows of those days.
func (s *Store) applyRetention(ctx context.Context, tx pgx.Tx, cutoff time.Time) error {
	for _, table := range partitioned {
		rows, err := tx.Query(ctx, `SELECT zipq_drop_partitions_before($1, $2)`, table, cutoff)
		if err != nil {
			return fmt.Errorf("maintain: retention of %s: %w", table, err)
		}
		dropped, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("maintain: retention of %s: %w", table, err)
		}
		for _, name := range dropped {
			s.logger.Info("partition dropped", slog.String("partition", name))
		}
	}
	for _, q := range []string{
		`DELETE FROM span_names WHERE day < $1::timestamptz::date`,
		`DELETE FROM remote_services WHERE day < $1::timestamptz::date`,
		`DELETE FROM autocomplete_tags WHERE day < $1::timestamptz::date`,
		`DELETE FROM trace_links WHERE hour < $1`,
		`DELETE FROM dependency_links WHERE hour < $1`,
		`DELETE FROM thinned_traces WHERE day < $1::timestamptz::date`,
		`DELETE FROM thin_counts WHERE day < $1::timestamptz::date`,
		`DELETE FROM thin_days WHERE day < $1::timestamptz::date`,
	} {
		if _, err := tx.Exec(ctx, q, cutoff); err != nil {
			return fmt.Errorf("maintain: retention: %w", err)
		}
	}
	return nil
}

// RunMaintenance calls Maintain now and then every five minutes until ctx
// ends (statistics of a partition filling at thousands of rows a second go
// stale quickly). A failed round is logged and retried at the next tick: a
// database outage must not stop the process that would recover from it.
func (s *Store) RunMaintenance(ctx context.Context) error {
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	for {
		if err := s.Maintain(ctx, time.Now()); err != nil && ctx.Err() == nil {
			s.logger.Warn("maintenance failed", slog.Any("err", err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
