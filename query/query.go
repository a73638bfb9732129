// Package query is zipq's HTTP surface on chi: the Zipkin API v2, the
// operational endpoints (/health, /metrics, /info) and the admin replay
// endpoint. It declares what it needs from the rest of zipq as small
// interfaces and never imports storage or collector.
package query

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// HealthCheck is one dependency /health reports on.
type HealthCheck struct {
	Name  string
	Check func(ctx context.Context) error
}

// Replayer moves parked messages back to their queue (collector.Replay).
type Replayer interface {
	Replay(ctx context.Context, limit int, reason string) (int, error)
}

// Options wires the router. Nil fields switch their routes off.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer // request metrics are registered here
	Gatherer   prometheus.Gatherer   // /metrics and /prometheus serve this
	Health     []HealthCheck
	Version    string
	// AdminToken protects /admin/*; empty disables those routes entirely.
	AdminToken string
	Replayer   Replayer
}

// NewRouter builds the HTTP handler.
func NewRouter(o Options) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	if o.Registerer != nil {
		r.Use(instrument(o.Registerer))
	}
	r.Get("/health", health(o.Health))
	r.Get("/info", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"zipkin": map[string]string{"version": o.Version}, "zipq": map[string]string{"version": o.Version}})
	})
	if o.Gatherer != nil {
		h := promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{})
		r.Method(http.MethodGet, "/metrics", h)
		r.Method(http.MethodGet, "/prometheus", h)
	}
	if o.AdminToken != "" && o.Replayer != nil {
		r.With(requireToken(o.AdminToken)).Post("/admin/replay", replay(o.Replayer, o.Logger))
	}
	return r
}

func health(checks []HealthCheck) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		type status struct {
			Status string `json:"status"`
			Error  string `json:"error,omitempty"`
		}
		out := map[string]any{}
		deps := map[string]status{}
		code, overall := http.StatusOK, "UP"
		for _, c := range checks {
			if err := c.Check(ctx); err != nil {
				deps[c.Name] = status{Status: "DOWN", Error: err.Error()}
				code, overall = http.StatusServiceUnavailable, "DOWN"
				continue
			}
			deps[c.Name] = status{Status: "UP"}
		}
		out["status"] = overall
		out["zipkin"] = map[string]any{"status": overall, "details": deps}
		writeJSON(w, code, out)
	}
}

// requireToken compares in constant time so the token cannot be guessed by
// timing.
func requireToken(token string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
				httpError(w, http.StatusUnauthorized, "admin token required: Authorization: Bearer <ZIPQ_ADMIN_TOKEN>")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func replay(rp Replayer, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		limit := 0
		if s := r.URL.Query().Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				httpError(w, http.StatusBadRequest, "limit must be a non-negative integer")
				return
			}
			limit = n
		}
		reason := r.URL.Query().Get("reason")
		n, err := rp.Replay(r.Context(), limit, reason)
		if err != nil {
			log.Error("replay failed", slog.Int("replayed", n), slog.Any("err", err))
			writeJSON(w, http.StatusBadGateway, map[string]any{"replayed": n, "error": err.Error()})
			return
		}
		log.Info("replayed parked messages", slog.Int("replayed", n), slog.String("reason", reason))
		writeJSON(w, http.StatusOK, map[string]int{"replayed": n})
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// httpError is a plain-text error, as Zipkin returns them.
func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg + "\n"))
}

// instrument counts requests and their latency per route pattern (not per
// URL, so trace IDs do not explode the label set).
func instrument(reg prometheus.Registerer) func(http.Handler) http.Handler {
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zipq_http_requests_total",
		Help: "HTTP requests by route and status."}, []string{"route", "method", "code"})
	lat := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "zipq_http_request_seconds",
		Help: "HTTP request latency by route.", Buckets: prometheus.DefBuckets}, []string{"route", "method"})
	reg.MustRegister(reqs, lat)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			next.ServeHTTP(ww, r)
			route := chi.RouteContext(r.Context()).RoutePattern()
			if route == "" {
				route = "unmatched"
			}
			reqs.WithLabelValues(route, r.Method, strconv.Itoa(ww.Status())).Inc()
			lat.WithLabelValues(route, r.Method).Observe(time.Since(start).Seconds())
		})
	}
}
