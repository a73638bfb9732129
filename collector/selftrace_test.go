package collector_test

import (
	"context"
	"errors"
	"testing"
	"time"

	zipkingo "github.com/openzipkin/zipkin-go"
	"github.com/openzipkin/zipkin-go/reporter/recorder"

	"github.com/zipq/zipq/collector"
	"github.com/zipq/zipq/internal/testenv"
	"github.com/zipq/zipq/zipkin"
)

// TestTracedWriterKeepsThePreparer: with self-tracing on, the collector
// still encodes a batch while the previous one commits (the store's
// Preparer is not hidden by the tracing wrapper), and each commit is a
// "write batch" span.
func TestTracedWriterKeepsThePreparer(t *testing.T) {
	t.Parallel()
	rec := recorder.NewReporter()
	t.Cleanup(func() { _ = rec.Close() })
	tracer, err := zipkingo.NewTracer(rec)
	testenv.Must(t, err)
	e := newEnv(t, collector.Config{})
	w := collector.TracedWriter(e.store, tracer)
	p, ok := w.(collector.Preparer)
	if !ok {
		t.Fatal("TracedWriter hides the store's Preparer")
	}
	commit, err := p.PrepareWrite([]zipkin.Span{{TraceID: zipkin.TraceID{Low: 1}, ID: 1, LocalEndpoint: &zipkin.Endpoint{ServiceName: "svc"}}})
	testenv.Must(t, err)
	testenv.Must(t, commit(t.Context()))
	if spans := rec.Flush(); len(spans) != 1 || spans[0].Name != "write batch" {
		t.Fatalf("recorded %+v, want one write batch span", spans)
	}
}

// failingPrepare is a store whose encoding ahead of the commit fails.
type failingPrepare struct{ collector.SpanWriter }

func (failingPrepare) PrepareWrite([]zipkin.Span) (func(context.Context) error, error) {
	return nil, errors.New("encoder broken")
}

// TestPrepareFailureIsWrittenPlainlyAndCounted: a batch whose encoding
// ahead of the commit fails is still stored (written plainly), and the
// failure is counted and logged rather than passed over.
func TestPrepareFailureIsWrittenPlainlyAndCounted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, collector.Config{})
	e.start(e.cfg, failingPrepare{e.store})
	publish(t, e.cfg.Broker.URL, e.cfg.Broker.Queue, spansBody(t, zipkin.FormatJSON, 5, 20))
	e.waitCount(20, 20*time.Second)
	if n := gathered(t, e, "zipq_collector_prepare_errors_total"); n < 1 {
		t.Fatalf("zipq_collector_prepare_errors_total = %v, want the failed batch counted", n)
	}
}

// gathered is the value of an unlabelled counter of the latest collector.
func gathered(t *testing.T, e *env, name string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	testenv.Must(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}
