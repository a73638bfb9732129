package ingest

import (
	"fmt"
	"mime"
	"net/http"
	"strconv"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// OTLPHandler serves OTLP/HTTP's POST /v1/traces as the OTLP specification
// says: 200 with an ExportTraceServiceResponse encoded like the request
// (with partial_success when spans were rejected), 400 with a
// google.rpc.Status for a malformed body, 413 over the size limit, 415 for
// other content types, 503 with Retry-After when RabbitMQ does not
// confirm.
func (r *Receiver) OTLPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.serveOTLP)
	return mux
}

func (r *Receiver) serveOTLP(w http.ResponseWriter, req *http.Request) {
	mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	f, ok := OTLPMediaType(mt)
	if !ok {
		r.reqs.WithLabelValues("http", "unsupported").Inc()
		writeStatus(w, OTLPJSON, http.StatusUnsupportedMediaType, codes.InvalidArgument,
			"Content-Type must be application/x-protobuf or application/json")
		return
	}
	release, err := r.hold(bodySize(req, int64(r.cfg.MaxBytes)))
	if err != nil {
		r.reqs.WithLabelValues("http", "busy").Inc()
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
		writeStatus(w, f, outcomeOf(err).status, outcomeOf(err).code, err.Error())
		return
	}
	defer release()
	body, err := readBody(w, req, int64(r.cfg.MaxBytes))
	if err != nil {
		o, result, msg := outcomeOf(err), "invalid", err.Error()
		switch o.status {
		case http.StatusRequestEntityTooLarge:
			result, msg = "too_large", fmt.Sprintf("body exceeds %d bytes", r.cfg.MaxBytes)
		case http.StatusUnsupportedMediaType:
			result = "unsupported"
		}
		r.reqs.WithLabelValues("http", result).Inc()
		writeStatus(w, f, o.status, codes.InvalidArgument, msg)
		return
	}
	rejected, err := r.exportOTLP(req.Context(), "http", body, f)
	if err != nil {
		o := outcomeOf(err)
		msg := "cannot decode the export request: " + err.Error()
		if o.retry {
			w.Header().Set("Retry-After", retryAfter(err))
			msg = retryMessage(err)
		}
		writeStatus(w, f, o.status, o.code, msg)
		return
	}
	resp := exportResponse(rejected)
	var out []byte
	if f == OTLPJSON {
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
func writeStatus(w http.ResponseWriter, f OTLPFormat, httpCode int, code codes.Code, msg string) {
	st := &spb.Status{Code: int32(code), Message: msg}
	var b []byte
	if f == OTLPJSON {
		b, _ = protojson.Marshal(st)
		w.Header().Set("Content-Type", "application/json")
	} else {
		b, _ = proto.Marshal(st)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}
	w.WriteHeader(httpCode)
	_, _ = w.Write(b)
}
