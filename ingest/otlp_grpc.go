package ingest

import (
	"context"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // OTLP exporters may compress with gzip
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// GRPCServer serves OTLP/gRPC's TraceService/Export. Requests reach it as
// raw bytes (a codec of its own) so that a malformed request is
// INVALID_ARGUMENT, as OTLP asks, rather than the INTERNAL gRPC answers
// when its own unmarshalling fails; pdata decodes them like OTLP/HTTP's.
// Messages are bounded by MaxBytes after decompression. opts add to the
// server's (e.g. a stats handler for self-tracing).
//
// Connections are bounded in time as well as by the listener's count: one
// idle for 2 minutes is closed, any is asked to reconnect after 30 (with
// 30 s to finish what it sends), a client may not ping more often than
// every 10 s, and one connection carries at most 16 exports at once.
func (r *Receiver) GRPCServer(opts ...grpc.ServerOption) *grpc.Server {
	limits := []grpc.ServerOption{
		grpc.ForceServerCodec(rawCodec{}), grpc.MaxRecvMsgSize(r.cfg.MaxBytes),
		grpc.MaxConcurrentStreams(16),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: 2 * time.Minute,
			MaxConnectionAge: 30 * time.Minute, MaxConnectionAgeGrace: 30 * time.Second, Time: time.Minute, Timeout: 20 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	}
	s := grpc.NewServer(append(limits, opts...)...)
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: "opentelemetry.proto.collector.trace.v1.TraceService",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Export", Handler: func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			var body []byte
			if err := dec(&body); err != nil {
				return nil, err
			}
			if ic == nil {
				return r.exportGRPC(ctx, body)
			}
			// The server's interceptors (access control) run around the
			// export, as in generated service code.
			info := &grpc.UnaryServerInfo{Server: srv, FullMethod: "/opentelemetry.proto.collector.trace.v1.TraceService/Export"}
			return ic(ctx, &body, info, func(ctx context.Context, req any) (any, error) { return r.exportGRPC(ctx, *req.(*[]byte)) })
		}}},
		Metadata: "opentelemetry/proto/collector/trace/v1/trace_service.proto",
	}, r)
	return s
}

func (r *Receiver) exportGRPC(ctx context.Context, body []byte) (*[]byte, error) {
	var rejected int
	release, err := r.hold(int64(len(body)))
	if err == nil {
		rejected, err = r.exportOTLP(ctx, "grpc", body, OTLPProto)
		release()
	}
	if err != nil {
		o := outcomeOf(err)
		if o.retry {
			st, _ := status.New(o.code, retryMessage(err)).
				WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(retryDelay(err))})
			return nil, st.Err()
		}
		return nil, status.Error(o.code, "cannot decode the export request: "+err.Error())
	}
	out, err := exportResponse(rejected).MarshalProto()
	if err != nil {
		return nil, status.Error(codes.Internal, "encode response")
	}
	return &out, nil
}

// exportResponse is an exported request's answer: a partial success when
// spans were rejected.
func exportResponse(rejected int) ptraceotlp.ExportResponse {
	resp := ptraceotlp.NewExportResponse()
	if rejected > 0 {
		resp.PartialSuccess().SetRejectedSpans(int64(rejected))
		resp.PartialSuccess().SetErrorMessage(strconv.Itoa(rejected) +
			" span(s) rejected: an all-zero trace or span ID, or a start, end or event time that is not a moment (end before start, before 1970, past 2^63 ns)")
	}
	return resp
}

// rawCodec hands message bytes through untouched, both ways.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, status.Errorf(codes.Internal, "raw codec: cannot marshal %T", v)
	}
	return *b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return status.Errorf(codes.Internal, "raw codec: cannot unmarshal into %T", v)
	}
	*b = append((*b)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }
