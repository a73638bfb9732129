package storage_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zipq/zipq/internal/tenant"
	"github.com/zipq/zipq/internal/testenv"
	"github.com/zipq/zipq/storage"
	"github.com/zipq/zipq/zipkin"
)

// tenantTrace is one call from frontend to backend, trace 0x7e, with the
// span name and tag value of its tenant: every tenant sends the same trace
// ID and service names.
func tenantTrace(who string, at time.Time) []zipkin.Span {
	id := zipkin.TraceID{Low: 0x7e}
	return []zipkin.Span{
		{TraceID: id, ID: 1, Name: "op-" + who, Kind: zipkin.KindClient, Timestamp: at.UnixMicro(), Duration: 100,
			LocalEndpoint: &zipkin.Endpoint{ServiceName: "frontend"}, RemoteEndpoint: &zipkin.Endpoint{ServiceName: "backend"},
			Tags: map[string]string{"who": who}},
		{TraceID: id, ParentID: 1, ID: 2, Name: "op-" + who, Kind: zipkin.KindServer, Timestamp: at.UnixMicro() + 10, Duration: 80,
			LocalEndpoint: &zipkin.Endpoint{ServiceName: "backend"}, Tags: map[string]string{"who": who}},
	}
}

// TestTenantsAreApart stores the same trace ID and service names for two
// tenants and the default one, and reads each back through every read the
// store has: each sees only its own spans, names, tag values, links and
// metrics; a tenant that stored nothing sees nothing (and is not
// numbered). Byte-identical spans of two tenants are both stored.
func TestTenantsAreApart(t *testing.T) {
	t.Parallel()
	st, dsn := openStore(t, storage.Config{AutocompleteKeys: []string{"who"}})
	if err := st.Migrate(ctx(t)); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(-time.Minute)
	as := func(who string) context.Context {
		if who == "default" {
			return ctx(t)
		}
		return tenant.With(ctx(t), "team-"+who)
	}
	for _, who := range []string{"a", "b", "default"} {
		if err := st.WriteSpans(as(who), tenantTrace(who, now)); err != nil {
			t.Fatal(err)
		}
	}
	// The same bytes for two tenants: two rows, not one.
	same := []zipkin.Span{{TraceID: zipkin.TraceID{Low: 0x5a3e}, ID: 9, Name: "same", Timestamp: now.UnixMicro(),
		LocalEndpoint: &zipkin.Endpoint{ServiceName: "frontend"}}}
	for _, who := range []string{"a", "b"} {
		if err := st.WriteSpans(as(who), same); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Link(ctx(t), storage.LinkBatch); err != nil {
		t.Fatal(err)
	}
	if _, err := st.FoldStats(ctx(t), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	for _, who := range []string{"a", "b", "default"} {
		c := as(who)
		traces, err := st.Traces(c, []zipkin.TraceID{{Low: 0x7e}}, true)
		if err != nil || len(traces) != 1 || len(traces[0]) != 2 {
			t.Fatalf("%s: trace: %v %v", who, traces, err)
		}
		for _, sp := range traces[0] {
			if sp.Tags["who"] != who {
				t.Errorf("%s reads another tenant's span: %+v", who, sp)
			}
		}
		if names, err := st.SpanNames(c, "frontend"); err != nil || !slices.Equal(names, []string{"op-" + who}) && !slices.Equal(names, []string{"op-" + who, "same"}) {
			t.Errorf("%s: span names %v %v", who, names, err)
		}
		if v, err := st.AutocompleteValues(c, "who"); err != nil || !slices.Equal(v, []string{who}) {
			t.Errorf("%s: tag values %v %v", who, v, err)
		}
		if r, err := st.RemoteServiceNames(c, "frontend"); err != nil || !slices.Equal(r, []string{"backend"}) {
			t.Errorf("%s: remote services %v %v", who, r, err)
		}
		found, err := st.FindTraces(c, zipkin.QueryRequest{ServiceName: "frontend", EndTs: time.Now(), Lookback: time.Hour, Limit: 10}, true)
		if err != nil || len(found) == 0 {
			t.Fatalf("%s: search %v", who, err)
		}
		for _, tr := range found {
			for _, sp := range tr {
				if w, ok := sp.Tags["who"]; ok && w != who {
					t.Errorf("%s's search returns another tenant's span: %+v", who, sp)
				}
			}
		}
		for _, other := range []string{"a", "b", "default"} {
			if other == who {
				continue
			}
			if f, err := st.FindTraces(c, zipkin.QueryRequest{SpanName: "op-" + other, EndTs: time.Now(), Lookback: time.Hour, Limit: 10}, true); err != nil || len(f) != 0 {
				t.Errorf("%s finds %s's span name: %d traces, %v", who, other, len(f), err)
			}
		}
		if links, err := st.Dependencies(c, time.Now().Add(time.Hour), 3*time.Hour); err != nil || len(links) != 1 || links[0].CallCount != 1 {
			t.Errorf("%s: dependencies %+v %v (one call each)", who, links, err)
		}
		series, err := st.Stats(c, storage.StatsQuery{Start: now.Add(-time.Hour), End: time.Now().Add(time.Hour), Step: time.Hour, By: storage.ByService})
		if err != nil {
			t.Fatal(err)
		}
		var calls int64
		for _, sr := range series {
			calls += sr.Total.Calls
		}
		if want := map[bool]int64{true: 2, false: 3}[who == "default"]; calls != want {
			t.Errorf("%s: %d calls in the service metrics, want %d", who, calls, want)
		}
	}
	for _, who := range []string{"a", "b"} {
		if got, err := st.Traces(as(who), []zipkin.TraceID{{Low: 0x5a3e}}, true); err != nil || len(got) != 1 {
			t.Errorf("%s: the byte-identical span: %v %v", who, got, err)
		}
	}

	nobody := tenant.With(ctx(t), "team-c")
	if tr, err := st.Traces(nobody, []zipkin.TraceID{{Low: 0x7e}}, true); err != nil || len(tr) != 0 {
		t.Errorf("a tenant that stored nothing reads %v %v", tr, err)
	}
	if s, err := st.ServiceNames(nobody); err != nil || len(s) != 0 {
		t.Errorf("a tenant that stored nothing lists %v %v", s, err)
	}
	if l, err := st.Dependencies(nobody, time.Now(), time.Hour); err != nil || len(l) != 0 {
		t.Errorf("a tenant that stored nothing links %v %v", l, err)
	}
	if n := count(t, dsn, `SELECT count(*) FROM tenants`); n != 3 {
		t.Errorf("%d tenants numbered, want 3 (the default, team-a, team-b): reads number none", n)
	}
}

// TestMigrationKeepsDataInTheDefaultTenant fills a database as the version
// before tenants stored it (segments, index, names, marks, links, service
// metrics, a links row), migrates it, and reads everything back as the default tenant
// (and nothing as another).
func TestMigrationKeepsDataInTheDefaultTenant(t *testing.T) {
	t.Parallel()
	st, dsn := openStoreAt(t, storage.Config{AutocompleteKeys: []string{"who"}}, 10)
	now := time.Now().Add(-time.Minute)
	if err := st.WriteBeforeTenants(ctx(t), tenantTrace("old", now)); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx(t))
	if _, err := conn.Exec(ctx(t), `INSERT INTO dependency_links VALUES (date_trunc('hour', now()), 'old-a', 'old-b', 4, 1, zipq_key('old-a', 'old-b'))`); err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Link(ctx(t), storage.LinkBatch); err != nil { // the mark written before the migration
		t.Fatal(err)
	}
	c := ctx(t)
	if tr, err := st.Traces(c, []zipkin.TraceID{{Low: 0x7e}}, true); err != nil || len(tr) != 1 || len(tr[0]) != 2 {
		t.Fatalf("trace after the migration: %v %v", tr, err)
	}
	if v, err := st.AutocompleteValues(c, "who"); err != nil || !slices.Equal(v, []string{"old"}) {
		t.Errorf("tag values after the migration: %v %v", v, err)
	}
	if f, err := st.FindTraces(c, zipkin.QueryRequest{SpanName: "op-old", EndTs: time.Now(), Lookback: time.Hour, Limit: 10}, true); err != nil || len(f) != 1 {
		t.Errorf("search after the migration: %d %v", len(f), err)
	}
	links, err := st.Dependencies(c, time.Now().Add(time.Hour), 3*time.Hour)
	if err != nil || len(links) != 2 {
		t.Errorf("links after the migration (the old row and the marked trace's): %+v %v", links, err)
	}
	series, err := st.Stats(c, storage.StatsQuery{Service: "frontend", Start: now.Add(-time.Hour), End: time.Now().Add(time.Hour), Step: time.Hour})
	if err != nil || len(series) != 1 || series[0].Total.Calls != 1 {
		t.Errorf("service metrics after the migration: %+v %v", series, err)
	}
	other := tenant.With(ctx(t), "team-a")
	if tr, err := st.Traces(other, []zipkin.TraceID{{Low: 0x7e}}, true); err != nil || len(tr) != 0 {
		t.Errorf("another tenant reads the migrated trace: %v %v", tr, err)
	}
}

// TestTenantRetention: a tenant kept shorter than the installation loses
// its days older than that (spans, names and links) at maintenance, whole
// days as the installation's retention drops them, so its spans of a
// younger day stay; the others keep theirs; a tenant with a retention
// that stored nothing holds up no one.
func TestTenantRetention(t *testing.T) {
	t.Parallel()
	st, _ := openStore(t, storage.Config{})
	st.SetTenantRetention(map[string]time.Duration{"team-a": 48 * time.Hour, "team-y": 48 * time.Hour, "team-z": 48 * time.Hour})
	if err := st.Migrate(ctx(t)); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-72 * time.Hour)
	a := tenant.With(ctx(t), "team-a")
	if err := st.Maintain(ctx(t), old); err != nil { // the partitions of three days ago on
		t.Fatal(err)
	}
	for _, c := range []context.Context{a, ctx(t)} {
		if err := st.WriteSpans(c, tenantTrace("x", old)); err != nil {
			t.Fatal(err)
		}
	}
	// Younger than the retention by the day it started in: kept.
	recent := tenantTrace("x", time.Now().Add(-30*time.Hour))
	for i := range recent {
		recent[i].TraceID.Low = 0x7f
		recent[i].LocalEndpoint = &zipkin.Endpoint{ServiceName: recent[i].LocalEndpoint.ServiceName + "-new"}
		if recent[i].RemoteEndpoint != nil {
			recent[i].RemoteEndpoint = &zipkin.Endpoint{ServiceName: recent[i].RemoteEndpoint.ServiceName + "-new"}
		}
	}
	// And spans outside the daily partitions (older than them): deleted
	// from the default one.
	if err := st.WriteSpans(a, tenantTrace("x", old.Add(-48*time.Hour))); err != nil {
		t.Fatal(err)
	}
	if err := st.WriteSpans(a, recent); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Link(ctx(t), storage.LinkBatch); err != nil {
		t.Fatal(err)
	}
	if err := st.Maintain(ctx(t), time.Now()); err != nil {
		t.Fatal(err)
	}
	if tr, err := st.Traces(a, []zipkin.TraceID{{Low: 0x7f}}, true); err != nil || len(tr) != 1 {
		t.Errorf("team-a's trace of 30 h ago: %d traces (%v)", len(tr), err)
	}
	for c, want := range map[context.Context]int{a: 0, ctx(t): 1} {
		tr, err := st.Traces(c, []zipkin.TraceID{{Low: 0x7e}}, true)
		if err != nil || len(tr) != want {
			t.Errorf("%s: %d traces, want %d (%v)", tenant.From(c), len(tr), want, err)
		}
		// team-a's names and link are its recent trace's alone.
		names, err := st.ServiceNames(c)
		if err != nil || len(names) != 2 || slices.Contains(names, "frontend") != (want == 1) {
			t.Errorf("%s: services %v", tenant.From(c), names)
		}
		links, err := st.Dependencies(c, time.Now(), 120*time.Hour)
		if err != nil || len(links) != 1 || (links[0].Parent == "frontend") != (want == 1) {
			t.Errorf("%s: links %v", tenant.From(c), links)
		}
	}
}

// TestTenantBudget: past its retention_bytes, a tenant loses its oldest
// days one at a time, never today's, while another tenant's spans of the
// same days stay readable; the days' partitions are rewritten, so the
// disk they take falls (DELETE alone would free nothing); the usage each
// tenant is shown follows. A budget needs the service metrics.
func TestTenantBudget(t *testing.T) {
	t.Parallel()
	st, dsn := openStore(t, storage.Config{})
	now := time.Now().UTC()
	a := tenant.With(ctx(t), "team-a")
	first := fourDays(t, st, now, 5, 400, a, ctx(t))
	testenv.FoldStats(t, st, now.Add(2*time.Minute))
	day0 := now.Truncate(24 * time.Hour)
	oldest := day0.Add(-3 * 24 * time.Hour)
	before, err := st.Usage(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(before.Tenants) != 2 || before.Tenants[0].Tenant != tenant.Default || before.Tenants[1].Tenant != "team-a" {
		t.Fatalf("tenants %+v", before.Tenants)
	}
	var shares int64
	for _, u := range before.Tenants {
		if !u.OldestDay.Equal(oldest) || u.Bytes <= 0 || u.Budget != 0 || u.OverBudget {
			t.Fatalf("before any budget: %+v, want spans since %v", u, oldest)
		}
		shares += u.Bytes
	}
	partBytes := func(d time.Time) int64 {
		return int64(count(t, dsn, `SELECT (pg_total_relation_size($1::regclass) + pg_total_relation_size($2::regclass) + pg_total_relation_size($3::regclass) + pg_total_relation_size($4::regclass))::int`,
			"segments_p"+d.Format("20060102"), "span_index_p"+d.Format("20060102"), "segment_blocks_p"+d.Format("20060102"), "span_columns_p"+d.Format("20060102")))
	}
	var parts int64
	for d := oldest; !d.After(day0); d = d.Add(24 * time.Hour) {
		parts += partBytes(d)
	}
	if shares != parts && (shares < parts-4 || shares > parts+4) { // each share rounded
		t.Fatalf("the tenants' shares add up to %d bytes, the partitions take %d", shares, parts)
	}
	// A budget just below what team-a takes: its oldest day goes, alone.
	budgeted := func(bytes int64) *storage.Store {
		s, err := storage.Open(ctx(t), storage.Config{URL: dsn}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		if err := s.SetTenantBudgets(map[string]int64{"team-a": bytes}); err != nil {
			t.Fatal(err)
		}
		if err := s.Maintain(ctx(t), now); err != nil {
			t.Fatal(err)
		}
		return s
	}
	was := partBytes(oldest)
	tight := budgeted(before.Tenants[1].Bytes - 1)
	if got := partBytes(oldest); got >= was {
		t.Fatalf("the oldest day's partitions take %d bytes after team-a's rows left, %d before", got, was)
	}
	readable := func(st *storage.Store, c context.Context, d int) bool {
		got, err := oneTrace(st, c, first[c][d], true)
		if err != nil {
			t.Fatal(err)
		}
		return len(got) > 0
	}
	for d := range 4 {
		if readable(tight, a, d) != (d < 3) || !readable(tight, ctx(t), d) {
			t.Fatalf("day -%d: team-a's first trace readable %v, the default tenant's %v", d, readable(tight, a, d), readable(tight, ctx(t), d))
		}
	}
	after := tight.LastUsage().Tenants
	if len(after) != 2 || !after[1].OldestDay.Equal(oldest.Add(24*time.Hour)) || after[1].Budget != before.Tenants[1].Bytes-1 ||
		after[1].OverBudget || !after[0].OldestDay.Equal(oldest) {
		t.Fatalf("after the oldest day: %+v", after)
	}
	if after[1].Bytes > after[1].Budget {
		t.Fatalf("team-a takes %d bytes, over its budget of %d with days to delete", after[1].Bytes, after[1].Budget)
	}
	// A budget today's spans alone exceed: every day before goes, today's
	// stays, and the usage says so.
	tiny := budgeted(1)
	for d := range 4 {
		if readable(tiny, a, d) != (d == 0) || !readable(tiny, ctx(t), d) {
			t.Fatalf("day -%d: team-a's first trace readable %v, the default tenant's %v", d, readable(tiny, a, d), readable(tiny, ctx(t), d))
		}
	}
	if u := tiny.LastUsage().Tenants; len(u) != 2 || !u[1].OverBudget || !u[1].OldestDay.Equal(day0) {
		t.Fatalf("usage %+v: want team-a over budget with today its oldest day", u)
	}
	// Names and links of the deleted days went with them.
	if n := count(t, dsn, `SELECT count(*)::int FROM span_names WHERE tenant <> 0 AND day < $1::date`, day0); n != 0 {
		t.Fatalf("%d of team-a's span names of deleted days kept", n)
	}
	off, err := storage.Open(ctx(t), storage.Config{URL: dsn, NoStats: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer off.Close()
	if err := off.SetTenantBudgets(map[string]int64{"team-a": 1}); err == nil || !strings.Contains(err.Error(), "ZIPQ_NO_SERVICE_METRICS") {
		t.Fatalf("a budget without the service metrics: %v", err)
	}
}

// TestTenantTraceLimit: a tenant's trace never holds more than its limit;
// a batch that would pass it is refused whole as data (the collector then
// stores what fits, span by span, and parks the rest), and other tenants
// are not bound by it.
func TestTenantTraceLimit(t *testing.T) {
	t.Parallel()
	st, _ := openStore(t, storage.Config{})
	st.SetTraceLimits(map[string]int{"team-a": 3})
	if err := st.Migrate(ctx(t)); err != nil {
		t.Fatal(err)
	}
	a := tenant.With(ctx(t), "team-a")
	span := func(id zipkin.SpanID) []zipkin.Span {
		return []zipkin.Span{{TraceID: zipkin.TraceID{Low: 0x11}, ID: id, Name: "op", Timestamp: time.Now().UnixMicro(),
			LocalEndpoint: &zipkin.Endpoint{ServiceName: "svc"}}}
	}
	two := append(span(1), span(2)...)
	if err := st.WriteSpans(a, two); err != nil {
		t.Fatal(err)
	}
	var de *storage.DataError
	if err := st.WriteSpans(a, append(span(3), span(4)...)); !errors.As(err, &de) || !strings.Contains(err.Error(), "at most 3") {
		t.Fatalf("a batch past the limit: %v", err)
	}
	if err := st.WriteSpans(a, span(3)); err != nil {
		t.Fatalf("up to the limit: %v", err)
	}
	if err := st.WriteSpans(a, span(4)); !errors.As(err, &de) {
		t.Fatalf("one more: %v", err)
	}
	if tr, err := st.Traces(a, []zipkin.TraceID{{Low: 0x11}}, true); err != nil || len(tr) != 1 || len(tr[0]) != 3 {
		t.Fatalf("the trace holds %v %v, want 3 spans", tr, err)
	}
	for i := range 5 { // the default tenant has no limit
		if err := st.WriteSpans(ctx(t), span(zipkin.SpanID(10+i))); err != nil {
			t.Fatal(err)
		}
	}
}
