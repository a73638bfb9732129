package storage

import (
	"testing"
)

// TestStripCache: the cache holds what it was given within its bytes,
// least recently used out first; a newer revision replaces an older one
// and never the reverse; held selects by tenant, service and hour.
func TestStripCache(t *testing.T) {
	c := newStripCache(1000)
	strip := func(service string, hour, rev, size int64) *cachedStrip {
		return &cachedStrip{key: stripKey{tenant: 1, service: service, hour: hour}, rev: rev, size: size}
	}
	c.put(strip("a", 0, 1, 400))
	c.put(strip("b", 0, 1, 400))
	if got := c.held(1, "", 0, 1); len(got) != 2 || c.used != 800 {
		t.Fatalf("held %v, used %d", got, c.used)
	}
	c.held(1, "a", 0, 1)         // a used last: b goes first
	c.put(strip("c", 0, 1, 400)) // past 1,000 bytes
	if got := c.held(1, "", 0, 1); len(got) != 2 || got[stripKey{1, "b", 0}] != nil || c.used != 800 {
		t.Fatalf("after eviction: %v, used %d", got, c.used)
	}
	c.put(strip("a", 0, 3, 100))
	c.put(strip("a", 0, 2, 100)) // a read that started before the one above
	if got := c.held(1, "a", 0, 1)[stripKey{1, "a", 0}]; got == nil || got.rev != 3 || c.used != 500 {
		t.Fatalf("a: %+v, used %d", got, c.used)
	}
	c.put(strip("big", 0, 1, 1001))
	if got := c.held(1, "big", 0, 1); len(got) != 0 {
		t.Fatal("a strip larger than the cache was kept")
	}
	c.put(strip("a", 7, 1, 10))
	if got := c.held(2, "", 0, 10); len(got) != 0 {
		t.Fatalf("another tenant's: %v", got)
	}
	if got := c.held(1, "a", 1, 8); len(got) != 1 {
		t.Fatalf("hours [1, 8): %v", got)
	}
	off := newStripCache(-1)
	off.put(strip("a", 0, 1, 1))
	if off != nil || off.held(1, "", 0, 1) != nil {
		t.Fatal("a cache of no bytes keeps strips")
	}
}
