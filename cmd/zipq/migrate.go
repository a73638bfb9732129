package main

import (
	"context"

	"github.com/zipq/zipq/storage"
)

// runMigrate applies migrations and creates the partitions, then exits.
func runMigrate(ctx context.Context, args []string) error {
	var logLevel, logFormat string
	var sc storage.Config
	s := newSettings("migrate")
	bindLog(s, &logLevel, &logFormat)
	bindPostgres(s, &sc)
	if err := s.parse(args); err != nil {
		return err
	}
	log, err := newLogger(logLevel, logFormat)
	if err != nil {
		return err
	}
	ctx, cancel := startupContext(ctx)
	defer cancel()
	st, err := openStore(ctx, sc, log)
	if err != nil {
		return err
	}
	st.Close()
	log.Info("database migrated")
	return nil
}
