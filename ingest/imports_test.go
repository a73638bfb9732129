package ingest

import (
	"os/exec"
	"strings"
	"testing"
)

// TestOnlyIngestImportsOpenTelemetry: OTLP's translation (pdata, the
// Collector's translator, and through them gRPC) stays behind ingest; the
// span model, the broker, storage, the collector and the query API do not
// depend on it, directly or through another package. (The query API's
// self-tracing middleware, zipkin-go's, brings grpc/metadata for B3
// propagation: only the data path below it must be free of gRPC.)
func TestOnlyIngestImportsOpenTelemetry(t *testing.T) {
	t.Parallel()
	noGRPC := map[string]bool{"zipkin": true, "broker": true, "storage": true, "traceql": true}
	for _, pkg := range []string{"zipkin", "broker", "storage", "collector", "query", "traceql"} {
		out, err := exec.Command("go", "list", "-deps", "github.com/zipq/zipq/"+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, "go.opentelemetry.io/") || strings.Contains(dep, "opentelemetry-collector") ||
				noGRPC[pkg] && strings.HasPrefix(dep, "google.golang.org/grpc") {
				t.Errorf("%s depends on %s: only ingest may import OpenTelemetry (and gRPC)", pkg, dep)
			}
		}
	}
}
