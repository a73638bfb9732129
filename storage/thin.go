package storage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zipq/zipq/internal/tenant"
	"github.com/zipq/zipq/zipkin"
)

// Keep by value: every trace is kept whole for a while (Config.KeepAfter
// past the end of its day); then the day's traces are judged by the
// policy (Config.Keep) and the day's partitions rewritten without the
// ones it does not keep. What the service metrics and the dependency
// links say was counted at ingest and is left as it was: thinning removes
// spans, never what was learned from them.

// ThinPolicy says which traces of a day keep by value keeps; the rest are
// thinned. A trace is kept for the first reason that applies, in the
// order of the fields.
type ThinPolicy struct {
	// Errors keeps traces with a failed span (error tag or OTLP status).
	Errors bool
	// Slower, in (0, 1), keeps traces with a span slower than that
	// quantile of its operation (service and span name) over the day, as
	// the service metrics' sketch gives it (within SketchAccuracy).
	Slower float64
	// Rare keeps traces with a span of an operation called fewer times
	// than this over the day.
	Rare int64
	// Sample keeps this fraction of the other traces, chosen by trace ID
	// (the lower 64 bits modulo 10,000) so every replica and every day
	// keeps the same ones.
	Sample float64
}

// Thin reasons, as thin_counts.reason stores them.
const (
	thinError   = "error"
	thinSlow    = "slow"
	thinRare    = "rare"
	thinSampled = "sampled"
	thinned     = "thinned"
)

// ParseThinPolicy reads ZIPQ_KEEP: comma-separated clauses errors,
// slow=p99 (any quantile, p99.9 or 0.999), rare=N and sample=P% (or a
// fraction), e.g. "errors,slow=p99,rare=100,sample=10%". Empty is no
// policy (ok false): keep by value is off.
func ParseThinPolicy(s string) (p ThinPolicy, ok bool, err error) {
	if strings.TrimSpace(s) == "" {
		return p, false, nil
	}
	seen := map[string]bool{}
	for clause := range strings.SplitSeq(s, ",") {
		key, val, hasVal := strings.Cut(strings.TrimSpace(clause), "=")
		if seen[key] {
			return p, false, fmt.Errorf("keep policy %q: %q given twice", s, key)
		}
		seen[key] = true
		switch key {
		case "errors":
			if hasVal {
				return p, false, fmt.Errorf("keep policy %q: errors takes no value", s)
			}
			p.Errors = true
		case "slow":
			q, err := parseQuantile(val)
			if err != nil {
				return p, false, fmt.Errorf("keep policy %q: slow=%q: %w", s, val, err)
			}
			p.Slower = q
		case "rare":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n < 1 {
				return p, false, fmt.Errorf("keep policy %q: rare=%q: want a count of calls a day, at least 1", s, val)
			}
			p.Rare = n
		case "sample":
			f, err := parseFraction(val)
			if err != nil {
				return p, false, fmt.Errorf("keep policy %q: sample=%q: %w", s, val, err)
			}
			p.Sample = f
		default:
			return p, false, fmt.Errorf("keep policy %q: unknown clause %q (want errors, slow=p99, rare=N or sample=P%%)", s, clause)
		}
	}
	return p, true, nil
}

// parseQuantile reads p99, p99.9 or 0.99.
func parseQuantile(v string) (float64, error) {
	q, err := strconv.ParseFloat(strings.TrimPrefix(v, "p"), 64)
	if err == nil && strings.HasPrefix(v, "p") {
		q /= 100
	}
	if err != nil || !(q > 0 && q < 1) {
		return 0, errors.New("want a quantile such as p99, p99.9 or 0.99")
	}
	return q, nil
}

// parseFraction reads 10% or 0.1.
func parseFraction(v string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
	if err == nil && strings.HasSuffix(v, "%") {
		f /= 100
	}
	if err != nil || !(f >= 0 && f <= 1) {
		return 0, errors.New("want a share between 0% and 100%")
	}
	return f, nil
}

// String is the policy as ParseThinPolicy reads it, clauses in order.
func (p ThinPolicy) String() string {
	var c []string
	if p.Errors {
		c = append(c, "errors")
	}
	if p.Slower > 0 {
		c = append(c, "slow=p"+strconv.FormatFloat(p.Slower*100, 'f', -1, 64))
	}
	if p.Rare > 0 {
		c = append(c, "rare="+strconv.FormatInt(p.Rare, 10))
	}
	c = append(c, "sample="+strconv.FormatFloat(p.Sample*100, 'f', -1, 64)+"%")
	return strings.Join(c, ",")
}

// sampled is the Sample rule: the same IDs are kept wherever it runs.
func (p ThinPolicy) sampled(id zipkin.TraceID) bool {
	return id.Low%10_000 < uint64(math.Round(p.Sample*10_000))
}

// thinOp is an operation's figures over the day being thinned.
type thinOp struct {
	calls int64
	slow  float64 // µs: spans slower than this are slow; +Inf when Slower is off
}

// opKey is an operation as the service metrics' cells name it.
type opKey struct{ service, name string }

// thinTrace is what judging a trace needs of it, gathered segment by
// segment.
type thinTrace struct {
	inDay   bool   // has a segment in the day (else only a neighbour's)
	spans   int64  // stored in the day's segments
	reason  string // the first of the policy's reasons found so far; "" none
	service string // its root span's local service, else its earliest span's
	first   int64  // the earliest start seen, for service
	rooted  bool
}

// ThinCount is how many traces (and the spans stored for them that day) a
// thinning kept, or took out, for one reason and root service.
type ThinCount struct {
	Tenant, Service, Reason string
	Traces, Spans           int64
}

// ThinResult is one day's thinning.
type ThinResult struct {
	Day                     time.Time // zero: no day was due
	Counts                  []ThinCount
	BytesBefore, BytesAfter int64 // the day's segments and span_index partitions
}

// thinWindow is how far into the neighbouring days a trace's spans are
// looked at when it is judged: a trace crossing midnight is judged whole
// when it lasts less than this.
const thinWindow = time.Hour

// errThinWait: the day is due but the linker has not linked all of it
// yet; thinning waits, so the dependency links stay exact.
var errThinWait = errors.New("dependency links of the day not computed yet")

// Thin thins the oldest day due (older than KeepAfter past its end, not
// thinned yet, its dependency links computed), if any, under a lock that
// one process per schema holds at a time.
func (s *Store) Thin(ctx context.Context, now time.Time) (ThinResult, error) {
	var res ThinResult
	if s.keep == nil {
		return res, nil
	}
	err := s.job(ctx, "thin", func(tx pgx.Tx) error {
		d, ok, err := dueDay(ctx, tx, now.Add(-s.cfg.KeepAfter))
		if err != nil || !ok {
			return err
		}
		res, err = s.thinDay(ctx, tx, d)
		return err
	})
	if errors.Is(err, errThinWait) {
		return ThinResult{}, nil
	}
	if err != nil {
		return ThinResult{}, fmt.Errorf("thin: %w", err)
	}
	return res, nil
}

// dueDay is the oldest day with a segments partition that ends before
// cutoff and was not thinned.
func dueDay(ctx context.Context, tx pgx.Tx, cutoff time.Time) (time.Time, bool, error) {
	var d *time.Time
	err := tx.QueryRow(ctx, `SELECT min(day)::timestamp AT TIME ZONE 'UTC' FROM `+dailyPartitions+` p
		WHERE parent = 'segments'::regclass AND (day + 1)::timestamp AT TIME ZONE 'UTC' <= $1 AND day NOT IN (SELECT day FROM thin_days)`, cutoff).Scan(&d)
	if err != nil || d == nil {
		return time.Time{}, false, err
	}
	return d.UTC(), true, nil
}

func (s *Store) thinDay(ctx context.Context, tx pgx.Tx, d time.Time) (ThinResult, error) {
	res := ThinResult{Day: d}
	end := d.Add(day)
	var pending bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM link_pending WHERE hour IS NULL OR hour < $1)`, end.Add(thinWindow)).Scan(&pending); err != nil {
		return res, err
	}
	if pending {
		return res, errThinWait
	}
	// From here on, no row of the day arrives unjudged: a late span for it
	// waits for this transaction (and is then stored in the new partition).
	for _, table := range partitioned {
		if _, err := tx.Exec(ctx, `LOCK TABLE `+pgx.Identifier{partitionName(table, d)}.Sanitize()+` IN SHARE MODE`); err != nil {
			return res, fmt.Errorf("lock the day: %w", err)
		}
	}
	traces, err := s.judge(ctx, tx, d)
	if err != nil {
		return res, err
	}
	type countKey struct {
		tenant          int16
		service, reason string
	}
	counts := map[countKey]*ThinCount{}
	var out [][]any
	gone := map[thinKey]bool{} // the traces in out
	for k, t := range traces {
		if !t.inDay {
			continue
		}
		reason := t.reason
		if reason == "" {
			reason = thinned
			out = append(out, []any{int64(k.id.Low), int64(k.id.High), k.tenant, d})
			gone[k] = true
		}
		ck := countKey{k.tenant, t.service, reason}
		c := counts[ck]
		if c == nil {
			name, err := s.tenantName(ctx, k.tenant)
			if err != nil {
				return res, err
			}
			c = &ThinCount{Tenant: name, Service: t.service, Reason: reason}
			counts[ck] = c
		}
		c.Traces++
		c.Spans += t.spans
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"thinned_traces"}, []string{"trace_id_low", "trace_id_high", "tenant", "day"}, pgx.CopyFromRows(out)); err != nil {
		return res, fmt.Errorf("record the thinned traces: %w", err)
	}
	keys := slices.SortedFunc(maps.Keys(counts), func(a, b countKey) int {
		return cmp.Or(cmp.Compare(a.tenant, b.tenant), cmp.Compare(a.service, b.service), cmp.Compare(a.reason, b.reason))
	})
	for _, k := range keys {
		c := counts[k]
		res.Counts = append(res.Counts, *c)
		if _, err := tx.Exec(ctx, `INSERT INTO thin_counts (tenant, day, service, reason, traces, spans) VALUES ($1, $2, $3, $4, $5, $6)`,
			k.tenant, d, c.Service, c.Reason, c.Traces, c.Spans); err != nil {
			return res, fmt.Errorf("count the thinned traces: %w", err)
		}
	}
	if err := unlist(ctx, tx, d, gone); err != nil {
		return res, err
	}
	for _, table := range partitioned {
		var before, after int64
		if err := tx.QueryRow(ctx, `SELECT * FROM zipq_rewrite_partition($1, $2::date)`, table, d.Format(time.DateOnly)).Scan(&before, &after); err != nil {
			return res, fmt.Errorf("rewrite %s: %w", partitionName(table, d), err)
		}
		res.BytesBefore += before
		res.BytesAfter += after
	}
	// A thinned trace's spans just past midnight are indexed in the next
	// day's partition: search must not find it there either. A group row
	// (a packed day's, indexgroup.go) is its first trace's only by its
	// IDs: it stays, for its other traces.
	if _, err := tx.Exec(ctx, `DELETE FROM span_index s USING thinned_traces t
		WHERE s.ts >= $1 AND s.ts < $2 AND t.day = $3 AND t.trace_id_low = s.trace_id_low
		  AND t.trace_id_high = s.trace_id_high AND t.tenant = s.tenant AND s.members = ''`, end, end.Add(thinWindow), d); err != nil {
		return res, fmt.Errorf("unindex the thinned traces: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO thin_days (day, policy, thinned_at, bytes_before, bytes_after) VALUES ($1, $2, now(), $3, $4)`,
		d, s.keep.String(), res.BytesBefore, res.BytesAfter); err != nil {
		return res, fmt.Errorf("record the day: %w", err)
	}
	return res, nil
}

// thinKey is a trace of a tenant.
type thinKey struct {
	tenant int16
	id     zipkin.TraceID
}

// judge reads the day's segments, and those of its neighbours within
// thinWindow, and finds each trace's first reason to be kept.
func (s *Store) judge(ctx context.Context, tx pgx.Tx, d time.Time) (map[thinKey]*thinTrace, error) {
	ops := map[int16]map[opKey]thinOp{}
	traces := map[thinKey]*thinTrace{}
	lo, hi := d.Add(-thinWindow), d.Add(day+thinWindow)
	rows, err := tx.Query(ctx, `SELECT tenant, trace_id_low, trace_id_high, ts, span_count, data FROM segments
		WHERE ts >= $1 AND ts < $2`, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("read the day: %w", err)
	}
	var (
		tn     int16
		r      segmentRow
		count  int64
		buf    []byte
		packed members // the neighbours' packed traces (a day is thinned before it is packed)
		sp     zipkin.Span
		policy = *s.keep
	)
	// visit takes a trace's segment (or block entry): its date and span
	// count, then its spans.
	visit := func(tn int16, id zipkin.TraceID, ts time.Time, count int64) (func([]byte) error, error) {
		k := thinKey{tn, id}
		t := traces[k]
		if t == nil {
			t = &thinTrace{}
			if policy.sampled(k.id) {
				t.reason = thinSampled
			}
			traces[k] = t
		}
		if !ts.Before(d) && ts.Before(d.Add(day)) {
			t.inDay = true
			t.spans += count
		}
		tops, ok := ops[tn]
		if !ok {
			var err error
			if tops, err = s.dayOps(ctx, tn, d); err != nil {
				return nil, err
			}
			ops[tn] = tops
		}
		return func(canonical []byte) error {
			sp = zipkin.Span{}
			if err := zipkin.UnmarshalCanonical(canonical, &sp); err != nil {
				return fmt.Errorf("stored span unreadable: %w", err)
			}
			t.see(&sp, policy, tops)
			return nil
		}, nil
	}
	_, err = pgx.ForEachRow(rows, []any{&tn, &r.low, &r.high, &r.ts, &count, &r.data}, func() error {
		fn, err := visit(tn, zipkin.TraceID{High: uint64(r.high), Low: uint64(r.low)}, r.ts, count)
		if err != nil {
			return err
		}
		buf, err = r.split(tn, buf, &packed, fn)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read the day: %w", err)
	}
	// The entries of blocks (the neighbours' packed days) dated in the
	// window.
	entries, err := packedEntries(ctx, tx, `b.ts >= $1 AND b.ts < $2`, []any{lo.Truncate(day), hi},
		func(_ int16, e *dirEntry) bool { return !e.ts.Before(lo) && e.ts.Before(hi) })
	if err != nil {
		return nil, fmt.Errorf("read the day: %w", err)
	}
	for i := range entries {
		e := &entries[i]
		fn, err := visit(e.tenant, e.id, e.ts, int64(e.spans))
		if err != nil {
			return nil, fmt.Errorf("read the day: %w", err)
		}
		packed = append(packed, e.member(fn, nil))
	}
	if err := packed.read(ctx, tx); err != nil {
		return nil, fmt.Errorf("read the day: %w", err)
	}
	return traces, nil
}

// see adds one span to what is known of its trace.
func (t *thinTrace) see(sp *zipkin.Span, p ThinPolicy, ops map[opKey]thinOp) {
	service := pgText(sp.LocalServiceName())
	start := sp.StartTime()
	if root := sp.ParentID == 0; !t.rooted && (root || t.service == "" || start < t.first) {
		t.service, t.first, t.rooted = service, start, root
	}
	op, known := ops[opKey{service, pgText(sp.Name)}]
	switch {
	case p.Errors && sp.Failed():
		t.reason = thinError
	case t.reason == thinError:
	case known && float64(sp.Duration) > op.slow:
		t.reason = thinSlow
	case t.reason == thinSlow:
	case known && op.calls < p.Rare:
		t.reason = thinRare
	}
}

// dayOps is every operation's calls over the day and the duration past
// which its spans are slow, from the service metrics.
func (s *Store) dayOps(ctx context.Context, tn int16, d time.Time) (map[opKey]thinOp, error) {
	name, err := s.tenantName(ctx, tn)
	if err != nil {
		return nil, err
	}
	q := StatsQuery{Start: d, End: d.Add(day), Step: day, By: ByService | ByName}
	if s.keep.Slower > 0 {
		q.Quantiles = []float64{s.keep.Slower}
	}
	series, err := s.Stats(tenant.With(ctx, name), q)
	if err != nil {
		return nil, fmt.Errorf("the day's operations: %w", err)
	}
	ops := make(map[opKey]thinOp, len(series))
	for _, sr := range series {
		op := thinOp{calls: sr.Total.Calls, slow: math.Inf(1)}
		if len(sr.Total.Quantiles) > 0 {
			op.slow = sr.Total.Quantiles[0]
		}
		ops[opKey{sr.Service, sr.Name}] = op
	}
	return ops, nil
}

// RunThinning thins each day once it is due, checking every ten minutes
// (and a day after another while days are due), until ctx ends; with no
// policy it only waits for ctx.
func (s *Store) RunThinning(ctx context.Context) error {
	if s.keep == nil {
		<-ctx.Done()
		return nil
	}
	return s.every(ctx, 10*time.Minute, "keep by value", func(ctx context.Context) (bool, error) {
		res, err := s.Thin(ctx, time.Now())
		if err != nil || res.Day.IsZero() {
			return false, err
		}
		var kept, gone int64
		for _, c := range res.Counts {
			if c.Reason == thinned {
				gone += c.Traces
			} else {
				kept += c.Traces
			}
		}
		s.logger.Info("day thinned", slog.String("day", res.Day.Format(time.DateOnly)), slog.String("policy", s.keep.String()),
			slog.Int64("traces_kept", kept), slog.Int64("traces_thinned", gone),
			slog.Int64("bytes_before", res.BytesBefore), slog.Int64("bytes_after", res.BytesAfter))
		if s.onThinned != nil {
			s.onThinned(res.Counts)
		}
		return true, nil
	})
}

// OnThinned is called with each day's counts once its thinning committed
// (metrics); call it before RunThinning.
func (s *Store) OnThinned(f func([]ThinCount)) { s.onThinned = f }

// Thinning says why a trace is gone: the keep-by-value policy took it out
// on Day.
type Thinning struct {
	Day    time.Time
	Policy string
}

// Thinned reports whether the keep-by-value policy took out the trace
// with this ID (of the tenant ctx acts for), and when; with strict false,
// only the lower 64 bits are compared. The newest day that thinned it is
// reported.
func (s *Store) Thinned(ctx context.Context, id zipkin.TraceID, strict bool) (Thinning, bool, error) {
	var th Thinning
	tn, ok, err := s.readTenant(ctx)
	if err != nil || !ok {
		return th, false, err
	}
	var when *time.Time
	err = s.pool.QueryRow(ctx, `SELECT t.day::timestamp AT TIME ZONE 'UTC', d.policy FROM thinned_traces t JOIN thin_days d USING (day)
		WHERE t.trace_id_low = $1 AND t.tenant = $2 AND (NOT $3 OR t.trace_id_high = $4) ORDER BY t.day DESC LIMIT 1`,
		int64(id.Low), tn, strict, int64(id.High)).Scan(&when, &th.Policy)
	if errors.Is(err, pgx.ErrNoRows) {
		return th, false, nil
	}
	if err != nil {
		return th, false, fmt.Errorf("thinned trace: %w", err)
	}
	th.Day = when.UTC()
	return th, true, nil
}
