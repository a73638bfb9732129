package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/zipq/zipq/broker"
	"github.com/zipq/zipq/internal/tenant"
	"github.com/zipq/zipq/zipkin"
)

// runReplay moves parked messages back to the span queue: all, -limit N,
// or only those parked for -reason R.
func runReplay(ctx context.Context, args []string) error {
	lc, bc := defaultLog(), broker.DefaultConfig()
	var reason string
	var limit int
	s := newSettings("replay")
	bindLog(s, &lc)
	bindRabbit(s, &bc)
	integer(s, &limit, "limit", "", "replay at most this many messages (0: all)")
	s.str(&reason, "reason", "", "replay only messages parked for this reason (e.g. too_large, delivery_limit)")
	known := append(slices.Clone(zipkin.Reasons), broker.ReasonStoreRejected, zipkin.ReasonDeliveryLimit)
	s.check(func() error {
		var errs []error
		if reason != "" && !slices.Contains(known, zipkin.Reason(reason)) {
			errs = append(errs, fmt.Errorf("unknown reason %q; one of %v", reason, known))
		}
		if limit < 0 {
			errs = append(errs, errors.New("-limit must not be negative"))
		}
		return errors.Join(errs...)
	})
	if err := s.parse(args); err != nil {
		return err
	}
	ctx, cancel := startupContext(ctx)
	defer cancel()
	bc = bc.WithDefaults()
	n, err := replayer{cfgs: map[string]broker.Config{tenant.Default: bc}}.Replay(ctx, limit, reason)
	fmt.Fprintf(os.Stdout, "replayed %d message(s) from %s\n", n, bc.ParkedQueue)
	return err
}
