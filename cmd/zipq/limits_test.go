package main

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zipq/zipq/ingest"
	"github.com/zipq/zipq/internal/otlptest"
	"github.com/zipq/zipq/internal/testenv"
	"github.com/zipq/zipq/zipkin"
)

// TestWorstInputsUnderAMemoryLimit runs zipq serve under GOMEMLIMIT=256MiB
// and sends what took it down or ballooned it (issue 21): three concurrent
// 5 MiB bodies of empty spans (a gigabyte each to refuse before), an OTLP
// request whose resource attributes expand to a million tags (280 MB, OOM
// at larger sizes), a 4 MiB service name, and the same amplified OTLP and
// empty-span bodies as queue messages (a crash loop before); each is
// answered (413, or 202 with the name cut; queue messages parked), good
// spans around them are stored, and the process's peak RSS stays under
// 400 MiB (race build).
func TestWorstInputsUnderAMemoryLimit(t *testing.T) {
	t.Parallel()
	if rss, _ := worstInputs(t, "256MiB", false); rss > 400 {
		t.Fatalf("peak RSS %.0f MiB under GOMEMLIMIT=256MiB, want under 400", rss)
	} else {
		t.Logf("peak RSS %.0f MiB", rss)
	}
}

// BenchmarkWorstInputsRSS is the same run with a plain binary, with and
// without a memory limit, followed by 64 concurrent reads (the heavy-read
// limit) of a 10,000-span trace: the figures deploy/'s memory limits come
// from (docs/BENCHMARKS.md, "Bounded by construction"). The race build of
// the test inflates memory about fourfold, so the reads are measured here.
func BenchmarkWorstInputsRSS(b *testing.B) {
	for _, limit := range []string{"off", "256MiB"} {
		b.Run("GOMEMLIMIT="+limit, func(b *testing.B) {
			var ingest, reads float64
			for range b.N {
				i, r := worstInputs(b, limit, true)
				ingest, reads = max(ingest, i), max(reads, r)
			}
			b.ReportMetric(ingest, "ingest-peak-RSS-MiB")
			b.ReportMetric(reads, "with-reads-peak-RSS-MiB")
		})
	}
}

// worstInputs runs the worst accepted inputs against one zipq serve
// (the query and collector roles in one process, so its peak bounds
// either role's) and returns its peak RSS in MiB after them and, with
// reads, after 64 concurrent reads of a 10,000-span trace.
func worstInputs(t testing.TB, gomemlimit string, reads bool) (ingested, withReads float64) {
	f := newFixture(t)
	otlpAddr := freeAddr(t)
	p := startZipq(t, append(f.env, "GOMEMLIMIT="+gomemlimit, "ZIPQ_OTLP_HTTP_ADDR="+otlpAddr), "serve")
	base := "http://" + p.addr
	good := func(trace uint64) {
		postSpans(t, base, string(zipkin.EncodeJSON([]zipkin.Span{{TraceID: zipkin.TraceID{Low: trace}, ID: 1, Name: "ok",
			Timestamp: time.Now().UnixMicro(), LocalEndpoint: &zipkin.Endpoint{ServiceName: "good"}}})))
	}
	post := func(url, contentType string, body []byte) int {
		resp, err := http.Post(url, contentType, bytes.NewReader(body))
		testenv.Must(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	good(0xc1)
	empties := []byte("[" + strings.Repeat("{},", 5<<20/3-2) + "{}]")
	amplified := otlptest.Amplified(t, 1000, 1000)
	var wg sync.WaitGroup
	codes := make([]int, 3)
	for i := range codes {
		wg.Add(1)
		go func() { defer wg.Done(); codes[i] = post(base+"/api/v2/spans", "application/json", empties) }()
	}
	wg.Wait()
	for _, c := range codes {
		if c != http.StatusRequestEntityTooLarge && c != http.StatusTooManyRequests {
			t.Fatalf("5 MiB of empty spans: %v, want 413 (or 429 while the in-flight budget is full)", codes)
		}
	}
	if c := post("http://"+otlpAddr+"/v1/traces", "application/x-protobuf", amplified); c != http.StatusRequestEntityTooLarge {
		t.Fatalf("OTLP of a million expanded tags: %d, want 413", c)
	}
	if c := post(base+"/api/v2/spans", "application/json", zipkin.EncodeJSON([]zipkin.Span{{TraceID: zipkin.TraceID{Low: 0xc3}, ID: 1,
		Timestamp: time.Now().UnixMicro(), LocalEndpoint: &zipkin.Endpoint{ServiceName: strings.Repeat("n", 4<<20)}}})); c != http.StatusAccepted {
		t.Fatalf("a 4 MiB service name: %d, want 202", c)
	}
	// The same bodies straight onto the queue: the collector parks them.
	publishTyped(t, f.queue, ingest.ContentTypeOTLPProto, amplified, amplified, amplified)
	publishTyped(t, f.queue, "application/json", empties, empties, empties)
	good(0xc2)
	testenv.StoredAtLeast(t, f.dsn, 3, 60*time.Second)
	conn := testenv.Dial(t)
	defer conn.Close()
	testenv.Eventually(t, 60*time.Second, "six messages parked", func() bool {
		ch, err := conn.Channel()
		testenv.Must(t, err)
		defer ch.Close()
		q, err := ch.QueueDeclarePassive(f.queue+".parked", true, false, false, false, nil)
		return err == nil && q.Messages >= 6
	})
	ingested = p.peakRSS(t)
	if !reads {
		return ingested, ingested
	}
	// Whole-trace reads at the heavy-read limit (64 by default).
	storeBigTrace(t, base, "00000000000000000000000000bb0001", 10000)
	var rw sync.WaitGroup
	for range 64 {
		rw.Add(1)
		go func() {
			defer rw.Done()
			resp, err := http.Get(base + "/api/v2/trace/00000000000000000000000000bb0001")
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	rw.Wait()
	return ingested, p.peakRSS(t)
}
