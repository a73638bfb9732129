package ingest

import (
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/zipq/zipq/zipkin"
)

// ZipkinHandler serves Zipkin's POST /api/v2/spans: a JSON v2 or proto3
// span list is validated with the collector's own decoder, sampled, and
// published; 202 means RabbitMQ confirmed it, exactly the durability AMQP
// clients get. Errors are plain text, as Zipkin answers them.
func (r *Receiver) ZipkinHandler() http.Handler {
	return http.HandlerFunc(r.serveZipkin)
}

func (r *Receiver) serveZipkin(w http.ResponseWriter, req *http.Request) {
	mediaType, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	want := zipkin.FormatJSON
	switch mediaType {
	case "application/x-protobuf", "application/protobuf":
		want = zipkin.FormatProto3
	case "", "application/json":
	default:
		// text/plain too: no Zipkin client sends it, and it is what a web
		// page can POST cross-origin without a CORS preflight.
		plainError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json or application/x-protobuf")
		return
	}
	release, err := r.hold(bodySize(req, int64(r.cfg.MaxBytes)))
	if err != nil {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
		plainError(w, outcomeOf(err).status, err.Error())
		return
	}
	defer release()
	body, err := readBody(w, req, int64(r.cfg.MaxBytes))
	if err != nil {
		msg := err.Error()
		if outcomeOf(err).status == http.StatusRequestEntityTooLarge {
			msg = fmt.Sprintf("body exceeds %d bytes", r.cfg.MaxBytes)
		}
		plainError(w, outcomeOf(err).status, msg)
		return
	}
	// The collector's decoder, so the edge and the collector agree on what
	// is a valid body: what it would park (JSON v1, Thrift, …) is a 400 here
	// rather than a 202 for spans that would never be stored.
	spans, format, err := zipkin.Decode(body)
	if err == nil && format != want {
		err = fmt.Errorf("the body is %s but Content-Type says %s", format, mediaType)
	}
	if err != nil {
		plainError(w, outcomeOf(err).status, "cannot decode spans: "+err.Error())
		return
	}
	contentType := "application/json"
	if format == zipkin.FormatProto3 {
		contentType = "application/x-protobuf"
	}
	if err := r.admit(req.Context(), "zipkin", len(spans), len(body)); err != nil {
		w.Header().Set("Retry-After", retryAfter(err))
		plainError(w, outcomeOf(err).status, "spans not accepted: "+err.Error())
		return
	}
	if _, err := r.publishSpans(req.Context(), spans, body, contentType); err != nil {
		id := middleware.GetReqID(req.Context())
		r.log.Warn("span ingest refused: queue unavailable", slog.String("request_id", id), slog.Any("err", err))
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
		plainError(w, outcomeOf(err).status, "spans not accepted: the span queue is unavailable, retry (request id "+id+")")
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// plainError is a plain-text error, as Zipkin returns them.
func plainError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg + "\n"))
}
