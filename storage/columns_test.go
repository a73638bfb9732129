package storage_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/zipq/zipq/ingest"
	"github.com/zipq/zipq/internal/tenant"
	"github.com/zipq/zipq/storage"
	"github.com/zipq/zipq/traceql"
	"github.com/zipq/zipq/zipkin"
)

// columnSpans makes n traces over the last two hours with paths, codes,
// statuses and durations to scan for.
func columnSpans(rng *rand.Rand, n int, now time.Time, lowBase uint64) [][]zipkin.Span {
	out := make([][]zipkin.Span, n)
	for i := range out {
		id := zipkin.TraceID{High: 7, Low: lowBase + uint64(i)}
		start := now.Add(-time.Duration(rng.IntN(7000)) * time.Second).UnixMicro()
		for j := 1; j <= 1+rng.IntN(5); j++ {
			s := zipkin.Span{TraceID: id, ID: zipkin.SpanID(j), Name: []string{"get", "post"}[rng.IntN(2)],
				Timestamp: start + int64(j), Duration: int64(1+rng.IntN(100)) * 1000,
				LocalEndpoint: &zipkin.Endpoint{ServiceName: []string{"cart", "db"}[rng.IntN(2)]},
				Tags:          map[string]string{"http.path": fmt.Sprintf("/items/%d", rng.IntN(200))}}
			if j > 1 {
				s.ParentID = 1
			}
			if rng.IntN(8) == 0 {
				s.Tags["error"] = "boom"
			}
			out[i] = append(out[i], s)
		}
	}
	return out
}

// TestScanByColumns: TraceQL searches no index serves find through the
// span columns exactly the traces the index walk finds reading every
// trace, for two tenants, with a span reported in parts across writes
// (found once compaction has merged it), while reading whole only the
// traces the columns could not rule out.
func TestScanByColumns(t *testing.T) {
	t.Parallel()
	st, _ := openStore(t, storage.Config{Columns: ingest.SpanColumns})
	now := time.Now()
	rng := rand.New(rand.NewPCG(8, 9))
	tenants := []string{"", "acme"}
	for ti, name := range tenants {
		c := tenant.With(ctx(t), name)
		var batch []zipkin.Span
		for _, tr := range columnSpans(rng, 300, now, uint64(ti+1)<<32) {
			if batch = append(batch, tr...); len(batch) > 200 {
				if err := st.WriteSpans(c, batch); err != nil {
					t.Fatal(err)
				}
				batch = nil
			}
		}
		if err := st.WriteSpans(c, batch); err != nil {
			t.Fatal(err)
		}
	}
	// A span in two parts, written apart: its name in one, its path in
	// the other; `name = "split" && span.http.path = "/parts"` needs both.
	partID := zipkin.TraceID{High: 7, Low: 99}
	at := now.Add(-time.Minute).UnixMicro()
	for _, sp := range []zipkin.Span{
		{TraceID: partID, ID: 1, Name: "split", Timestamp: at, Duration: 5000, LocalEndpoint: &zipkin.Endpoint{ServiceName: "cart"}},
		{TraceID: partID, ID: 1, Timestamp: at, Tags: map[string]string{"http.path": "/parts"}, LocalEndpoint: &zipkin.Endpoint{ServiceName: "cart"}},
	} {
		if err := st.WriteSpans(ctx(t), []zipkin.Span{sp}); err != nil {
			t.Fatal(err)
		}
	}
	model := ingest.TraceQLModel{}
	search := func(tn string, text string, limit int, columns bool) (ids []string, read int) {
		t.Helper()
		q, err := traceql.Compile(text)
		if err != nil {
			t.Fatal(err)
		}
		var pre storage.Prefilter
		if p := q.Prefilter(); p != nil && columns {
			pre = p
		}
		req := zipkin.QueryRequest{EndTs: now.Add(time.Minute), Lookback: time.Hour, Limit: limit}
		traces, err := st.FindTracesFiltered(tenant.With(ctx(t), tn), req, true, pre, func(spans []zipkin.Span, from, to int64) (int64, bool) {
			read++
			tr, err := model.Trace(spans)
			if err != nil || len(q.Run(tr)) == 0 {
				return 0, false
			}
			best := int64(0)
			for _, s := range spans {
				if s.Timestamp >= from && s.Timestamp <= to {
					best = max(best, s.Timestamp)
				}
			}
			return best, best > 0
		})
		if err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		for _, tr := range traces {
			ids = append(ids, tr[0].TraceID.String())
		}
		slices.Sort(ids)
		return ids, read
	}
	queries := []string{
		`{ span.http.path =~ "/items/1[0-9]" }`,
		`{ span.http.path =~ "/items/1.*" && duration > 50ms }`,
		`{ status = error }`,
		`{ duration > 95ms } >> { status = error }`,
		`{ .http.path = "/items/7" || name = "post" && duration < 3ms }`,
		`{ span.http.path =~ "/nothing.*" }`,
	}
	for _, name := range tenants {
		for _, text := range queries {
			want, readAll := search(name, text, 1000, false)
			got, read := search(name, text, 1000, true)
			if !slices.Equal(got, want) {
				t.Fatalf("tenant %q, %s: columns found %d traces, the index walk %d:\n%v\n%v", name, text, len(got), len(want), got, want)
			}
			// Where few traces match, the columns rule most out (where most
			// do, a block's spans from before the window may nominate a
			// few more than the index walk reads).
			if 3*len(want) < readAll && read >= readAll*3/4 {
				t.Errorf("tenant %q, %s: read %d traces through the columns, %d without: not used", name, text, read, readAll)
			}
			// A limit stops the column walk as it stops the index walk:
			// the newest answers.
			if len(want) > 5 {
				few, _ := search(name, text, 5, true)
				fewWant, _ := search(name, text, 5, false)
				if !slices.Equal(few, fewWant) {
					t.Errorf("tenant %q, %s, limit 5: %v, want %v", name, text, few, fewWant)
				}
			}
		}
	}
	split := `{ name = "split" && span.http.path = "/parts" }`
	if got, _ := search("", split, 10, false); len(got) != 1 {
		t.Fatalf("the index walk finds the span in parts %d times", len(got))
	}
	if _, err := st.Link(ctx(t), 10000); err != nil { // queues the trace in two segments
		t.Fatal(err)
	}
	if _, err := st.Compact(ctx(t), 10000); err != nil {
		t.Fatal(err)
	}
	if got, _ := search("", split, 10, true); !slices.Equal(got, []string{partID.String()}) {
		t.Fatalf("after compaction, the columns find %v for the span in parts", got)
	}
}
