package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/zipq/zipq/auth"
	"github.com/zipq/zipq/collector"
	"github.com/zipq/zipq/ingest"
	"github.com/zipq/zipq/query"
	"github.com/zipq/zipq/spanmetrics"
	"github.com/zipq/zipq/storage"
)

// runConfig prints every setting as a Markdown table: the README's
// configuration table is this output. Defaults come from each package's
// DefaultConfig, the same values the commands start from.
func runConfig(context.Context, []string) error {
	lc, cc, qc, sc, ic := defaultLog(), collector.DefaultConfig(), query.DefaultConfig(), storage.DefaultConfig(), ingest.DefaultConfig()
	var self bool
	s := newSettings("config")
	bindHTTP(s, &qc)
	ac, tf, ten := auth.DefaultConfig(), tlsFiles{}, tenancy{}
	bindAccess(s, &ac, &tf)
	bindTenants(s, &ten, &cc.Broker)
	bindAPI(s, &qc)
	bindIngest(s, &ic, true)
	bindRabbit(s, &cc.Broker)
	bindCollector(s, &cc)
	bindPostgres(s, &sc)
	bindLog(s, &lc)
	bindSelfTracing(s, &self)
	mc := spanmetrics.DefaultConfig()
	bindSpanMetrics(s, &mc)
	fmt.Fprintln(os.Stdout, "| flag | environment | default | meaning |\n|---|---|---|---|")
	for _, r := range s.rows {
		def := r[2]
		if def == "" {
			def = "(empty)"
		}
		fmt.Fprintf(os.Stdout, "| `-%s` | `%s` | `%s` | %s |\n", r[0], r[1], def, strings.ReplaceAll(r[3], "|", "\\|"))
	}
	return nil
}
