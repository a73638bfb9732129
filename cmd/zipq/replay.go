package main

import (
	"context"
	"fmt"
	"os"
	"slices"

	"github.com/zipq/zipq/collector"
	"github.com/zipq/zipq/zipkin"
)

// runReplay moves parked messages back to the span queue: all, -limit N,
// or only those parked for -reason R.
func runReplay(ctx context.Context, args []string) error {
	var logLevel, logFormat, reason string
	var limit int
	var cc collector.Config
	s := newSettings("replay")
	bindLog(s, &logLevel, &logFormat)
	bindRabbit(s, &cc)
	s.integer(&limit, "limit", "", 0, "replay at most this many messages (0: all)")
	s.str(&reason, "reason", "", "", "replay only messages parked for this reason (e.g. too_large, delivery_limit)")
	if err := s.parse(args); err != nil {
		return err
	}
	known := append(slices.Clone(zipkin.Reasons), collector.ReasonStoreRejected, zipkin.ReasonDeliveryLimit)
	if reason != "" && !slices.Contains(known, zipkin.Reason(reason)) {
		return fmt.Errorf("unknown reason %q; one of %v", reason, known)
	}
	if limit < 0 {
		return fmt.Errorf("-limit must not be negative")
	}
	ctx, cancel := startupContext(ctx)
	defer cancel()
	n, err := replayer{cc.WithDefaults()}.Replay(ctx, limit, reason)
	fmt.Fprintf(os.Stdout, "replayed %d message(s) from %s\n", n, cc.WithDefaults().ParkedQueue)
	return err
}
