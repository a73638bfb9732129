package collector

import (
	"context"
	"strconv"

	zipkingo "github.com/openzipkin/zipkin-go"
	"github.com/openzipkin/zipkin-go/model"

	"github.com/zipq/zipq/broker"
	"github.com/zipq/zipq/zipkin"
)

// TracedWriter records each batch write as a span of zipq's own. Batches
// made only of zipq's spans are not traced, or self-tracing would feed
// itself forever. When w is a Preparer, so is the result: tracing must not
// cost the collector its encoding ahead of the commit.
func TracedWriter(w SpanWriter, tracer *zipkingo.Tracer) SpanWriter {
	t := tracedWriter{w: w, tracer: tracer}
	if p, ok := w.(Preparer); ok {
		return tracedPreparer{t, p}
	}
	return t
}

type tracedWriter struct {
	w      SpanWriter
	tracer *zipkingo.Tracer
}

func (t tracedWriter) WriteSpans(ctx context.Context, spans []zipkin.Span) error {
	return t.traced(ctx, spans, func(ctx context.Context) error { return t.w.WriteSpans(ctx, spans) })
}

// traced runs write inside a "write batch" span, unless the batch is only
// zipq's own spans.
func (t tracedWriter) traced(ctx context.Context, spans []zipkin.Span, write func(context.Context) error) error {
	own := true
	for i := range spans {
		if spans[i].LocalServiceName() != broker.SelfService {
			own = false
			break
		}
	}
	if own {
		return write(ctx)
	}
	sp, ctx := t.tracer.StartSpanFromContext(ctx, "write batch", zipkingo.Kind(model.Client),
		zipkingo.RemoteEndpoint(&model.Endpoint{ServiceName: "postgres"}))
	defer sp.Finish()
	sp.Tag("zipq.spans", strconv.Itoa(len(spans)))
	err := write(ctx)
	if err != nil {
		zipkingo.TagError.Set(sp, err.Error())
	}
	return err
}

// tracedPreparer traces the commit of a prepared batch (the write's span
// covers the transaction, as for WriteSpans).
type tracedPreparer struct {
	tracedWriter
	p Preparer
}

func (t tracedPreparer) PrepareWrite(spans []zipkin.Span) (func(context.Context) error, error) {
	commit, err := t.p.PrepareWrite(spans)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return t.traced(ctx, spans, commit) }, nil
}
