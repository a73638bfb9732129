package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/zipq/zipq/collector"
	"github.com/zipq/zipq/storage"
)

// runConfig prints every setting as a Markdown table: the README's
// configuration table is this output.
func runConfig(context.Context, []string) error {
	var c, d string
	var hc httpConfig
	var ac apiConfig
	var cc collector.Config
	var sc storage.Config
	s := newSettings("config")
	bindHTTP(s, &hc)
	bindAPI(s, &ac)
	bindRabbit(s, &cc)
	bindCollector(s, &cc)
	bindPostgres(s, &sc)
	bindLog(s, &c, &d)
	var self bool
	bindSelfTracing(s, &self)
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
