package storage

import "time"

// The one dating rule. Every stored row that retention expires — a
// segment and its span_index rows, a span's name rows (span_names,
// remote_services, autocomplete_tags), a trace's links (trace_links and
// its share of dependency_links) — is dated by storedAt, so a day's
// partition and that day's names and links go together.

// futureSlack is how far ahead of its arrival a span may be dated and
// still be stored under its own date.
const futureSlack = 24 * time.Hour

// storedAt is the date a row is stored (partitioned and expired) under:
// its spans' start, except that an undated one, or one dated more than
// futureSlack after it arrived (a client sending nanoseconds for
// microseconds), is stored under its arrival time, so retention expires it
// like its neighbours. A rewrite (compaction) passes the earliest date its
// segments were stored under as the arrival, so it never extends a
// trace's retention. The spans keep their own
// timestamps; search matches on those, so such a span is found by its trace
// id and not by a time window far from its arrival.
func storedAt(start, arrival int64) int64 {
	if start == 0 || start > arrival+futureSlack.Microseconds() {
		return arrival
	}
	return start
}

// storedDay is storedAt's day, in UTC: the date of a span's name rows.
func storedDay(start, arrival int64) time.Time {
	return time.UnixMicro(storedAt(start, arrival)).UTC().Truncate(day)
}

// linkHour is the hour a trace's links are counted in: the hour of the
// earliest date its segments are stored under (storedAt's), so links
// expire with the segments they came from.
func linkHour(stored int64) time.Time { return time.UnixMicro(stored).UTC().Truncate(time.Hour) }
