package main

import "context"

// runMigrate applies migrations and creates the partitions, then exits.
func runMigrate(ctx context.Context, args []string) error {
	log, st, err := boot(ctx, "migrate", args, nil)
	if err != nil {
		return err
	}
	st.Close()
	log.Info("database migrated")
	return nil
}
