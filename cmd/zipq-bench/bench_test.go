package main

import (
	"reflect"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/zipq/zipq/zipkin"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The load is what the report says it is: deterministic per seed, valid
// Zipkin (it survives the strict decoder), traces of 10 spans with six
// tags, split into messages of the requested size.
func TestGeneratedLoad(t *testing.T) {
	end := time.Now()
	a, b := spans(1000, 3, end, time.Hour), spans(1000, 3, end, time.Hour)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed must give the same spans")
	}
	bodies := messages(a, 100)
	if len(bodies) != 10 {
		t.Fatalf("%d messages, want 10", len(bodies))
	}
	var back []zipkin.Span
	for _, body := range bodies {
		got, err := zipkin.DecodeJSON(body)
		if err != nil {
			t.Fatal(err)
		}
		back = append(back, got...)
	}
	traces := map[zipkin.TraceID]int{}
	errs := 0
	for i, s := range back {
		traces[s.TraceID]++
		if len(s.Tags) < 6 || s.LocalServiceName() == "" || s.Timestamp < end.Add(-time.Hour).UnixMicro() || s.Timestamp > end.UnixMicro()+2000 {
			t.Fatalf("span %d: %+v", i, s)
		}
		if s.IsError() {
			errs++
		}
	}
	if len(back) != 1000 || len(traces) != 100 || errs < 20 || errs > 90 {
		t.Fatalf("%d spans, %d traces, %d errors", len(back), len(traces), errs)
	}
}

func TestNum(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -4321: "-4,321"} {
		if got := num(in); got != want {
			t.Errorf("num(%v) = %q, want %q", in, got, want)
		}
	}
}
