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
// itself forever.
func TracedWriter(w SpanWriter, tracer *zipkingo.Tracer) SpanWriter {
	return tracedWriter{w: w, tracer: tracer}
}

type tracedWriter struct {
	w      SpanWriter
	tracer *zipkingo.Tracer
}

func (t tracedWriter) WriteSpans(ctx context.Context, spans []zipkin.Span) error {
	own := true
	for i := range spans {
		if spans[i].LocalServiceName() != broker.SelfService {
			own = false
			break
		}
	}
	if own {
		return t.w.WriteSpans(ctx, spans)
	}
	sp, ctx := t.tracer.StartSpanFromContext(ctx, "write batch", zipkingo.Kind(model.Client),
		zipkingo.RemoteEndpoint(&model.Endpoint{ServiceName: "postgres"}))
	defer sp.Finish()
	sp.Tag("zipq.spans", strconv.Itoa(len(spans)))
	err := t.w.WriteSpans(ctx, spans)
	if err != nil {
		zipkingo.TagError.Set(sp, err.Error())
	}
	return err
}
