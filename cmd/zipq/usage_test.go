package main

import (
	"context"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zipq/zipq/internal/testenv"
	"github.com/zipq/zipq/storage"
	"github.com/zipq/zipq/zipkin"
)

// TestUsageCommand: `zipq usage` prints the schema's bytes and, per
// service (or operation), the spans stored in the window and their bytes,
// the largest first; the rows' bytes add up to the window's.
func TestUsageCommand(t *testing.T) {
	t.Parallel()
	url := testenv.Schema(t)
	st, err := storage.Open(context.Background(), storage.Config{URL: url}, nil)
	testenv.Must(t, err)
	defer st.Close()
	testenv.Must(t, st.Migrate(context.Background()))
	now := time.Now()
	var spans []zipkin.Span
	for i := range 30 {
		svc, name := "small", "ping"
		if i%3 == 0 {
			svc, name = "chatty", "query"
		}
		sp := zipkin.Span{TraceID: zipkin.TraceID{Low: uint64(i + 1)}, ID: zipkin.SpanID(i + 1), Name: name,
			Timestamp: now.Add(-time.Duration(i) * time.Second).UnixMicro(), Duration: 100, LocalEndpoint: &zipkin.Endpoint{ServiceName: svc}}
		if svc == "chatty" { // a statement of 1 kB that does not compress
			sql := make([]byte, 512)
			for j := range sql {
				sql[j] = byte(rand.Uint32())
			}
			sp.Tags = map[string]string{"db.statement": hex.EncodeToString(sql)}
		}
		spans = append(spans, sp)
	}
	testenv.Must(t, st.WriteSpans(context.Background(), spans))
	testenv.FoldStats(t, st, now.Add(2*time.Minute)) // the tenants' shares are read from the folded totals
	out, err := exec.Command(binary, "usage", "-postgres-url", url, "-lookback", "1h").Output()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	text := string(out)
	rows := regexp.MustCompile(`(?m)^\s*(\S+)\s+(\d+)\s+(\d+)\s+\d+\s+[\d.]+%$`).FindAllStringSubmatch(text, -1)
	total := regexp.MustCompile(`last 1h0m0s: 30 spans, (\d+) bytes`).FindStringSubmatch(text)
	share := regexp.MustCompile(`(?m)^tenant single-tenant: (\d+) bytes of the days of spans .*, spans kept since ` + now.UTC().Format(time.DateOnly) + `$`).FindStringSubmatch(text)
	if !strings.HasPrefix(text, "schema: ") || share == nil || len(rows) != 2 || total == nil || rows[0][1] != "chatty" || rows[0][2] != "10" || rows[1][2] != "20" {
		t.Fatalf("report:\n%s", text)
	}
	a, _ := strconv.Atoi(rows[0][3])
	b, _ := strconv.Atoi(rows[1][3])
	want, _ := strconv.Atoi(total[1])
	if a+b != want || a <= b {
		t.Fatalf("rows' bytes %d + %d, window %d:\n%s", a, b, want, text)
	}
	if out, err := exec.Command(binary, "usage", "-postgres-url", url, "-by", "colour").CombinedOutput(); err == nil || !strings.Contains(string(out), "-by") {
		t.Fatalf("a bad -by: %v %s", err, out)
	}
}

// TestTenantBudgetNeedsServiceMetrics: a tenant's retention_bytes is
// counted from the service metrics, so a collector asked for one with the
// metrics off refuses to start, saying why, rather than never enforcing it.
func TestTenantBudgetNeedsServiceMetrics(t *testing.T) {
	t.Parallel()
	tenants := filepath.Join(t.TempDir(), "tenants")
	testenv.Must(t, os.WriteFile(tenants, []byte("team-a retention_bytes=1000000\n"), 0o600))
	cmd := exec.Command(binary, "collector", "-postgres-url", testenv.Schema(t), "-rabbit-uri", testenv.VHost(t),
		"-tenants-file", tenants, "-no-service-metrics")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "retention_bytes") || !strings.Contains(string(out), "ZIPQ_NO_SERVICE_METRICS") {
		t.Fatalf("want a refusal naming both settings: %v\n%s", err, tail(string(out), 2000))
	}
}

// TestUsageMetrics: /metrics' storage gauges are what the last
// maintenance round measured, each tenant's share labelled with its name
// and its budget beside it.
func TestUsageMetrics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := storage.Open(ctx, storage.Config{URL: testenv.Schema(t)}, nil)
	testenv.Must(t, err)
	defer st.Close()
	testenv.Must(t, st.Migrate(ctx))
	testenv.Must(t, st.SetTenantBudgets(map[string]int64{"single-tenant": 1 << 40}))
	now := time.Now()
	testenv.Must(t, st.WriteSpans(ctx, []zipkin.Span{{TraceID: zipkin.TraceID{Low: 9}, ID: 9, Name: "get", Timestamp: now.UnixMicro(), Duration: 10,
		LocalEndpoint: &zipkin.Endpoint{ServiceName: "svc"}}}))
	testenv.FoldStats(t, st, now.Add(2*time.Minute))
	testenv.Must(t, st.Maintain(ctx, now))
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(usageMetrics(st)...)
	got := map[string]float64{}
	families, err := reg.Gather()
	testenv.Must(t, err)
	for _, f := range families {
		for _, m := range f.GetMetric() {
			name := f.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			got[name] = m.GetGauge().GetValue()
		}
	}
	day := float64(now.UTC().Truncate(24 * time.Hour).Unix())
	if got["zipq_storage_bytes"] <= 0 || got["zipq_storage_tenant_bytes{tenant=single-tenant}"] <= 0 ||
		got["zipq_storage_tenant_bytes{tenant=single-tenant}"] > got["zipq_storage_bytes"] ||
		got["zipq_storage_tenant_budget_bytes{tenant=single-tenant}"] != 1<<40 ||
		got["zipq_storage_tenant_oldest_day_timestamp_seconds{tenant=single-tenant}"] != day {
		t.Fatalf("gauges %v", got)
	}
}
