package storage

import (
	"context"
	"database/sql"
	"fmt"
	"hash/fnv"
	"log/slog"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/zipq/zipq/migrations"
)

// Migrate applies every pending migration under a PostgreSQL advisory lock,
// so collectors and query replicas starting together migrate once. The lock
// ID is derived from the schema, so tests in their own schemas do not wait
// on each other.
func (s *Store) Migrate(ctx context.Context) error { return s.MigrateTo(ctx, -1) }

// MigrateTo migrates up to version (-1: all). The benchmarks use it for a
// schema of the legacy per-span layout (LegacyVersion).
func (s *Store) MigrateTo(ctx context.Context, version int64) error {
	return s.migrate(ctx, func(p *goose.Provider) ([]*goose.MigrationResult, error) {
		if version < 0 {
			return p.Up(ctx)
		}
		return p.UpTo(ctx, version)
	})
}

// migrate runs step with the schema's migrations, under the schema's
// advisory lock.
func (s *Store) migrate(ctx context.Context, step func(*goose.Provider) ([]*goose.MigrationResult, error)) error {
	var schema string
	if err := s.pool.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return fmt.Errorf("migrate: current schema: %w", err)
	}
	h := fnv.New64a()
	h.Write([]byte("zipq.migrate." + schema))
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(int64(h.Sum64()>>1)),
		lock.WithLockTimeout(1, 120), // poll every second for two minutes
	)
	if err != nil {
		return fmt.Errorf("migrate: locker: %w", err)
	}
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS,
		goose.WithSessionLocker(locker), goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations(goose.NewGoMigration(segmentsMigration, &goose.GoFunc{RunDB: s.moveSpans}, &goose.GoFunc{RunDB: noop})))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	res, err := step(p)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, r := range res {
		s.logger.Info("migration applied", slog.String("migration", r.Source.Path), slog.Duration("took", r.Duration))
	}
	return nil
}

func noop(context.Context, *sql.DB) error { return nil }

// Standby reports whether the server is a read-only hot standby
// (pg_is_in_recovery): `zipq query` reads from one, nothing writes to it.
func (s *Store) Standby(ctx context.Context) (bool, error) {
	var standby bool
	if err := s.pool.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&standby); err != nil {
		return false, fmt.Errorf("ask for recovery: %w", err)
	}
	return standby, nil
}

// CheckMigrated reports an error unless every migration this build knows
// has been applied (by the primary, for a standby that replicates it):
// reads of an older schema would fail in confusing ways.
func (s *Store) CheckMigrated(ctx context.Context) error {
	var have *int64
	if err := s.pool.QueryRow(ctx, `SELECT max(version_id) FROM goose_db_version WHERE is_applied`).Scan(&have); err != nil {
		return fmt.Errorf("schema version: %w (not migrated yet? run zipq migrate against the primary)", err)
	}
	latest := max(migrations.Latest(), segmentsMigration) // the newest, SQL or Go
	if have == nil || *have < latest {
		v := int64(0)
		if have != nil {
			v = *have
		}
		return fmt.Errorf("schema is at version %d, this zipq needs %d: migrate the primary (zipq migrate) and let the standby catch up", v, latest)
	}
	return nil
}
