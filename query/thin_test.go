package query_test

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/zipq/zipq/ingest"
	"github.com/zipq/zipq/internal/testenv"
	"github.com/zipq/zipq/query"
	"github.com/zipq/zipq/storage"
	"github.com/zipq/zipq/zipkin"
)

// TestThinnedTraceSaysWhy: a trace keep by value thinned answers 404 on
// Zipkin's and Tempo's trace by ID naming the policy and the day, and the
// UI shows that text; a trace never stored still gets the plain 404.
func TestThinnedTraceSaysWhy(t *testing.T) {
	t.Parallel()
	st, err := storage.Open(t.Context(), storage.Config{URL: testenv.Schema(t), Keep: "errors,sample=0%"}, nil)
	testenv.Must(t, err)
	t.Cleanup(st.Close)
	d := time.Now().UTC().Add(-3 * 24 * time.Hour).Truncate(24 * time.Hour)
	testenv.Must(t, st.Maintain(t.Context(), d))
	id := zipkin.TraceID{High: 7, Low: 0x1234}
	testenv.Must(t, st.WriteSpans(t.Context(), []zipkin.Span{{TraceID: id, ID: 1, Name: "get /", Timestamp: d.Add(time.Hour).UnixMicro(),
		Duration: 10, LocalEndpoint: &zipkin.Endpoint{ServiceName: "web"}}}))
	for n := 1; n > 0; {
		n, err = st.Link(t.Context(), storage.LinkBatch)
		testenv.Must(t, err)
	}
	for range 3 { // the day before d (empty), then d
		res, err := st.Thin(t.Context(), d.Add(48*time.Hour+time.Minute))
		testenv.Must(t, err)
		if res.Day.Equal(d) {
			break
		}
	}
	h := query.NewRouter(query.Options{Config: query.Config{StrictTraceID: true}, Reader: st, Finder: st, Tempo: ingest.TraceQLModel{}, Thinned: st})
	want := `was thinned by keep-by-value policy "errors,sample=0%" on ` + d.Format(time.DateOnly)
	for _, path := range []string{"/api/v2/trace/", "/api/traces/", "/api/v2/traces/"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path+id.String(), nil))
		if rec.Code != 404 {
			t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
		wantText(want)(t, rec)
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path+"00000000000000070000000000005678", nil))
		if rec.Code != 404 {
			t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
		wantText("trace 00000000000000070000000000005678 not found")(t, rec)
	}
}
