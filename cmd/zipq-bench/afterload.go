package main

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zipq/zipq/zipkin"
)

// afterLoad is issue 22's first-minute tail, as a new user meets it: zipq
// serve (collector and query in one process) fed n spans of the last hour
// as Zipkin JSON over HTTP; as soon as every span is stored, Zipkin's
// search by service at 8 in flight, in windows of afterLoadWindow for two
// minutes, each with its p50 and p99 and what PostgreSQL was running
// meanwhile besides the searches (pg_stat_activity sampled every 100 ms:
// autovacuum, zipq's linker and maintenance). Printed, not written.
func (b *bench) afterLoad(n int, idle time.Duration) string {
	end := time.Now()
	var bodies [][]byte
	chunks(n, 13, end, time.Hour, func(sp []zipkin.Span) { bodies = append(bodies, messages(sp, 100)...) })
	dsn, _ := b.schema("afterload")
	queue := b.queue("afterload")
	p := b.start("serve-afterload", []string{"POSTGRES_URL=" + dsn, "RABBIT_URI=" + b.amqpURL, "RABBIT_QUEUE=" + queue,
		"RABBIT_PARKED_QUEUE_TYPE=classic"}, "serve")
	defer p.stop()
	send := b.sender("zipkin-json-http", p.addr, "", "", "")
	t0 := time.Now()
	sendAll(send, bodies)
	for count(b.ctx, dsn) < n {
		time.Sleep(100 * time.Millisecond)
	}
	loaded := time.Since(t0)

	conn, err := pgx.Connect(b.ctx, dsn)
	must(err)
	defer conn.Close(b.ctx)
	search := "http://" + p.addr + "/api/v2/traces?" + url.Values{"serviceName": {"checkout"}, "lookback": {"3600000"}, "limit": {"10"},
		"endTs": {fmt.Sprint(end.UnixMilli())}}.Encode()
	var out strings.Builder
	fmt.Fprintf(&out, "%d spans stored through zipq serve in %v; then search by service at 8 in flight:\n\n", n, loaded.Round(time.Second))
	fmt.Fprintf(&out, "| after load | requests | p50 | p99 | CPU s: PostgreSQL, RabbitMQ, zipq | PostgreSQL besides the searches (share of 100-ms samples) |\n|---|---|---|---|---|---|\n")
	if idle > 0 { // what runs after the load when nobody searches
		cpu0 := processCPU(p.cmd.Process.Pid)
		time.Sleep(idle)
		cpu1 := processCPU(p.cmd.Process.Pid)
		fmt.Fprintf(&out, "| idle for %v | | | | %.1f, %.1f, %.1f | |\n", idle, cpu1[0]-cpu0[0], cpu1[1]-cpu0[1], cpu1[2]-cpu0[2])
	}
	var profiles []string
	for w := time.Duration(0); w < 2*time.Minute; w += afterLoadWindow {
		stop := time.Now().Add(afterLoadWindow)
		var mu sync.Mutex
		var lat []time.Duration
		perSecond := map[int][]time.Duration{} // the first window, second by second
		begin := time.Now()
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(stop) {
					t := time.Now()
					get(search)
					d := time.Since(t)
					mu.Lock()
					lat = append(lat, d)
					if w == 0 {
						sec := int(time.Since(begin) / time.Second)
						perSecond[sec] = append(perSecond[sec], d)
					}
					mu.Unlock()
				}
			}()
		}
		// zipq's own CPU in the first window and in the last.
		var cpu chan string
		if w == 0 || w+afterLoadWindow >= 2*time.Minute {
			cpu = make(chan string, 1)
			go func() {
				cpu <- b.profile(p, "profile?seconds=10", fmt.Sprintf("cpu-afterload-%d.pprof", w/time.Second))
			}()
		}
		cpu0 := processCPU(p.cmd.Process.Pid)
		busy, samples := map[string]int{}, 0
		for time.Now().Before(stop) {
			samples++
			rows, err := conn.Query(b.ctx, `SELECT backend_type, coalesce(left(regexp_replace(query, '\s+', ' ', 'g'), 48), '')
				FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid()
				AND (backend_type <> 'client backend' OR NOT (query LIKE 'SELECT trace_id_low, trace_id_high, ts_max%'
					OR query LIKE '%FROM segments%' OR query IN ('BEGIN READ ONLY', 'SET LOCAL enable_sort = off', 'COMMIT')))`)
			must(err)
			var kind, q string
			_, err = pgx.ForEachRow(rows, []any{&kind, &q}, func() error {
				if kind == "client backend" {
					kind = q
				}
				busy[kind]++
				return nil
			})
			must(err)
			time.Sleep(100 * time.Millisecond)
		}
		wg.Wait()
		slices.Sort(lat)
		var what []string
		for _, k := range slices.SortedFunc(maps.Keys(busy), func(a, b string) int { return cmp.Compare(busy[b], busy[a]) }) {
			what = append(what, fmt.Sprintf("`%s` %.0f%%", strings.ReplaceAll(k, "|", "/"), 100*float64(busy[k])/float64(samples)))
		}
		if w == 0 {
			var secs []string
			for _, sec := range slices.Sorted(maps.Keys(perSecond)) {
				l := perSecond[sec]
				secs = append(secs, fmt.Sprintf("%ds: %d, max %s", sec, len(l), ms(slices.Max(l))))
			}
			profiles = append(profiles, "The first window second by second (requests, slowest): "+strings.Join(secs, "; ")+"\n")
		}
		if cpu != nil {
			profiles = append(profiles, fmt.Sprintf("zipq serve's CPU from %v (10 s, `go tool pprof -top -cum`):\n\n```\n%s\n```\n", w, top(<-cpu, "-top", "-cum")))
		}
		cpu1 := processCPU(p.cmd.Process.Pid)
		fmt.Fprintf(&out, "| %v–%v | %d | %s | %s | %.1f, %.1f, %.1f | %s |\n", w, w+afterLoadWindow, len(lat), ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]),
			cpu1[0]-cpu0[0], cpu1[1]-cpu0[1], cpu1[2]-cpu0[2], strings.Join(what, ", "))
	}
	return out.String() + "\n" + strings.Join(profiles, "\n")
}

const afterLoadWindow = 15 * time.Second

// processCPU is the CPU seconds used so far by PostgreSQL's processes,
// RabbitMQ's (beam.smp) and zipq (pid), from /proc: the servers run on
// this machine in the bench.
func processCPU(zipq int) (out [3]float64) {
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ... utime stime: fields 14 and 15, counted
		// after the command name, which may hold spaces.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		comm := string(stat[bytes.IndexByte(stat, '(')+1 : i])
		f := strings.Fields(string(stat[i+2:]))
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		sec := (ut + st) / 100 // USER_HZ
		switch {
		case strings.HasPrefix(comm, "postgres"):
			out[0] += sec
		case comm == "beam.smp":
			out[1] += sec
		case pid == zipq:
			out[2] += sec
		}
	}
	return out
}
