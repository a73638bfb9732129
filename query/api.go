package query

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/zipq/zipq/auth"
	"github.com/zipq/zipq/storage"
	"github.com/zipq/zipq/zipkin"
)

// SpanReader is what the Zipkin read API needs from storage.
type SpanReader interface {
	ServiceNames(ctx context.Context) ([]string, error)
	SpanNames(ctx context.Context, service string) ([]string, error)
	RemoteServiceNames(ctx context.Context, service string) ([]string, error)
	AutocompleteValues(ctx context.Context, key string) ([]string, error)
	FindTraces(ctx context.Context, q zipkin.QueryRequest, strict bool) ([][]zipkin.Span, error)
	Traces(ctx context.Context, ids []zipkin.TraceID, strict bool) ([][]zipkin.Span, error)
	Dependencies(ctx context.Context, endTs time.Time, lookback time.Duration) ([]zipkin.DependencyLink, error)
}

// Limits of the API; documented in the README.
const (
	DefaultLimit = 10
	MaxLimit     = 1000 // a larger limit is clamped to this
	MaxTraceIDs  = 1000 // traceMany accepts at most this many IDs
)

type api struct {
	o     Options
	log   *slog.Logger
	heavy chan struct{} // a slot per trace-returning read in progress (MaxHeavyReads)
}

func (a *api) routes(r chi.Router) {
	if a.o.Reader != nil {
		r := r.With(a.o.Auth.Require(auth.Read), a.readerReady)
		r.Get("/services", a.services)
		r.Get("/spans", a.byService(a.o.Reader.SpanNames))
		r.Get("/remoteServices", a.byService(a.o.Reader.RemoteServiceNames))
		// The reads that return whole traces hold their answers (megabytes
		// each) until a client has read them: they are bounded in number.
		heavy := r.With(a.heavyRead)
		heavy.Get("/traces", a.traces)
		heavy.Get("/trace/{traceId}", a.trace)
		heavy.Get("/traceMany", a.traceMany)
		r.Get("/dependencies", a.dependencies)
		r.Get("/autocompleteKeys", a.autocompleteKeys)
		r.Get("/autocompleteValues", a.autocompleteValues)
	}
	if a.o.Ingest != nil {
		r.With(a.o.Auth.Require(auth.Write), a.sameOriginWrites).Method(http.MethodPost, "/spans", a.o.Ingest)
	}
}

// sameOriginWrites refuses a POST from a web page whose origin
// QUERY_ALLOWED_ORIGINS does not list. CORS alone cannot stop it: a
// "simple" request (no Content-Type, or a form type) is sent without a
// preflight and only its answer is hidden from the page, after the spans
// were accepted. Browsers name the page in Origin; other clients send none.
func (a *api) sameOriginWrites(next http.Handler) http.Handler {
	anyOrigin := slices.Contains(a.o.AllowedOrigins, "*")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && !anyOrigin && !slices.ContainsFunc(a.o.AllowedOrigins, func(o string) bool { return strings.EqualFold(o, origin) }) {
			httpError(w, http.StatusForbidden, "origin "+truncate(origin)+" may not post spans: it is not in QUERY_ALLOWED_ORIGINS")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// heavyRead admits a trace-returning read while fewer than MaxHeavyReads
// are in progress, and answers 503 with Retry-After otherwise: each holds
// its whole answer until the client has read it (a slow reader of a large
// trace pinned megabytes for the whole write timeout), so their number
// bounds that memory.
func (a *api) heavyRead(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case a.heavy <- struct{}{}:
			defer func() { <-a.heavy }()
			next.ServeHTTP(w, r)
		default:
			w.Header().Set("Retry-After", "1")
			httpError(w, http.StatusServiceUnavailable, fmt.Sprintf("%d trace reads are in progress, the most zipq answers at once; retry", cap(a.heavy)))
		}
	})
}

// readerReady answers 503 + Retry-After while the database is not ready
// (unreachable or not migrated at start), instead of failing each read.
func (a *api) readerReady(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.o.ReaderReady != nil {
			if err := a.o.ReaderReady(); err != nil {
				w.Header().Set("Retry-After", "5")
				httpError(w, http.StatusServiceUnavailable, "the database is not ready yet (unreachable, or being migrated); retry")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// badRequest is a parameter error: HTTP 400 with its message.
type badRequest struct{ msg string }

func (e badRequest) Error() string { return e.msg }

func badf(format string, args ...any) error { return badRequest{fmt.Sprintf(format, args...)} }

// fail answers an error: 400 for bad input, 500 (logged once) otherwise.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	var br badRequest
	if errors.As(err, &br) {
		httpError(w, http.StatusBadRequest, br.msg)
		return
	}
	if r.Context().Err() != nil {
		return // the client went away
	}
	// The cause (database user, host, SQL) goes to the log only; the client
	// gets the request id to quote.
	id := middleware.GetReqID(r.Context())
	a.log.Error("query failed", slog.String("path", r.URL.Path), slog.String("request_id", id), slog.Any("err", err))
	httpError(w, http.StatusInternalServerError, "internal error (request id "+id+"); the server log has the cause")
}

func (a *api) names(w http.ResponseWriter, r *http.Request, get func() ([]string, error)) {
	names, err := get()
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, names)
}

func (a *api) services(w http.ResponseWriter, r *http.Request) {
	a.names(w, r, func() ([]string, error) { return a.o.Reader.ServiceNames(r.Context()) })
}

// byService lists names recorded for the required serviceName parameter.
func (a *api) byService(list func(context.Context, string) ([]string, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a.names(w, r, func() ([]string, error) {
			svc, err := requiredName(r, "serviceName")
			if err != nil {
				return nil, err
			}
			return list(r.Context(), svc)
		})
	}
}

func (a *api) autocompleteKeys(w http.ResponseWriter, _ *http.Request) {
	keys := a.o.AutocompleteKeys
	if keys == nil {
		keys = []string{}
	}
	writeJSON(w, http.StatusOK, keys)
}

func (a *api) autocompleteValues(w http.ResponseWriter, r *http.Request) {
	a.names(w, r, func() ([]string, error) {
		key := r.URL.Query().Get("key")
		if key == "" {
			return nil, badf("key is required")
		}
		return a.o.Reader.AutocompleteValues(r.Context(), key)
	})
}

// requiredName reads a service or span name, lower-cased as stored.
func requiredName(r *http.Request, param string) (string, error) {
	v := strings.ToLower(strings.TrimSpace(r.URL.Query().Get(param)))
	if v == "" {
		return "", badf("%s is required", param)
	}
	return v, nil
}

func (a *api) traces(w http.ResponseWriter, r *http.Request) {
	q, err := a.parseQuery(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if v := r.URL.Query().Get("minDurationQuantile"); v != "" {
		var none bool
		if q.MinDuration, none, err = a.durationQuantile(r, q, v); err != nil {
			a.fail(w, r, err)
			return
		}
		if none { // no span of the cell in the window: no trace can match
			writeTraces(w, nil)
			return
		}
	}
	traces, err := a.o.Reader.FindTraces(r.Context(), q, a.o.StrictTraceID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeTraces(w, traces)
}

// durationQuantile reads minDurationQuantile, zipq's percentile search:
// "spans of this service (and span name) slower than its p95 in the
// window" is minDurationQuantile=0.95. It returns the minDuration that
// finds them from the service metrics — the quantile less the sketch's
// relative accuracy, so spans at the true quantile are found — or none
// when the cell had no spans in the window.
func (a *api) durationQuantile(r *http.Request, q zipkin.QueryRequest, v string) (minDuration int64, none bool, err error) {
	f, perr := strconv.ParseFloat(v, 64)
	switch {
	case perr != nil || !(f > 0 && f < 1):
		return 0, false, badf("minDurationQuantile must be a number between 0 and 1 (0.95 for the p95), got %q", truncate(v))
	case q.ServiceName == "":
		return 0, false, badf("minDurationQuantile needs serviceName (and optionally spanName): the quantile is that operation's")
	case r.URL.Query().Get("minDuration") != "":
		return 0, false, badf("minDuration and minDurationQuantile: give one")
	case a.o.Stats == nil:
		return 0, false, badf("minDurationQuantile: this server does not read the service metrics")
	}
	start := q.EndTs.Add(-q.Lookback)
	var total storage.StatsPoint
	err = a.o.Stats.ReadStats(r.Context(), storage.StatsQuery{Service: q.ServiceName, Name: q.SpanName, Remote: q.RemoteServiceName,
		Start: start, End: q.EndTs, Step: statsStep(start, q.Lookback), Quantiles: []float64{f}}, func(series []storage.StatsSeries) error {
		if len(series) > 0 {
			total = series[0].Total // its own, not the lent points'
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	if total.Calls == 0 {
		return 0, true, nil
	}
	return max(1, int64(total.Quantiles[0]/(1+storage.SketchAccuracy))), false, nil
}

// parseQuery validates /traces parameters as Zipkin's QueryRequest does;
// unknown parameters are ignored.
func (a *api) parseQuery(r *http.Request) (zipkin.QueryRequest, error) {
	v := r.URL.Query()
	q := zipkin.QueryRequest{
		ServiceName:       strings.ToLower(strings.TrimSpace(v.Get("serviceName"))),
		RemoteServiceName: strings.ToLower(strings.TrimSpace(v.Get("remoteServiceName"))),
		SpanName:          strings.ToLower(strings.TrimSpace(v.Get("spanName"))),
		Limit:             DefaultLimit,
	}
	if q.SpanName == "all" { // Zipkin's classic UI sends "all" for any
		q.SpanName = ""
	}
	var err error
	if q.AnnotationQuery, err = zipkin.ParseAnnotationQuery(v.Get("annotationQuery")); err != nil {
		return q, badRequest{err.Error()}
	}
	if q.MinDuration, err = nonNegative(v, "minDuration"); err != nil {
		return q, err
	}
	if v.Get("minDuration") != "" && q.MinDuration == 0 {
		return q, badf("minDuration must be a positive number of microseconds, got 0")
	}
	if q.MaxDuration, err = nonNegative(v, "maxDuration"); err != nil {
		return q, err
	}
	switch {
	case q.MaxDuration > 0 && q.MinDuration == 0 && v.Get("minDurationQuantile") == "":
		return q, badf("maxDuration is only valid with minDuration (or minDurationQuantile)")
	case q.MaxDuration > 0 && q.MaxDuration < q.MinDuration:
		return q, badf("maxDuration should be >= minDuration")
	}
	if q.MinTraceDuration, err = nonNegative(v, "minTraceDuration"); err != nil {
		return q, err
	}
	if q.MaxTraceDuration, err = nonNegative(v, "maxTraceDuration"); err != nil {
		return q, err
	}
	if q.MaxTraceDuration > 0 && q.MaxTraceDuration < q.MinTraceDuration {
		return q, badf("maxTraceDuration should be >= minTraceDuration")
	}
	if q.EndTs, q.Lookback, err = a.window(r); err != nil {
		return q, err
	}
	q.Limit, err = positive(v, "limit", DefaultLimit, MaxLimit)
	return q, err
}

// window reads endTs (epoch ms, default now) and lookback (ms, default
// QUERY_LOOKBACK). A lookback reaching before the epoch is cut there.
func (a *api) window(r *http.Request) (time.Time, time.Duration, error) {
	v := r.URL.Query()
	end := time.Now()
	if s := v.Get("endTs"); s != "" {
		ms, err := strconv.ParseInt(s, 10, 64)
		// Zipkin works in epoch microseconds: an endTs whose microseconds
		// overflow int64 would silently become another window.
		if err != nil || ms <= 0 || ms > math.MaxInt64/1000 {
			return end, 0, badf("endTs must be a positive number of epoch milliseconds, got %q", truncate(s))
		}
		end = time.UnixMilli(ms)
	}
	lookbackMs := a.o.Lookback.Milliseconds()
	if s := v.Get("lookback"); s != "" {
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil || ms <= 0 {
			return end, 0, badf("lookback must be a positive number of milliseconds, got %q", truncate(s))
		}
		lookbackMs = ms
	}
	lookbackMs = min(lookbackMs, end.UnixMilli(), math.MaxInt64/int64(time.Millisecond))
	return end, time.Duration(lookbackMs) * time.Millisecond, nil
}

func nonNegative(v url.Values, name string) (int64, error) {
	s := v.Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, badf("%s must be a non-negative number of microseconds, got %q", name, truncate(s))
	}
	return n, nil
}

// positive reads a positive integer parameter: def when absent, at most
// limit (a larger one is clamped).
func positive(v url.Values, name string, def, limit int) (int, error) {
	s := v.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, badf("%s must be a positive integer, got %q", name, truncate(s))
	}
	return min(n, limit), nil
}

// truncate keeps error messages short when the input is hostile.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func (a *api) trace(w http.ResponseWriter, r *http.Request) {
	raw := chi.URLParam(r, "traceId")
	id, err := parseTraceID(raw)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	traces, err := a.o.Reader.Traces(r.Context(), []zipkin.TraceID{id}, a.o.StrictTraceID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if len(traces) == 0 {
		a.notFound(w, r, id)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(zipkin.EncodeJSON(traces[0]))
}

// ThinnedReader says whether keep by value took a trace out, and when
// (storage.Store.Thinned).
type ThinnedReader interface {
	Thinned(ctx context.Context, id zipkin.TraceID, strict bool) (storage.Thinning, bool, error)
}

// notFound answers a trace read by ID that found no spans: 404, saying
// so when the keep-by-value policy thinned it rather than leaving the
// reader to guess at retention or a wrong ID.
func (a *api) notFound(w http.ResponseWriter, r *http.Request, id zipkin.TraceID) {
	msg := "trace " + id.String() + " not found"
	if a.o.Thinned != nil {
		th, ok, err := a.o.Thinned.Thinned(r.Context(), id, a.o.StrictTraceID)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if ok {
			msg = fmt.Sprintf("trace %s was thinned by keep-by-value policy %q on %s: only traces the policy keeps are stored past then",
				id, th.Policy, th.Day.Format(time.DateOnly))
		}
	}
	httpError(w, http.StatusNotFound, msg)
}

// parseTraceID reads a trace ID parameter; surrounding whitespace (a
// copy-paste's trailing space) is ignored.
func parseTraceID(s string) (zipkin.TraceID, error) {
	s = strings.TrimSpace(s)
	id, err := zipkin.ParseTraceID(s)
	if err != nil {
		return id, badf("traceId %q: %v (want 16 or 32 hex characters)", truncate(s), err)
	}
	if id.IsZero() {
		return id, badf("traceId %q is all zeros", truncate(s))
	}
	return id, nil
}

func (a *api) traceMany(w http.ResponseWriter, r *http.Request) {
	raw := r.URL.Query().Get("traceIds")
	if raw == "" {
		a.fail(w, r, badf("traceIds parameter is empty"))
		return
	}
	parts := strings.Split(raw, ",")
	if len(parts) > MaxTraceIDs {
		a.fail(w, r, badf("traceIds: at most %d IDs, got %d", MaxTraceIDs, len(parts)))
		return
	}
	seen := map[zipkin.TraceID]bool{}
	ids := make([]zipkin.TraceID, 0, len(parts))
	for _, p := range parts {
		id, err := parseTraceID(p) // trims it
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if seen[id] {
			a.fail(w, r, badf("redundant traceId: %s", truncate(p)))
			return
		}
		seen[id] = true
		ids = append(ids, id)
	}
	if len(ids) == 1 {
		a.fail(w, r, badf("use /api/v2/trace/{traceId} to retrieve a single trace"))
		return
	}
	traces, err := a.o.Reader.Traces(r.Context(), ids, a.o.StrictTraceID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeTraces(w, traces)
}

func (a *api) dependencies(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("endTs") == "" {
		a.fail(w, r, badf("endTs is required (epoch milliseconds)"))
		return
	}
	end, lookback, err := a.window(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	links, err := a.o.Reader.Dependencies(r.Context(), end, lookback)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if links == nil {
		links = []zipkin.DependencyLink{}
	}
	writeJSON(w, http.StatusOK, links)
}

// writeTraces renders a list of traces with the span encoder Zipkin's
// JSON v2 uses, so every span has the exact shape POSTed spans have.
func writeTraces(w http.ResponseWriter, traces [][]zipkin.Span) {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, t := range traces {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(zipkin.EncodeJSON(t))
	}
	b.WriteByte(']')
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b.Bytes())
}
