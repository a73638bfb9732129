package otlp

import (
	"errors"
	"fmt"
	"mime"
	"net/http"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/zipq/zipq/internal/httpbody"
	"github.com/zipq/zipq/zipkin"
)

// HTTPHandler serves OTLP/HTTP's POST /v1/traces as the OTLP
// specification says: 200 with an ExportTraceServiceResponse encoded like
// the request (with partial_success when spans were rejected), 400 with a
// google.rpc.Status for a malformed body, 413 over the size limit, 415
// for other content types, 503 with Retry-After when RabbitMQ does not
// confirm.
func (r *Receiver) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.serveHTTP)
	return mux
}

func (r *Receiver) serveHTTP(w http.ResponseWriter, req *http.Request) {
	mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	f, ok := zipkin.OTLPMediaType(mt)
	if !ok {
		r.reqs.WithLabelValues("http", "unsupported").Inc()
		writeStatus(w, zipkin.OTLPJSON, http.StatusUnsupportedMediaType, codes.InvalidArgument,
			"Content-Type must be application/x-protobuf or application/json")
		return
	}
	body, err := httpbody.Read(w, req, int64(r.cfg.MaxBytes))
	if err != nil {
		if errors.Is(err, httpbody.ErrTooLarge) {
			r.reqs.WithLabelValues("http", "too_large").Inc()
			writeStatus(w, f, http.StatusRequestEntityTooLarge, codes.InvalidArgument, fmt.Sprintf("body exceeds %d bytes", r.cfg.MaxBytes))
			return
		}
		r.reqs.WithLabelValues("http", "invalid").Inc()
		writeStatus(w, f, http.StatusBadRequest, codes.InvalidArgument, err.Error())
		return
	}
	rejected, err := r.export(req.Context(), "http", body, f)
	var unavailable errUnavailable
	switch {
	case errors.As(err, &unavailable):
		w.Header().Set("Retry-After", "1")
		writeStatus(w, f, http.StatusServiceUnavailable, codes.Unavailable, "the span queue is unavailable; retry")
		return
	case err != nil:
		writeStatus(w, f, http.StatusBadRequest, codes.InvalidArgument, "cannot decode the export request: "+err.Error())
		return
	}
	resp := answer(rejected)
	var out []byte
	if f == zipkin.OTLPJSON {
		out, err = resp.MarshalJSON()
		w.Header().Set("Content-Type", "application/json")
	} else {
		out, err = resp.MarshalProto()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}
	if err != nil {
		http.Error(w, "encode response", http.StatusInternalServerError)
		return
	}
	_, _ = w.Write(out)
}

// writeStatus answers with a google.rpc.Status, encoded as the request
// was, as OTLP/HTTP asks of error responses.
func writeStatus(w http.ResponseWriter, f zipkin.OTLPFormat, httpCode int, code codes.Code, msg string) {
	st := &spb.Status{Code: int32(code), Message: msg}
	var b []byte
	if f == zipkin.OTLPJSON {
		b, _ = protojson.Marshal(st)
		w.Header().Set("Content-Type", "application/json")
	} else {
		b, _ = proto.Marshal(st)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}
	w.WriteHeader(httpCode)
	_, _ = w.Write(b)
}
