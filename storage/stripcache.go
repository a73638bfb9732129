package storage

import (
	"container/list"
	"sync"
	"unsafe"
)

// stripCache keeps the strips reads decoded, by tenant, service and hour,
// with the revision each was read at (span_strips.rev, new on every
// write). A read sends PostgreSQL the revisions it holds and gets bytes
// back only for strips written since: a Services page of a day at
// one-minute steps reads 1,200 strips, and reading and decoding them was
// most of its time (docs/BENCHMARKS.md, "A cache of decoded strips"),
// while the hours of a day past change only when late spans fold into
// them. A cached strip is never changed: reads share it, merging its
// hour's sketch into their own totals (ddsketch's MergeWith only reads
// its argument). Least recently used first out past max bytes.
type stripCache struct {
	mu   sync.Mutex
	max  int64
	used int64
	m    map[stripKey]*list.Element
	lru  list.List // of *cachedStrip, the most recently used first
}

type stripKey struct {
	tenant  int16
	service string
	hour    int64 // µs
}

// cachedStrip is a strip decoded: its minutes (their exemplars in a slab
// of their own) and its hour's totals with the hour's sketch.
type cachedStrip struct {
	key    stripKey
	rev    int64
	points []stripPoint
	hour   statAgg
	size   int64 // bytes of memory, estimated (decodeCachedStrip)
}

// newStripCache is a cache of at most limit bytes; nil (no cache) when
// limit is not positive.
func newStripCache(limit int64) *stripCache {
	if limit <= 0 {
		return nil
	}
	return &stripCache{max: limit, m: map[stripKey]*list.Element{}}
}

// held is the strips the cache holds for tenant's hours in [from, to) µs,
// of service ("" any), marked used: a read keeps them for its whole
// length whatever the cache evicts meanwhile.
func (c *stripCache) held(tenant int16, service string, from, to int64) map[stripKey]*cachedStrip {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[stripKey]*cachedStrip{}
	for k, e := range c.m {
		if k.tenant == tenant && k.hour >= from && k.hour < to && (service == "" || k.service == service) {
			out[k] = e.Value.(*cachedStrip)
			c.lru.MoveToFront(e)
		}
	}
	return out
}

// put caches s, replacing the key's older revision; a strip larger than
// the whole cache is not kept.
func (c *stripCache) put(s *cachedStrip) {
	if c == nil || s.size > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[s.key]; ok {
		if e.Value.(*cachedStrip).rev >= s.rev {
			return // a read that started earlier: keep the newer
		}
		c.remove(e)
	}
	c.m[s.key] = c.lru.PushFront(s)
	c.used += s.size
	for c.used > c.max {
		c.remove(c.lru.Back())
	}
}

func (c *stripCache) remove(e *list.Element) {
	s := c.lru.Remove(e).(*cachedStrip)
	delete(c.m, s.key)
	c.used -= s.size
}

// decodeCachedStrip is a stored strip and its hour's sketch, decoded.
func decodeCachedStrip(key stripKey, rev int64, points, sketch []byte) (*cachedStrip, error) {
	ps, err := decodeStrip(points, key.hour)
	if err != nil {
		return nil, err
	}
	s := &cachedStrip{key: key, rev: rev, points: ps, hour: statAgg{sketch: newSketch()}}
	if err := mergeSketch(s.hour.sketch, sketch); err != nil {
		return nil, err
	}
	exemplars := 0
	for i := range ps {
		p := &ps[i]
		s.hour.addCounts(p.calls, p.errors, p.durSum, p.bytes, p.slow, p.failed)
		exemplars += btoi(p.slow != nil) + btoi(p.failed != nil)
	}
	s.size = int64(unsafe.Sizeof(*s)) + int64(len(key.service)) + int64(cap(ps))*int64(unsafe.Sizeof(stripPoint{})) +
		int64(exemplars)*int64(unsafe.Sizeof(exemplar{})) + sketchBytes(&s.hour)
	return s, nil
}

// sketchBytes estimates the memory of a decoded sketch: its stores' pages
// span its bins' indexes, a float64 each, in pages of 32, plus the
// structures around them.
func sketchBytes(a *statAgg) int64 {
	const overhead = 512
	n := int64(overhead)
	for _, st := range [...]interface {
		IsEmpty() bool
		MinIndex() (int, error)
		MaxIndex() (int, error)
	}{a.sketch.GetPositiveValueStore(), a.sketch.GetNegativeValueStore()} {
		if st.IsEmpty() {
			continue
		}
		lo, _ := st.MinIndex() // errs only when empty
		hi, _ := st.MaxIndex()
		n += int64(hi-lo+64) * 8
	}
	return n
}
