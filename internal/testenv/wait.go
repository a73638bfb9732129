package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EventuallyEvery is Eventually checking cond every interval: for
// conditions that cost real work (a query), so the wait does not starve
// what it waits for on a loaded 2-core machine.
func EventuallyEvery(t testing.TB, timeout, interval time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(interval)
	}
}

// StoredAtLeast waits until the segments of the schema dsn names hold at
// least n spans, counted from segments.span_count (no segment is read or
// decompressed), checking every 250 ms; a timeout says how far storing
// got. Spans stored twice by a redelivery count twice here: callers check
// the exact distinct count (storage's CountSpans) once this returns.
func StoredAtLeast(t testing.TB, dsn string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := Stored(t, dsn)
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %d spans stored: %d so far", timeout, n, got)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// Stored is the number of spans the segments hold (see StoredAtLeast).
func Stored(t testing.TB, dsn string) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	defer conn.Close(context.Background())
	var got int64
	if err := conn.QueryRow(context.Background(), `SELECT coalesce(sum(span_count), 0) FROM segments`).Scan(&got); err != nil {
		t.Fatalf("testenv: count stored spans: %v", err)
	}
	return int(got)
}
