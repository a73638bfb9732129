package main

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/zipq/zipq/internal/testenv"
	"github.com/zipq/zipq/storage"
	"github.com/zipq/zipq/zipkin"
)

// TestQueryReadsFromAHotStandby: `zipq query` serves from a streaming
// replica (built here with pg_basebackup, on ports of the test's own)
// while spans are written through the primary: it neither migrates nor
// maintains there, and spans written to the primary become visible through
// it. A collector pointed at the standby refuses to start, saying why.
func TestQueryReadsFromAHotStandby(t *testing.T) {
	t.Parallel()
	r := testenv.StartReplica(t)
	if out, err := exec.Command(binary, "migrate", "-postgres-url", r.PrimaryURL).CombinedOutput(); err != nil {
		t.Fatalf("migrate the primary: %v\n%s", err, out)
	}
	q := startZipq(t, []string{"POSTGRES_URL=" + r.StandbyURL, "RABBIT_URI=" + testenv.VHost(t), "ZIPQ_LOG_LEVEL=info"}, "query")

	primary, err := storage.Open(context.Background(), storage.Config{URL: r.PrimaryURL}, nil)
	testenv.Must(t, err)
	defer primary.Close()
	testenv.Must(t, primary.Maintain(context.Background(), time.Now()))
	id := zipkin.TraceID{Low: 0x5ca1ab1e}
	testenv.Must(t, primary.WriteSpans(context.Background(), []zipkin.Span{
		{TraceID: id, ID: 1, Name: "get", Kind: zipkin.KindServer, Timestamp: time.Now().UnixMicro(), Duration: 10,
			LocalEndpoint: &zipkin.Endpoint{ServiceName: "replicated"}},
	}))
	testenv.Eventually(t, 30*time.Second, "the span visible through the standby", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://%s/api/v2/trace/%s", q.addr, id))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	var names []string
	getJSON(t, "http://"+q.addr+"/api/v2/services", &names)
	if len(names) != 1 || names[0] != "replicated" {
		t.Fatalf("services through the standby: %v", names)
	}
	log := q.output()
	if !strings.Contains(log, "reading from a hot standby") || strings.Contains(log, "migration applied") ||
		strings.Contains(log, "partition created") {
		t.Fatalf("query on a standby must not migrate or maintain:\n%s", tail(log, 3000))
	}
	out, err := exec.Command(binary, "collector", "-postgres-url", r.StandbyURL, "-rabbit-uri", testenv.VHost(t)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "read-only standby") {
		t.Fatalf("a collector on a standby must refuse to start: %v\n%s", err, tail(string(out), 2000))
	}
}
