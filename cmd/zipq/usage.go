package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/zipq/zipq/internal/tenant"
	"github.com/zipq/zipq/storage"
)

// runUsage prints what the disk holds and whose spans take it: the
// schema's bytes against the budget, then per service (or operation) the
// spans stored over a window and their segments' bytes, most first, so an
// operator knows whom to ask to sample. GET /api/zipq/usage is the same.
func runUsage(ctx context.Context, args []string) error {
	var (
		lookback = 24 * time.Hour
		by       = "service"
		limit    = 20
		name     string
	)
	_, st, err := boot(ctx, "usage", args, func(s *settings) {
		s.duration(&lookback, "lookback", "", "the window, ending now")
		s.str(&by, "by", "", "service, or spanName for one row per operation")
		integer(s, &limit, "limit", "", "rows printed (the largest)")
		s.str(&name, "tenant", "", "the tenant to report on (default: the default tenant)")
		s.check(func() error {
			if by != "service" && by != "spanName" {
				return fmt.Errorf("-by %q: want service or spanName", by)
			}
			if _, err := tenant.Parse(name); name != "" && err != nil {
				return err
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	defer st.Close()

	ctx = tenant.With(ctx, name)
	u, err := st.Usage(ctx)
	if err != nil {
		return err
	}
	group := storage.ByService
	if by == "spanName" {
		group |= storage.ByName
	}
	end := time.Now()
	series, err := st.Stats(ctx, storage.StatsQuery{Start: end.Add(-lookback), End: end, Step: lookback, By: group})
	if err != nil {
		return err
	}
	fmt.Print(usageReport(u, tenant.From(ctx), series, lookback, limit))
	return nil
}

// usageReport is runUsage's text: the schema's size, the tenant's share of
// it, then a table.
func usageReport(u storage.Usage, name string, series []storage.StatsSeries, lookback time.Duration, limit int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "schema: %d bytes", u.Bytes)
	if u.Budget > 0 {
		fmt.Fprintf(&b, ", %.0f%% of the %d-byte budget (ZIPQ_RETENTION_BYTES)", 100*float64(u.Bytes)/float64(u.Budget), u.Budget)
		if u.OverBudget {
			b.WriteString(", over it with only today's spans left")
		}
	}
	if !u.OldestDay.IsZero() {
		fmt.Fprintf(&b, "; spans kept since %s", u.OldestDay.Format(time.DateOnly))
	}
	if u.Dictionary > 0 {
		fmt.Fprintf(&b, "; segments compressed with learned dictionary %d (%.0f%% smaller than before on held-out segments)", u.Dictionary, 100*u.DictionaryGain)
	}
	if t, ok := tenantUsage(u, name); ok {
		fmt.Fprintf(&b, "\ntenant %s: %d bytes of the days of spans (its share, by segment bytes), spans kept since %s", t.Tenant, t.Bytes, t.OldestDay.Format(time.DateOnly))
		if t.Budget > 0 {
			fmt.Fprintf(&b, ", %.0f%% of its %d-byte budget (retention_bytes)", 100*float64(t.Bytes)/float64(t.Budget), t.Budget)
		}
	}
	rows, spans, bytes := storage.UsageRows(series)
	fmt.Fprintf(&b, "\nlast %v: %d spans, %d bytes of segments (each span's share of its segment by size)\n\n", lookback, spans, bytes)
	w := tabwriter.NewWriter(&b, 0, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "service\tspan name\tspans\tbytes\tbytes/span\tshare\t")
	for i, r := range rows {
		if i == limit {
			fmt.Fprintf(w, "(%d more)\t\t\t\t\t\t\n", len(rows)-limit)
			break
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%.0f\t%.1f%%\t\n", r.Service, r.Name, r.Spans, r.Bytes, r.BytesPerSpan, 100*r.Share)
	}
	_ = w.Flush()
	return b.String()
}
