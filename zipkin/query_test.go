package zipkin

import "testing"

func TestTraceDuration(t *testing.T) {
	for _, c := range []struct {
		spans []Span
		want  int64
	}{
		{nil, 0},
		{[]Span{{Duration: 5}}, 0}, // no timestamp: nothing to measure
		{[]Span{{Timestamp: 100, Duration: 50}}, 50},
		// the first start to the last end, whichever spans they are
		{[]Span{{Timestamp: 120, Duration: 100}, {Timestamp: 100, Duration: 10}, {Duration: 1000}}, 120},
		{[]Span{{Timestamp: 100, Duration: 500}, {Timestamp: 200, Duration: 10}}, 500},
		// an undated span's annotations date it
		{[]Span{{Timestamp: 100, Duration: 10}, {Annotations: []Annotation{{Timestamp: 300, Value: "cs"}}, Duration: 20}}, 220},
	} {
		if got := TraceDuration(c.spans); got != c.want {
			t.Errorf("TraceDuration(%+v) = %d, want %d", c.spans, got, c.want)
		}
	}
}
