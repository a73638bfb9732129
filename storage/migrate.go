package storage

import (
	"context"
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
func (s *Store) Migrate(ctx context.Context) error {
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
		goose.WithSessionLocker(locker), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, r := range res {
		s.logger.Info("migration applied", slog.String("migration", r.Source.Path), slog.Duration("took", r.Duration))
	}
	return nil
}
