package broker

import (
	"context"
	"fmt"

	"github.com/zipq/zipq/internal/tenant"
)

// TenantPublisher publishes each message to the span queue of the tenant
// its context acts for (tenant.From): HTTP and OTLP ingest of an
// installation with several tenants, each with a queue of its own that
// collectors consume as that tenant's. The tenant is never a message
// header: whoever may publish to a queue could forge one.
type TenantPublisher struct {
	byTenant map[string]*Publisher
}

// NewTenantPublisher publishes to cfgs[name].Queue for tenant name.
func NewTenantPublisher(cfgs map[string]Config) *TenantPublisher {
	t := &TenantPublisher{byTenant: make(map[string]*Publisher, len(cfgs))}
	for name, cfg := range cfgs {
		t.byTenant[name] = NewPublisher(cfg)
	}
	return t
}

// Publish is Publisher.Publish to the context's tenant's queue.
func (t *TenantPublisher) Publish(ctx context.Context, body []byte, contentType string) error {
	name := tenant.From(ctx)
	p := t.byTenant[name]
	if p == nil { // access control lets through only the tenants configured
		return unavailable(fmt.Errorf("tenant %q has no span queue", name))
	}
	return p.Publish(ctx, body, contentType)
}

// Close closes every tenant's connection.
func (t *TenantPublisher) Close() {
	for _, p := range t.byTenant {
		p.Close()
	}
}
