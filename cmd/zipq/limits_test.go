package main

import (
	"bytes"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zipq/zipq/internal/otlptest"
	"github.com/zipq/zipq/internal/testenv"
	"github.com/zipq/zipq/zipkin"
)

// TestWorstInputsUnderAMemoryLimit runs zipq serve under GOMEMLIMIT=256MiB
// and sends what took it down or ballooned it (issue 21): three concurrent
// 5 MiB bodies of empty spans (a gigabyte each to refuse before), an OTLP
// request whose resource attributes expand to a million tags (280 MB, OOM
// at larger sizes), and a 4 MiB service name; each is answered (413, or
// 202 with the name cut), good spans around them are stored, and the
// process's peak RSS stays under 400 MiB.
func TestWorstInputsUnderAMemoryLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := startZipq(t, append(f.env, "GOMEMLIMIT=256MiB", "ZIPQ_OTLP_HTTP_ADDR="+freeAddr(t)), "serve")
	otlpAddr := ""
	for _, e := range p.cmd.Env {
		if v, ok := strings.CutPrefix(e, "ZIPQ_OTLP_HTTP_ADDR="); ok {
			otlpAddr = v // the last one set wins
		}
	}
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
	if c := post("http://"+otlpAddr+"/v1/traces", "application/x-protobuf", otlptest.Amplified(t, 1000, 1000)); c != http.StatusRequestEntityTooLarge {
		t.Fatalf("OTLP of a million expanded tags: %d, want 413", c)
	}
	if c := post(base+"/api/v2/spans", "application/json", zipkin.EncodeJSON([]zipkin.Span{{TraceID: zipkin.TraceID{Low: 0xc3}, ID: 1,
		Timestamp: time.Now().UnixMicro(), LocalEndpoint: &zipkin.Endpoint{ServiceName: strings.Repeat("n", 4<<20)}}})); c != http.StatusAccepted {
		t.Fatalf("a 4 MiB service name: %d, want 202", c)
	}
	good(0xc2)
	testenv.StoredAtLeast(t, f.dsn, 3, 30*time.Second)
	if rss := p.peakRSS(t); rss > 400 {
		t.Fatalf("peak RSS %.0f MiB under GOMEMLIMIT=256MiB, want under 400", rss)
	} else {
		t.Logf("peak RSS %.0f MiB", rss)
	}
}
