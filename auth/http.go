package auth

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/zipq/zipq/internal/tenant"
)

// TenantHeader names the tenant, as in Tempo, Mimir and Loki.
const TenantHeader = "X-Scope-OrgID"

// Require serves requests that may do need, with their Principal in the
// context, and answers the rest 401, 403, 429 or (a malformed tenant) 400.
// When the authenticator does not enforce tokens, requests pass with the
// tenant they name.
func (a *Authenticator) Require(need Scope) func(http.Handler) http.Handler {
	return a.require(need, false)
}

// RequireToken is Require that needs a token even when tokens are not
// enforced: for the admin actions, which were never open.
func (a *Authenticator) RequireToken(need Scope) func(http.Handler) http.Handler {
	return a.require(need, true)
}

func (a *Authenticator) require(need Scope, always bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, err := a.check(r, need, always)
			if err != nil {
				writeError(w, err, need)
				return
			}
			next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
		})
	}
}

// Has reports whether r carries a valid credential for need, enforced or
// not: for answers that only add detail for those who may see it
// (/health's causes). A wrong credential is counted and limited like any
// other.
func (a *Authenticator) Has(r *http.Request, need Scope) bool {
	if r.Header.Get("Authorization") == "" {
		return false
	}
	_, err := a.Authenticate(r.Context(), clientIP(r.RemoteAddr), r.Header.Get("Authorization"), r.Header.Get(TenantHeader), need)
	return err == nil
}

func (a *Authenticator) check(r *http.Request, need Scope, always bool) (Principal, error) {
	return a.principal(r.Context(), clientIP(r.RemoteAddr), r.Header.Get("Authorization"), r.Header.Get(TenantHeader), need, always)
}

// principal is who a request or call is, HTTP and gRPC alike: with tokens
// enforced (or always), Authenticate's answer; else anyone, for the tenant
// it names.
func (a *Authenticator) principal(ctx context.Context, addr, authz, named string, need Scope, always bool) (Principal, error) {
	if a.Enforcing() || always {
		return a.Authenticate(ctx, addr, authz, named, need)
	}
	p, err := a.open(named)
	if err != nil {
		a.failures.WithLabelValues(reason(err)).Inc()
	}
	return p, err
}

// open is the principal of a request when tokens are not enforced: anyone,
// for the tenant it names.
func (a *Authenticator) open(named string) (Principal, error) {
	p := Principal{Name: "anonymous", Scopes: Read | Write, Tenant: DefaultTenant}
	if named != "" {
		t, err := tenant.Parse(named)
		if err != nil {
			return Principal{}, &BadTenantError{err}
		}
		p.Tenant = t
	}
	return a.served(p)
}

// writeError answers a refused request in plain text (as Zipkin's errors
// are), with the headers RFC 6750 and RFC 6585 ask for. The text says what
// to send; it never says which tokens exist.
func writeError(w http.ResponseWriter, err error, need Scope) {
	var lim *LimitedError
	var forb *ForbiddenError
	var bad *BadTenantError
	code := http.StatusUnauthorized
	switch {
	case errors.As(err, &bad):
		code = http.StatusBadRequest
	case errors.As(err, &lim):
		code = http.StatusTooManyRequests
		w.Header().Set("Retry-After", strconv.Itoa(int(lim.RetryAfter.Round(time.Second)/time.Second)))
	case errors.As(err, &forb):
		code = http.StatusForbidden
		w.Header().Set("WWW-Authenticate", `Bearer realm="zipq", error="insufficient_scope", scope="`+need.String()+`"`)
	case errors.Is(err, ErrMissing):
		w.Header().Set("WWW-Authenticate", `Bearer realm="zipq", scope="`+need.String()+`"`)
	default:
		w.Header().Set("WWW-Authenticate", `Bearer realm="zipq", error="invalid_token"`)
	}
	msg := err.Error()
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		code, msg = http.StatusServiceUnavailable, "gave up checking the token: the request ended"
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg + "\n"))
}

func clientIP(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// UnaryInterceptor checks gRPC calls for need as Require checks HTTP
// requests: the token in the authorization metadata, the tenant in
// x-scope-orgid.
func (a *Authenticator) UnaryInterceptor(need Scope) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := a.grpcCheck(ctx, need)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor is UnaryInterceptor for streams: the handler's
// stream context carries the principal and its tenant.
func (a *Authenticator) StreamInterceptor(need Scope) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := a.grpcCheck(ss.Context(), need)
		if err != nil {
			return err
		}
		return handler(srv, principalStream{ss, ctx})
	}
}

// principalStream is a server stream whose context carries the principal.
type principalStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s principalStream) Context() context.Context { return s.ctx }

func (a *Authenticator) grpcCheck(ctx context.Context, need Scope) (context.Context, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	first := func(k string) string {
		if v := md.Get(k); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	addr := ""
	if pr, ok := peer.FromContext(ctx); ok && pr.Addr != nil {
		addr = clientIP(pr.Addr.String())
	}
	p, err := a.principal(ctx, addr, first("authorization"), first("x-scope-orgid"), need, false)
	if err == nil {
		return WithPrincipal(ctx, p), nil
	}
	var lim *LimitedError
	var forb *ForbiddenError
	var bad *BadTenantError
	switch {
	case errors.As(err, &bad):
		return nil, status.Error(codes.InvalidArgument, err.Error())
	case errors.As(err, &lim):
		return nil, status.Error(codes.ResourceExhausted, err.Error())
	case errors.As(err, &forb):
		return nil, status.Error(codes.PermissionDenied, err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return nil, status.FromContextError(err).Err()
	}
	return nil, status.Error(codes.Unauthenticated, err.Error())
}
