package storage

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/zipq/zipq/internal/tenant"
)

// Every row stores its tenant as a number (the tenants table); the context
// names the tenant a read or write acts for (tenant.From), resolved here.
// Numbers never change once given, so they are cached for the process.

// defaultTenantID is tenant.Default's number: every row stored before
// tenants existed is its.
const defaultTenantID int16 = 0

// errNoTenant is a tenant with no number yet: it has stored nothing, so a
// read for it finds nothing.
var errNoTenant = errors.New("tenant has stored nothing")

// tenantOf is the number of the tenant ctx acts for; with create, a tenant
// seen for the first time is given the next number (writes), else it is
// errNoTenant (reads).
func (s *Store) tenantOf(ctx context.Context, create bool) (int16, error) {
	name := tenant.From(ctx)
	if name == tenant.Default {
		return defaultTenantID, nil
	}
	if id, ok := s.tenantIDs.Load(name); ok {
		return id.(int16), nil
	}
	for range 3 { // two writers numbering two new tenants at once: one retries
		var id int16
		err := s.pool.QueryRow(ctx, `SELECT id FROM tenants WHERE name = $1`, name).Scan(&id)
		switch {
		case err == nil:
			s.tenantIDs.Store(name, id)
			return id, nil
		case !errors.Is(err, pgx.ErrNoRows):
			return 0, fmt.Errorf("tenant %q: %w", name, err)
		case !create:
			return 0, errNoTenant
		}
		if _, err := s.pool.Exec(ctx, `INSERT INTO tenants (id, name) SELECT coalesce(max(id), 0) + 1, $1 FROM tenants
			ON CONFLICT DO NOTHING`, name); err != nil {
			return 0, fmt.Errorf("number tenant %q: %w", name, err)
		}
	}
	return 0, fmt.Errorf("number tenant %q: lost the race three times", name)
}

// tenantName is the name of tenant number id.
func (s *Store) tenantName(ctx context.Context, id int16) (string, error) {
	if id == defaultTenantID {
		return tenant.Default, nil
	}
	if name, ok := s.tenantNames.Load(id); ok {
		return name.(string), nil
	}
	var name string
	if err := s.pool.QueryRow(ctx, `SELECT name FROM tenants WHERE id = $1`, id).Scan(&name); err != nil {
		return "", fmt.Errorf("tenant %d: %w", id, err)
	}
	s.tenantNames.Store(id, name)
	return name, nil
}

// readTenant is tenantOf for a read: ok is false when the tenant has
// stored nothing (the read's answer is then empty).
func (s *Store) readTenant(ctx context.Context) (id int16, ok bool, err error) {
	id, err = s.tenantOf(ctx, false)
	if errors.Is(err, errNoTenant) {
		return 0, false, nil
	}
	return id, err == nil, err
}
