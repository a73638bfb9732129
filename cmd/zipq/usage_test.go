package main

import (
	"context"
	"encoding/hex"
	"math/rand/v2"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

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
	out, err := exec.Command(binary, "usage", "-postgres-url", url, "-lookback", "1h").Output()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	text := string(out)
	rows := regexp.MustCompile(`(?m)^\s*(\S+)\s+(\d+)\s+(\d+)\s+\d+\s+[\d.]+%$`).FindAllStringSubmatch(text, -1)
	total := regexp.MustCompile(`last 1h0m0s: 30 spans, (\d+) bytes`).FindStringSubmatch(text)
	if !strings.HasPrefix(text, "schema: ") || len(rows) != 2 || total == nil || rows[0][1] != "chatty" || rows[0][2] != "10" || rows[1][2] != "20" {
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
