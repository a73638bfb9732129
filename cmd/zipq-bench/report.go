package main

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

type report struct {
	date     time.Time
	cmd      string
	ingest   []ingestResult
	drainRaw time.Duration
	drain    []drainResult
	query    *queryResult
}

const (
	beginMark = "<!-- zipq-bench:begin -->"
	endMark   = "<!-- zipq-bench:end -->"
)

func rate(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

func num(f float64) string {
	s := fmt.Sprintf("%.0f", f)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

// write replaces the section between the markers of path (appending it
// when absent) and draws the plots.
func (r *report) write(path, imgDir string) error {
	var s strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&s, format, args...) }
	w("%s\n## zipq-bench: ingest, backlog drain, queries, storage\n\n", beginMark)
	w("%s. Command: `%s` (after `make build`). Machine: 2 vCPU, 24 GiB; RabbitMQ 3.10, PostgreSQL 15, zipq and the load generator share it. zipq is a plain build with default settings (1 consumer, prefetch sized by a 16 MiB window, 5,000-span batches); queues in vhost `/` with default queue type quorum, as `make run` sets it up.\n\n",
		r.date.Format("2006-01-02 15:04 UTC"), r.cmd)
	if len(r.ingest) > 0 {
		w("### Ingest, end to end\n\nRealistic spans (traces of 10 spans over 8 services, 6 tags each, a quarter with an annotation, 5%% errors) published persistently with publisher confirms, stored by one `zipq collector` (ack after commit). Time from the first publish to the last span committed. Baselines from the same run: raw pgx COPY of the same spans, one row per span, into the per-span layout zipq stored before segments with its indexes (the target's baseline; no queue), zipq's own write path called directly (`storage.WriteSpans`, 5,000 per call, no queue, no linker), and RabbitMQ alone moving the same messages (confirms and acks, nothing behind it).\n\n")
		w("| shape | spans | messages | raw COPY spans/s | zipq's write path alone spans/s | RabbitMQ alone msgs/s (spans/s) | zipq stored spans/s | zipq / raw COPY | zipq / RabbitMQ | collector peak RSS |\n|---|---|---|---|---|---|---|---|---|---|\n")
		for _, in := range r.ingest {
			w("| %d span(s)/message | %s | %s | %s | %s | %s (%s) | %s | **%.2f** | %.2f | %.0f MiB |\n", in.perMessage, num(float64(in.spans)), num(float64(in.msgs)),
				num(rate(in.spans, in.raw)), num(rate(in.spans, in.idem)), num(rate(in.msgs, in.rabbit)), num(rate(in.spans, in.rabbit)), num(rate(in.spans, in.zipq)),
				rate(in.spans, in.zipq)/rate(in.spans, in.raw), rate(in.spans, in.zipq)/rate(in.spans, in.rabbit), in.rss)
		}
		w("\nInside the collector: ")
		for i, in := range r.ingest {
			if i > 0 {
				w("; ")
			}
			w("%d span(s)/message: %s batches of %s spans on average, %.1f ms per batch write+commit, %.0f%% of the run spent in writes",
				in.perMessage, num(in.batches), num(in.batchSpans/max(in.batches, 1)), 1000*in.commitSeconds/max(in.batches, 1), 100*in.commitSeconds/in.zipq.Seconds())
		}
		w(".\n")
		for _, in := range r.ingest {
			if in.cpuTop != "" {
				w("\nCollector CPU profile during the %d-spans/message run (4 s, `go tool pprof -top`):\n\n```\n%s\n```\n\nAllocations (alloc_space):\n\n```\n%s\n```\n", in.perMessage, in.cpuTop, in.allocTop)
			}
		}
	}
	if len(r.drain) > 0 {
		w("\n### Backlog drain\n\n%s spans (100 per message) published with no collector running, then `zipq collector` started (1, then 2 replicas, fresh schema and queue each): time until the queue is empty and every span is stored, including process start. Baseline: raw COPY of the same rows in the same run, %s (%s spans/s).\n\n",
			num(float64(r.drain[0].spans)), r.drainRaw.Round(time.Millisecond), num(rate(r.drain[0].spans, r.drainRaw)))
		w("| collectors | time to drain | spans/s | time / raw COPY time | peak RSS per collector |\n|---|---|---|---|---|\n")
		for _, d := range r.drain {
			var rss []string
			for _, m := range d.rss {
				rss = append(rss, fmt.Sprintf("%.0f MiB", m))
			}
			w("| %d | %s | %s | **%.2f** | %s |\n", d.replicas, d.elapsed.Round(time.Millisecond), num(rate(d.spans, d.elapsed)), d.elapsed.Seconds()/r.drainRaw.Seconds(), strings.Join(rss, ", "))
		}
		img := filepath.Join(imgDir, "bench-drain.png")
		if err := drainPlot(r.drain, img); err != nil {
			return err
		}
		w("\n![queue depth during the drain](img/bench-drain.png)\n")
	}
	if q := r.query; q != nil {
		w("\n### Queries and storage, %s spans stored\n\n%s spans spread over the last 24 h, stored through the collector's write path and linked (%s), then `zipq query` over HTTP: 200 requests per row (after 10 warm-up), at concurrency 1 and 8. Baseline: `GET /health` (an HTTP round trip plus a PostgreSQL ping) in the same run.\n\n",
			num(float64(q.spans)), num(float64(q.spans)), q.seed.Round(time.Second))
		w("| request | concurrency | p50 | p99 | p99 / baseline p99 |\n|---|---|---|---|---|\n")
		base := map[int]time.Duration{}
		for _, l := range q.rows {
			if strings.HasPrefix(l.name, "baseline") {
				base[l.conc] = l.p99
			}
		}
		for _, l := range q.rows {
			w("| %s | %d | %s | %s | %.1f |\n", l.name, l.conc, ms(l.p50), ms(l.p99), float64(l.p99)/float64(base[l.conc]))
		}
		w("\n`zipq query`'s CPU profile during the TraceQL scan at 8 in flight (10 s, `go tool pprof -top`):\n\n```\n%s\n```\n", q.scanTop)
		w("\n**Storage:** **%.0f bytes per span for the whole schema** (every table and index: segments, span_index, name tables, dependency links and their per-trace rows); of which segments %.0f, span_index %.0f (its indexes %.0f).\n", q.bytesPerSpanDB, q.bytesPerSpan, q.heapPerSpan, q.indexPerSpan)
		if err := latencyPlot(q.rows, filepath.Join(imgDir, "bench-queries.png")); err != nil {
			return err
		}
		w("\n![query latency](img/bench-queries.png)\n")
	}
	w("%s\n", endMark)

	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	doc := string(old)
	if i, j := strings.Index(doc, beginMark), strings.Index(doc, endMark); i >= 0 && j > i {
		doc = doc[:i] + s.String() + doc[j+len(endMark)+1:]
	} else {
		doc += "\n" + s.String()
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}

func drainPlot(runs []drainResult, path string) error {
	p := plot.New()
	p.Title.Text = "Backlog drain: queue depth"
	p.X.Label.Text = "seconds since collectors started"
	p.Y.Label.Text = "messages in queue"
	var args []any
	for _, d := range runs {
		pts := make(plotter.XYs, len(d.series))
		for i, pt := range d.series {
			pts[i].X, pts[i].Y = pt.t, float64(pt.depth)
		}
		args = append(args, fmt.Sprintf("%d collector(s)", d.replicas), pts)
	}
	if err := plotutil.AddLines(p, args...); err != nil {
		return err
	}
	p.Legend.Top = true
	return p.Save(7*vg.Inch, 4*vg.Inch, path)
}

func latencyPlot(rows []latency, path string) error {
	p := plot.New()
	p.Title.Text = "Query latency p99 (ms)"
	p.Y.Label.Text = "ms"
	var names []string
	var c1, c8 plotter.Values
	for _, l := range rows {
		v := float64(l.p99.Microseconds()) / 1000
		if l.conc == 1 {
			c1 = append(c1, v)
			names = append(names, shortName(l.name))
		} else {
			c8 = append(c8, v)
		}
	}
	w := vg.Points(10)
	b1, err := plotter.NewBarChart(c1, w)
	if err != nil {
		return err
	}
	b1.Color = color.RGBA{58, 109, 240, 255}
	b1.Offset = -w / 2
	b8, err := plotter.NewBarChart(c8, w)
	if err != nil {
		return err
	}
	b8.Color = color.RGBA{227, 154, 28, 255}
	b8.Offset = w / 2
	p.Add(b1, b8)
	p.Legend.Add("concurrency 1", b1)
	p.Legend.Add("concurrency 8", b8)
	p.Legend.Top = true
	p.NominalX(names...)
	p.X.Tick.Label.Rotation = 0.5
	p.X.Tick.Label.XAlign = -0.9
	return p.Save(9*vg.Inch, 5*vg.Inch, path)
}

func shortName(s string) string {
	if i := strings.Index(s, " ("); i > 0 {
		s = s[:i]
	}
	return strings.TrimPrefix(s, "search: ")
}
