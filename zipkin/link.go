package zipkin

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"
)

// DependencyLink is an aggregate of calls from one service to another, as
// GET /api/v2/dependencies returns it.
type DependencyLink struct {
	Parent     string `json:"parent"`
	Child      string `json:"child"`
	CallCount  int64  `json:"callCount"`
	ErrorCount int64  `json:"errorCount,omitempty"`
}

// Link derives the dependency links of one trace the way Zipkin's
// DependencyLinker does, so zipq's graph matches Zipkin's for the same data:
// the spans are merged (halves and fragments), arranged in a tree, and each
// SERVER/CONSUMER span links from its caller, each leaf CLIENT/PRODUCER span
// links to its remote service (an uninstrumented peer), messaging spans link
// producer → consumer when both names are known, and an error tag on either
// side of an RPC counts as an error on the link. All spans must share a
// trace ID. The result is sorted by parent, then child.
func Link(trace []Span) []DependencyLink {
	if len(trace) == 0 {
		return nil
	}
	root := buildTree(MergeParts(trace))
	type pair struct{ parent, child string }
	counts := map[pair]*DependencyLink{}
	add := func(parent, child string, isError bool) {
		l := counts[pair{parent, child}]
		if l == nil {
			l = &DependencyLink{Parent: parent, Child: child}
			counts[pair{parent, child}] = l
		}
		l.CallCount++
		if isError {
			l.ErrorCount++
		}
	}
	root.walk(func(n *node) {
		sp := n.span
		kind := sp.Kind
		// Prefer the server's own name over the one its client chose: a
		// client with children is linked through them.
		if kind == KindClient && len(n.children) > 0 {
			return
		}
		local, remote := sp.LocalServiceName(), sp.RemoteServiceName()
		if kind == KindUnspecified {
			if local == "" || remote == "" {
				return // a local span: no network boundary
			}
			kind = KindClient
		}
		var parent, child string
		switch kind {
		case KindServer, KindConsumer:
			parent, child = remote, local
			if n == root && parent == "" {
				return // the root's caller is unknown
			}
		default: // client, producer
			parent, child = local, remote
		}
		isError := sp.IsError()
		if kind == KindProducer || kind == KindConsumer {
			if parent != "" && child != "" {
				add(parent, child, isError)
			}
			return
		}
		// Local spans may sit between this span and its remote parent.
		if anc := n.remoteAncestor(); anc != nil && anc.LocalServiceName() != "" {
			ancName := anc.LocalServiceName()
			// The client's own service was reached from the ancestor even
			// if nobody reported that hop; Zipkin backfills it.
			if kind == KindClient && local != "" && ancName != local {
				add(ancName, local, false)
			}
			if kind == KindServer || parent == "" {
				parent = ancName
			}
			// A server span half of a split RPC inherits its client's error.
			if !isError && anc.Kind == KindClient && sp.ParentID != 0 && sp.ParentID == anc.ID {
				isError = anc.IsError()
			}
		}
		if parent != "" && child != "" {
			add(parent, child, isError)
		}
	})
	out := make([]DependencyLink, 0, len(counts))
	for _, l := range counts {
		out = append(out, *l)
	}
	slices.SortFunc(out, func(a, b DependencyLink) int {
		return cmp.Or(cmp.Compare(a.Parent, b.Parent), cmp.Compare(a.Child, b.Child))
	})
	return out
}

// node is a place in a trace tree; span is nil only for a synthetic root
// standing in for a missing one.
type node struct {
	span     *Span
	parent   *node
	children []*node
}

// walk visits the tree breadth first, skipping a synthetic root, as
// Zipkin's SpanNode.traverse does. Each node is visited once even if
// hostile data made the tree malformed.
func (n *node) walk(visit func(*node)) {
	queue := []*node{n}
	if n.span == nil {
		queue = slices.Clone(n.children)
	}
	seen := map[*node]bool{}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if seen[cur] {
			continue
		}
		seen[cur] = true
		visit(cur)
		queue = append(queue, cur.children...)
	}
}

// remoteAncestor is the nearest ancestor with a kind (an RPC or messaging
// span), skipping local spans.
func (n *node) remoteAncestor() *Span {
	for a, hops := n.parent, 0; a != nil && hops < 1<<16; a, hops = a.parent, hops+1 {
		if a.span != nil && a.span.Kind != KindUnspecified {
			return a.span
		}
	}
	return nil
}

// nodeKey identifies a span in the tree. A server that shares its client's
// span ID is told apart by its local endpoint, in case several servers
// answered the same client span (Zipkin's SpanNode.SharedKey).
type nodeKey struct {
	id     SpanID
	shared bool
	ep     Endpoint
	hasEp  bool
	none   bool // no parent
}

func keyOf(id SpanID, shared bool, ep *Endpoint) nodeKey {
	if !shared {
		return nodeKey{id: id}
	}
	k := nodeKey{id: id, shared: true}
	if ep != nil {
		k.ep, k.hasEp = *ep, true
	}
	return k
}

// buildTree arranges merged spans as Zipkin's SpanNode.Builder does: the
// first span without a parent is the root, shared server spans hang below
// their client, and spans whose parent is missing hang below the root (a
// synthetic one when no root was reported).
func buildTree(spans []Span) *node {
	var order []nodeKey // spanToParent's insertion order
	toParent := map[nodeKey]nodeKey{}
	put := func(k, parent nodeKey) {
		if _, ok := toParent[k]; !ok {
			order = append(order, k)
		}
		toParent[k] = parent
	}
	for i := range spans {
		sp := &spans[i]
		switch {
		case sp.Shared:
			put(keyOf(sp.ID, true, sp.LocalEndpoint), keyOf(sp.ID, false, nil))
		case sp.ParentID != 0:
			put(keyOf(sp.ID, false, nil), keyOf(sp.ParentID, false, nil))
		default:
			put(keyOf(sp.ID, false, nil), nodeKey{none: true})
		}
	}
	var root *node
	byKey := map[nodeKey]*node{}
	for i := range spans {
		sp := &spans[i]
		key := keyOf(sp.ID, sp.Shared, sp.LocalEndpoint)
		noEp := keyOf(sp.ID, sp.Shared, nil)
		hasParent := true
		switch {
		case sp.Shared:
		case sp.ParentID != 0:
			// Most specific first: the child of a shared server span on
			// this same endpoint (a local span inside the server).
			p := keyOf(sp.ParentID, true, sp.LocalEndpoint)
			if _, ok := toParent[p]; ok {
				put(noEp, p)
			}
		default:
			hasParent = false
		}
		n := &node{span: sp}
		switch {
		case !hasParent && root == nil:
			root = n
			delete(toParent, noEp)
		case sp.Shared:
			byKey[key], byKey[noEp] = n, n
		default:
			byKey[noEp] = n
		}
	}
	if root == nil {
		root = &node{}
	}
	for _, k := range order {
		pk, ok := toParent[k]
		if !ok {
			continue // the root's own entry
		}
		child := byKey[k]
		if child == nil {
			continue
		}
		parent := byKey[pk]
		if pk.none || parent == nil || parent == child {
			parent = root
		}
		child.parent = parent
		parent.children = append(parent.children, child)
	}
	return root
}

// MergeParts combines the pieces of spans reported in parts and fixes what
// instrumentation commonly gets wrong, as Zipkin's Trace.merge does before
// building a tree (and before matching a search): pieces with the same ID,
// shared flag and compatible local endpoint become one span, a missing
// field taken from the other piece; a SERVER span after a CLIENT with its
// ID is marked shared and inherits the client's parent; every span takes
// the trace's 128-bit ID if any piece has one.
func MergeParts(in []Span) []Span {
	spans := slices.Clone(in)
	if len(spans) <= 1 {
		return spans
	}
	slices.SortStableFunc(spans, cleanupOrder)
	traceID := spans[0].TraceID
	for _, s := range spans[1:] {
		if traceID.High == 0 {
			traceID = s.TraceID
		}
	}
	out := spans[:0]
	for i := 0; i < len(spans); i++ {
		sp := spans[i]
		if sp.TraceID.High == 0 {
			sp.TraceID = traceID
		}
		var ep endpointTracker
		ep.tryMerge(sp.LocalEndpoint)
		for i+1 < len(spans) && spans[i+1].ID == sp.ID {
			next := &spans[i+1]
			if next.Shared != sp.Shared || !ep.tryMerge(next.LocalEndpoint) {
				break
			}
			sp = mergeSpan(sp, next)
			i++
		}
		if n := len(out); n > 0 && out[n-1].ID == sp.ID {
			last := &out[n-1]
			if last.Kind == KindClient && sp.Kind == KindServer && !sp.Shared {
				sp.Shared = true
			}
			if sp.Shared && sp.ParentID == 0 && last.ParentID != 0 {
				sp.ParentID = last.ParentID
			}
		}
		out = append(out, sp)
	}
	return out
}

// cleanupOrder sorts by span ID, then clients before servers (unshared
// before shared), then local endpoint with absent first.
func cleanupOrder(a, b Span) int {
	if c := cmp.Compare(a.ID, b.ID); c != 0 {
		return c
	}
	if c := sharedRank(&a) - sharedRank(&b); c != 0 {
		return c
	}
	ea, eb := a.LocalEndpoint, b.LocalEndpoint
	switch {
	case ea == nil && eb == nil:
		return 0
	case ea == nil:
		return -1
	case eb == nil:
		return 1
	}
	return cmp.Or(absentLast(ea.ServiceName, eb.ServiceName),
		absentLast(addrString(ea.IPv4), addrString(eb.IPv4)),
		absentLast(addrString(ea.IPv6), addrString(eb.IPv6)))
}

func sharedRank(s *Span) int {
	switch {
	case s.Shared:
		return 2
	case s.Kind == KindClient:
		return 0
	}
	return 1
}

func absentLast(a, b string) int {
	switch {
	case a == b:
		return 0
	case a == "":
		return 1
	case b == "":
		return -1
	}
	return cmp.Compare(a, b)
}

// endpointTracker accumulates the local endpoint of span pieces and refuses
// a piece whose endpoint contradicts what was seen (a different host).
type endpointTracker struct{ Endpoint }

func (t *endpointTracker) tryMerge(e *Endpoint) bool {
	if e == nil {
		return true
	}
	if (t.ServiceName != "" && e.ServiceName != "" && t.ServiceName != e.ServiceName) ||
		(t.IPv4.IsValid() && e.IPv4.IsValid() && t.IPv4 != e.IPv4) ||
		(t.IPv6.IsValid() && e.IPv6.IsValid() && t.IPv6 != e.IPv6) ||
		(t.Port != 0 && e.Port != 0 && t.Port != e.Port) {
		return false
	}
	fillEndpoint(&t.Endpoint, e)
	return true
}

func fillEndpoint(dst, src *Endpoint) {
	if dst.ServiceName == "" {
		dst.ServiceName = src.ServiceName
	}
	if !dst.IPv4.IsValid() {
		dst.IPv4 = src.IPv4
	}
	if !dst.IPv6.IsValid() {
		dst.IPv6 = src.IPv6
	}
	if dst.Port == 0 {
		dst.Port = src.Port
	}
}

// mergeSpan fills what a is missing from b (Zipkin's Span.Builder.merge):
// b's tags win, annotations are unioned.
func mergeSpan(a Span, b *Span) Span {
	if a.ParentID == 0 {
		a.ParentID = b.ParentID
	}
	if a.Kind == KindUnspecified {
		a.Kind = b.Kind
	}
	if a.Name == "" {
		a.Name = b.Name
	}
	if a.Timestamp == 0 {
		a.Timestamp = b.Timestamp
	}
	if a.Duration == 0 {
		a.Duration = b.Duration
	}
	a.LocalEndpoint = mergeEndpoint(a.LocalEndpoint, b.LocalEndpoint)
	a.RemoteEndpoint = mergeEndpoint(a.RemoteEndpoint, b.RemoteEndpoint)
	if len(b.Annotations) > 0 {
		a.Annotations = append(slices.Clone(a.Annotations), b.Annotations...)
		slices.SortFunc(a.Annotations, func(x, y Annotation) int {
			return cmp.Or(cmp.Compare(x.Timestamp, y.Timestamp), cmp.Compare(x.Value, y.Value))
		})
		a.Annotations = slices.Compact(a.Annotations)
	}
	if len(b.Tags) > 0 {
		tags := maps.Clone(a.Tags)
		if tags == nil {
			tags = map[string]string{}
		}
		maps.Copy(tags, b.Tags)
		a.Tags = tags
		// A tag b gives replaces a's, and so does what b says of it.
		origins := slices.DeleteFunc(slices.Clone(a.Origins), func(o TagOrigin) bool { _, ok := b.Tags[o.Key]; return ok })
		a.Origins = normalizeOrigins(append(origins, b.Origins...), a.Tags)
	}
	a.FromOTLP = a.FromOTLP || b.FromOTLP
	a.Debug = a.Debug || b.Debug
	a.Shared = a.Shared || b.Shared
	return a
}

func mergeEndpoint(a, b *Endpoint) *Endpoint {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	m := *a
	fillEndpoint(&m, b)
	return &m
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
