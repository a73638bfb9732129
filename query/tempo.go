package query

// Grafana Tempo's query API beside Zipkin's, on the same port, so that
// Grafana's Tempo data source works against zipq unchanged: TraceQL search
// (/api/search), tag names and values for autocomplete, trace by ID as
// OTLP, and the probes Grafana and Tempo's clients call (README, "Grafana
// and TraceQL").

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/zipq/zipq/auth"
	"github.com/zipq/zipq/storage"
	"github.com/zipq/zipq/traceql"
	"github.com/zipq/zipq/zipkin"
)

// TempoModel is what the Tempo API needs of OpenTelemetry's translation
// (ingest.TraceQLModel): stored spans as TraceQL's model, and as OTLP.
type TempoModel interface {
	Trace(spans []zipkin.Span) (*traceql.Trace, error)
	OTLP(spans []zipkin.Span, protobuf bool) ([]byte, error)
}

// TraceFinder walks stored traces newest first, candidates nominated by
// q's service and span name, or by a prefilter of their spans' columns,
// keeping those match accepts (storage.FindTracesFiltered).
type TraceFinder interface {
	FindTracesFiltered(ctx context.Context, q zipkin.QueryRequest, strict bool, pre storage.Prefilter,
		match func(spans []zipkin.Span, from, to int64) (at int64, ok bool)) ([][]zipkin.Span, error)
}

// Tempo API limits and defaults; documented in the README.
const (
	TempoDefaultLimit    = 20        // traces a search returns unless limit says
	TempoDefaultSpss     = 3         // spans shown per spanset unless spss says
	TempoMaxSpss         = 1000      // a larger spss is clamped to this
	TempoDefaultLookback = time.Hour // a search without start covers the hour before end
	tagScanTraces        = 200       // traces read for tag names and values
	maxTagValues         = 1000
)

// TempoAPIVersion is the Tempo version /api/status/buildinfo reports: the
// API level zipq answers (Grafana enables what it asks of by version, and
// gRPC streaming search, from 2.2, is not served).
const TempoAPIVersion = "2.1.0"

type tempoAPI struct {
	a      *api
	model  TempoModel
	finder TraceFinder
	stats  StatsReader // nil: no TraceQL metrics
}

// tempoRoutes mounts Tempo's paths under /api (v2 ones sit in the /api/v2
// group with Zipkin's: v2Routes).
func (t *tempoAPI) routes(r chi.Router, version string) {
	r.Get("/api/echo", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("echo"))
	})
	r.Get("/api/status/buildinfo", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"version": TempoAPIVersion, "revision": "zipq " + version,
			"branch": "zipq", "buildDate": "", "buildUser": "", "goVersion": runtime.Version()})
	})
	r.With(t.a.readerReady).Get("/ready", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ready"))
	})
	rr := r.With(t.a.o.Auth.Require(auth.Read), t.a.readerReady)
	heavy := rr.With(t.a.heavyRead)
	heavy.Get("/api/search", t.search)
	heavy.Get("/api/traces/{traceId}", t.traceByID(1))
	heavy.Get("/api/search/tags", t.tags(1))
	heavy.Get("/api/search/tag/{tag}/values", t.tagValues(1))
	if t.stats != nil { // heavy: a query the service metrics cannot answer scans traces
		heavy.Get("/api/metrics/query_range", t.metrics(false))
		heavy.Get("/api/metrics/query", t.metrics(true))
	}
}

// v2Routes are Tempo's /api/v2 paths, inside Zipkin's /api/v2 group.
func (t *tempoAPI) v2Routes(r chi.Router) {
	rr := r.With(t.a.o.Auth.Require(auth.Read), t.a.readerReady)
	heavy := rr.With(t.a.heavyRead)
	heavy.Get("/traces/{traceId}", t.traceByID(2))
	heavy.Get("/search/tags", t.tags(2))
	heavy.Get("/search/tag/{tag}/values", t.tagValues(2))
}

// window reads Tempo's start and end (unix seconds): end defaults to now,
// start to end - TempoDefaultLookback.
func tempoWindow(r *http.Request) (start, end time.Time, err error) {
	q := r.URL.Query()
	end = time.Now()
	if v := q.Get("end"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return start, end, badf("end %q: want unix epoch seconds", truncate(v))
		}
		end = time.Unix(n, 0)
	}
	start = end.Add(-TempoDefaultLookback)
	if v := q.Get("start"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return start, end, badf("start %q: want unix epoch seconds", truncate(v))
		}
		start = time.Unix(n, 0)
	}
	if start.After(end) {
		return start, end, badf("start %d is after end %d", start.Unix(), end.Unix())
	}
	return start, end, nil
}

// searchQuery is the TraceQL of a search: q, or the legacy tags,
// minDuration and maxDuration written as TraceQL.
func searchQuery(r *http.Request) (string, error) {
	p := r.URL.Query()
	if q := strings.TrimSpace(p.Get("q")); q != "" {
		if p.Get("tags") != "" {
			return "", badf("q and tags: give one (tags, minDuration and maxDuration are the legacy search)")
		}
		return q, nil
	}
	var conds []string
	pairs, err := logfmt(p.Get("tags"))
	if err != nil {
		return "", err
	}
	for _, kv := range pairs {
		// Tempo's legacy search matches a value as a case-insensitive
		// substring of a span or resource attribute.
		conds = append(conds, fmt.Sprintf(`%s =~ %q`, &traceql.Attribute{Name: kv[0]}, "(?i).*"+regexp.QuoteMeta(kv[1])+".*"))
	}
	for _, b := range []struct{ name, op string }{{"minDuration", ">="}, {"maxDuration", "<="}} {
		if v := p.Get(b.name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return "", badf("%s %q: want a duration such as 100ms or 2s", b.name, truncate(v))
			}
			conds = append(conds, fmt.Sprintf("traceDuration %s %s", b.op, d))
		}
	}
	return "{ " + strings.Join(conds, " && ") + " }", nil
}

// logfmt reads Tempo's tags parameter: key=value pairs separated by
// spaces, values with spaces in double quotes.
func logfmt(s string) ([][2]string, error) {
	var out [][2]string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		k, rest, ok := strings.Cut(s, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, badf("tags %q: want key=value pairs separated by spaces", truncate(s))
		}
		var v string
		if strings.HasPrefix(rest, `"`) {
			end := strings.Index(rest[1:], `"`)
			if end < 0 {
				return nil, badf("tags: unterminated quoted value after %s=", truncate(k))
			}
			v, s = rest[1:1+end], rest[2+end:]
		} else {
			v, s, _ = strings.Cut(rest, " ")
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

type tempoSearchResponse struct {
	Traces  []tempoTrace   `json:"traces"`
	Metrics map[string]any `json:"metrics"`
}

type tempoTrace struct {
	TraceID           string          `json:"traceID"`
	RootServiceName   string          `json:"rootServiceName"`
	RootTraceName     string          `json:"rootTraceName,omitempty"`
	StartTimeUnixNano string          `json:"startTimeUnixNano"`
	DurationMs        int64           `json:"durationMs"`
	SpanSet           *tempoSpanSet   `json:"spanSet,omitempty"` // deprecated by Tempo, still read by older Grafanas
	SpanSets          []tempoSpanSet  `json:"spanSets"`
	ServiceStats      map[string]stat `json:"serviceStats,omitempty"`
}

type stat struct {
	SpanCount  int `json:"spanCount"`
	ErrorCount int `json:"errorCount,omitempty"`
}

type tempoSpanSet struct {
	Spans      []tempoSpan     `json:"spans"`
	Matched    int             `json:"matched"`
	Attributes []tempoKeyValue `json:"attributes,omitempty"`
}

type tempoSpan struct {
	SpanID            string          `json:"spanID"`
	Name              string          `json:"name"`
	StartTimeUnixNano string          `json:"startTimeUnixNano"`
	DurationNanos     string          `json:"durationNanos"`
	Attributes        []tempoKeyValue `json:"attributes,omitempty"`
}

type tempoKeyValue struct {
	Key   string         `json:"key"`
	Value map[string]any `json:"value"`
}

// anyValue is a value as OTLP's JSON AnyValue writes it.
func anyValue(v traceql.Value) map[string]any {
	switch v.Type() {
	case traceql.TypeInt, traceql.TypeDuration:
		return map[string]any{"intValue": v.String()}
	case traceql.TypeFloat:
		return map[string]any{"doubleValue": v.Native()}
	case traceql.TypeBool:
		return map[string]any{"boolValue": v.Native()}
	}
	return map[string]any{"stringValue": v.String()}
}

// rootNotReceived is Tempo's root service name of a trace whose root span
// is missing.
const rootNotReceived = "<root span not yet received>"

func (t *tempoAPI) search(w http.ResponseWriter, r *http.Request) {
	text, err := searchQuery(r)
	if err != nil {
		t.a.fail(w, r, err)
		return
	}
	q, err := traceql.Compile(text)
	if err != nil {
		t.a.fail(w, r, badf("q: %v", err))
		return
	}
	start, end, err := tempoWindow(r)
	if err != nil {
		t.a.fail(w, r, err)
		return
	}
	limit, err := positive(r.URL.Query(), "limit", TempoDefaultLimit, MaxLimit)
	if err != nil {
		t.a.fail(w, r, err)
		return
	}
	spss, err := positive(r.URL.Query(), "spss", TempoDefaultSpss, TempoMaxSpss)
	if err != nil {
		t.a.fail(w, r, err)
		return
	}
	results := map[string]tempoTrace{}
	inspected := 0
	traces, err := t.walk(r.Context(), hinted(q, start, end, limit), q.Prefilter(), func(tr *traceql.Trace, spans []zipkin.Span) bool {
		inspected++
		sets := q.Run(tr)
		if len(sets) > 0 {
			results[spans[0].TraceID.String()] = describe(q, tr, sets, spss)
		}
		return len(sets) > 0
	})
	if err != nil {
		t.a.fail(w, r, err)
		return
	}
	resp := tempoSearchResponse{Traces: []tempoTrace{}, Metrics: map[string]any{"inspectedTraces": inspected, "completedJobs": 1, "totalJobs": 1}}
	for _, spans := range traces {
		if res, ok := results[spans[0].TraceID.String()]; ok {
			resp.Traces = append(resp.Traces, res)
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// newestStart is the start of a trace's newest span in [from, to] (µs).
func newestStart(spans []zipkin.Span, from, to int64) (int64, bool) {
	best, ok := int64(0), false
	for i := range spans {
		if at := spans[i].StartTime(); at >= from && at <= to && (!ok || at > best) {
			best, ok = at, true
		}
	}
	return best, ok
}

// describe is a matched trace as Tempo's search answers it.
func describe(q *traceql.Query, tr *traceql.Trace, sets []traceql.Spanset, spss int) tempoTrace {
	out := tempoTrace{
		TraceID: traceIDOf(tr.ID), RootServiceName: rootNotReceived,
		StartTimeUnixNano: strconv.FormatInt(tr.Start, 10), DurationMs: (tr.End - tr.Start) / 1e6,
		ServiceStats: map[string]stat{},
	}
	if tr.Root != nil {
		if s := tr.Root.Resource["service.name"]; s.Type() == traceql.TypeString {
			out.RootServiceName = s.String()
		}
		out.RootTraceName = tr.Root.Name
	}
	for _, s := range tr.Spans {
		svc := s.Resource["service.name"].String()
		st := out.ServiceStats[svc]
		st.SpanCount++
		if s.Status == "error" {
			st.ErrorCount++
		}
		out.ServiceStats[svc] = st
	}
	fields := q.Fields()
	for _, ss := range sets {
		set := tempoSpanSet{Matched: len(ss.Spans), Spans: []tempoSpan{}}
		for _, a := range ss.Attributes {
			set.Attributes = append(set.Attributes, tempoKeyValue{Key: a.Name, Value: anyValue(a.Value)})
		}
		for _, s := range ss.Spans[:min(len(ss.Spans), spss)] {
			sp := tempoSpan{SpanID: s.ID, Name: s.Name, StartTimeUnixNano: strconv.FormatInt(s.Start, 10),
				DurationNanos: strconv.FormatInt(s.End-s.Start, 10)}
			seen := map[string]bool{}
			add := func(key string, v traceql.Value) {
				if v.Type() != traceql.TypeNil && !seen[key] {
					seen[key] = true
					sp.Attributes = append(sp.Attributes, tempoKeyValue{Key: key, Value: anyValue(v)})
				}
			}
			add("service.name", s.Resource["service.name"])
			for _, f := range append(slices.Clone(fields), ss.Selected...) {
				if in, ok := f.(*traceql.Intrinsic); ok && (strings.HasPrefix(in.Name, "trace:") || in.Name == "span:name" || in.Name == "span:duration") {
					continue // the trace's and the span's own fields above
				}
				add(traceql.FieldName(f), q.Eval(f, tr, s))
			}
			set.Spans = append(set.Spans, sp)
		}
		out.SpanSets = append(out.SpanSets, set)
	}
	if len(out.SpanSets) > 0 {
		out.SpanSet = &out.SpanSets[0]
	}
	return out
}

// traceIDOf is a TraceQL trace ID (32 hex digits) as zipq names it: 16
// digits when the upper half is zero, as Zipkin does.
func traceIDOf(id string) string {
	if len(id) == 32 && strings.Trim(id[:16], "0") == "" {
		return id[16:]
	}
	return id
}

// traceByID answers Tempo's trace by ID: OTLP JSON, or protobuf with
// Accept: application/protobuf; version 1 names the resource spans
// "batches" (as Tempo does), version 2 wraps the trace in a response.
// start and end may be given (Grafana does) but never narrow the read.
func (t *tempoAPI) traceByID(version int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := parseTraceID(chi.URLParam(r, "traceId"))
		if err != nil {
			t.a.fail(w, r, err)
			return
		}
		if _, _, err := tempoWindow(r); err != nil {
			t.a.fail(w, r, err)
			return
		}
		traces, err := t.a.o.Reader.Traces(r.Context(), []zipkin.TraceID{id}, t.a.o.StrictTraceID)
		if err != nil {
			t.a.fail(w, r, err)
			return
		}
		if len(traces) == 0 {
			t.a.notFound(w, r, id)
			return
		}
		proto := strings.Contains(r.Header.Get("Accept"), "application/protobuf") || strings.Contains(r.Header.Get("Accept"), "application/x-protobuf")
		body, err := t.model.OTLP(traces[0], proto)
		if err != nil {
			t.a.fail(w, r, err)
			return
		}
		switch {
		case proto && version == 2: // TraceByIDResponse: the trace is field 1
			body = protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), body)
		case version == 1:
			body = []byte(strings.Replace(string(body), `"resourceSpans":`, `"batches":`, 1))
		default:
			body = append(append([]byte(`{"trace":`), body...), '}')
		}
		if proto {
			w.Header().Set("Content-Type", "application/protobuf")
		} else {
			w.Header().Set("Content-Type", "application/json")
		}
		_, _ = w.Write(body)
	}
}

// intrinsicTags are the intrinsics Tempo's tags API lists.
var intrinsicTags = []string{"duration", "event:name", "event:timeSinceStart", "instrumentation:name", "instrumentation:version",
	"kind", "name", "rootName", "rootServiceName", "span:childCount", "span:duration", "span:id", "span:kind", "span:name",
	"span:parentID", "span:status", "span:statusMessage", "status", "statusMessage", "trace:duration", "trace:id",
	"trace:rootName", "trace:rootService", "traceDuration"}

var tagScopes = []string{"resource", "span", "intrinsic", "event", "link", "instrumentation"}

// scan reads up to tagScanTraces of the newest traces in the request's
// window and calls fn on each span (of the spans a filter q keeps, when
// given); tag names and values come from the data, as in Tempo.
func (t *tempoAPI) scan(r *http.Request, filter *traceql.Query, fn func(q *traceql.Query, tr *traceql.Trace, s *traceql.Span)) error {
	start, end, err := tempoWindow(r)
	if err != nil {
		return err
	}
	if filter == nil {
		filter, _ = traceql.Compile("{ }")
	}
	_, err = t.walk(r.Context(), zipkin.QueryRequest{EndTs: end, Lookback: end.Sub(start), Limit: tagScanTraces}, filter.Prefilter(),
		func(tr *traceql.Trace, _ []zipkin.Span) bool {
			for _, ss := range filter.Run(tr) {
				for _, s := range ss.Spans {
					fn(filter, tr, s)
				}
			}
			return true
		})
	return err
}

// hinted is the index walk's request for q's traces in [start, end]: the
// window, the limit, and the equalities q's hints say every match has.
func hinted(q *traceql.Query, start, end time.Time, limit int) zipkin.QueryRequest {
	h := q.Hints()
	return zipkin.QueryRequest{ServiceName: h.Service, SpanName: h.SpanName, AnnotationQuery: h.Terms,
		EndTs: end, Lookback: end.Sub(start), Limit: limit}
}

// walk reads stored traces newest first through the index walk (q's
// window, limit and hints) or, when pre is given and q has no hints, the
// span columns, and keeps those with a span in the window that keep says
// to keep, given their TraceQL model; a trace the model cannot be made of
// is skipped. pre must name every trace keep could keep.
func (t *tempoAPI) walk(ctx context.Context, q zipkin.QueryRequest, pre *traceql.Prefilter, keep func(tr *traceql.Trace, spans []zipkin.Span) bool) ([][]zipkin.Span, error) {
	var p storage.Prefilter
	if pre != nil { // a nil *Prefilter is not a nil interface
		p = pre
	}
	return t.finder.FindTracesFiltered(ctx, q, t.a.o.StrictTraceID, p, func(spans []zipkin.Span, from, to int64) (int64, bool) {
		at, ok := newestStart(spans, from, to)
		if !ok {
			return 0, false
		}
		tr, err := t.model.Trace(spans)
		if err != nil || !keep(tr, spans) {
			return 0, false
		}
		return at, true
	})
}

func (t *tempoAPI) tags(version int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		scope := r.URL.Query().Get("scope")
		if scope != "" && scope != "all" && !slices.Contains(tagScopes, scope) {
			t.a.fail(w, r, badf("scope %q: want %s or all", truncate(scope), strings.Join(tagScopes, ", ")))
			return
		}
		names := map[string]map[string]bool{}
		for _, s := range tagScopes {
			names[s] = map[string]bool{}
		}
		for _, n := range intrinsicTags {
			names["intrinsic"][n] = true
		}
		err := t.scan(r, nil, func(_ *traceql.Query, _ *traceql.Trace, s *traceql.Span) {
			for k := range s.Resource {
				names["resource"][k] = true
			}
			for k := range s.Attrs {
				names["span"][k] = true
			}
			for k := range s.ScopeAttrs {
				names["instrumentation"][k] = true
			}
			for _, e := range s.Events {
				for k := range e.Attrs {
					names["event"][k] = true
				}
			}
			for _, l := range s.Links {
				for k := range l.Attrs {
					names["link"][k] = true
				}
			}
		})
		if err != nil {
			t.a.fail(w, r, err)
			return
		}
		wanted := func(s string) bool { return scope == "" || scope == "all" || scope == s }
		if version == 1 { // resource and span names together, as Tempo's v1
			all := map[string]bool{}
			for _, s := range []string{"resource", "span"} {
				if wanted(s) {
					for k := range names[s] {
						all[k] = true
					}
				}
			}
			if scope == "intrinsic" {
				all = names["intrinsic"]
			}
			writeJSON(w, http.StatusOK, map[string]any{"tagNames": slices.Sorted(maps.Keys(all))})
			return
		}
		type scoped struct {
			Name string   `json:"name"`
			Tags []string `json:"tags"`
		}
		out := []scoped{}
		for _, s := range tagScopes {
			if wanted(s) && len(names[s]) > 0 {
				out = append(out, scoped{s, slices.Sorted(maps.Keys(names[s]))})
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"scopes": out})
	}
}

// tagValues lists a field's values in the window (v2: with their types;
// v1: the attribute named as in tags, unscoped). q, a spanset filter,
// keeps the values of the spans it matches; an unparsable q is ignored,
// as Tempo ignores it (autocomplete sends incomplete queries).
func (t *tempoAPI) tagValues(version int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tag := chi.URLParam(r, "tag")
		if version == 1 && !strings.HasPrefix(tag, ".") && !strings.Contains(tag, ":") {
			tag = (&traceql.Attribute{Name: tag}).String()
		}
		field, err := traceql.ParseField(tag)
		if err != nil {
			t.a.fail(w, r, badf("tag %q: %v", truncate(tag), err))
			return
		}
		var filter *traceql.Query
		if q := strings.TrimSpace(r.URL.Query().Get("q")); q != "" {
			if c, err := traceql.Compile(q); err == nil {
				if _, ok := c.Tree.Elements[0].(*traceql.Filter); ok && len(c.Tree.Elements) == 1 {
					filter = c
				}
			}
		}
		limit, err := positive(r.URL.Query(), "limit", maxTagValues, maxTagValues)
		if err != nil {
			t.a.fail(w, r, err)
			return
		}
		type typed struct {
			Type  string `json:"type"`
			Value string `json:"value"`
		}
		seen := map[traceql.Value]bool{}
		var values []traceql.Value
		err = t.scan(r, filter, func(q *traceql.Query, tr *traceql.Trace, s *traceql.Span) {
			v := q.Eval(field, tr, s)
			if v.Type() == traceql.TypeNil || seen[v] || len(values) >= limit {
				return
			}
			seen[v] = true
			values = append(values, v)
		})
		if err != nil {
			t.a.fail(w, r, err)
			return
		}
		slices.SortFunc(values, func(a, b traceql.Value) int { return strings.Compare(a.String(), b.String()) })
		if version == 1 {
			out := make([]string, len(values))
			for i, v := range values {
				out[i] = v.String()
			}
			writeJSON(w, http.StatusOK, map[string]any{"tagValues": out})
			return
		}
		out := make([]typed, len(values))
		for i, v := range values {
			typ := v.Type().String()
			switch v.Type() {
			case traceql.TypeInt:
				typ = "int"
			case traceql.TypeBool:
				typ = "bool"
			case traceql.TypeStatus, traceql.TypeKind:
				typ = "keyword"
			}
			out[i] = typed{typ, v.String()}
		}
		writeJSON(w, http.StatusOK, map[string]any{"tagValues": out})
	}
}
