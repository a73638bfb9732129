package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
)

// Replica is a PostgreSQL primary and a streaming hot standby of the
// test's own (initdb and pg_basebackup from the machine's PostgreSQL
// package, on free ports, run as the postgres user), never the machine's
// shared server. Both are stopped and removed at cleanup.
type Replica struct {
	PrimaryURL, StandbyURL string
}

// StartReplica starts a primary and a standby replicating from it.
func StartReplica(t testing.TB) Replica {
	t.Helper()
	bin, err := exec.Command("sh", "-c", "ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1").Output()
	if err != nil || len(bin) == 0 {
		t.Fatalf("testenv: PostgreSQL's server binaries are not installed (run `make services`): %v", err)
	}
	dir := string(bin[:len(bin)-1])
	pg := func(name string) string { return filepath.Join(dir, name) }
	base, err := os.MkdirTemp("", "zipq-replica-")
	Must(t, err)
	Must(t, os.Chmod(base, 0o755))
	var asPostgres func(args ...string) *exec.Cmd
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		Must(t, err)
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		Must(t, os.Chown(base, uid, gid))
		asPostgres = func(args ...string) *exec.Cmd {
			return exec.Command("runuser", append([]string{"-u", "postgres", "--"}, args...)...)
		}
	} else {
		asPostgres = func(args ...string) *exec.Cmd { return exec.Command(args[0], args[1:]...) }
	}
	run := func(args ...string) {
		t.Helper()
		if out, err := asPostgres(args...).CombinedOutput(); err != nil {
			t.Fatalf("testenv: %v: %v\n%s", args, err, out)
		}
	}
	primary, standby := filepath.Join(base, "primary"), filepath.Join(base, "standby")
	pport, sport := freePort(t), freePort(t)
	conf := func(port int) string {
		return fmt.Sprintf("port = %d\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\nfsync = off\nmax_wal_senders = 4\nwal_level = replica\nhot_standby = on\n", port, base)
	}
	t.Cleanup(func() {
		for _, d := range []string{standby, primary} {
			_ = asPostgres(pg("pg_ctl"), "-D", d, "-m", "immediate", "-w", "stop").Run()
		}
		_ = os.RemoveAll(base)
	})
	run(pg("initdb"), "-D", primary, "-A", "trust", "-U", "postgres", "--no-sync")
	run("sh", "-c", fmt.Sprintf("printf %%s \"$1\" >> %s/postgresql.conf", primary), "_", conf(pport))
	run(pg("pg_ctl"), "-D", primary, "-l", filepath.Join(base, "primary.log"), "-w", "start")
	run(pg("pg_basebackup"), "-h", "127.0.0.1", "-p", strconv.Itoa(pport), "-U", "postgres", "-D", standby, "-R", "-X", "stream")
	run("sh", "-c", fmt.Sprintf("printf %%s \"$1\" >> %s/postgresql.conf", standby), "_", fmt.Sprintf("port = %d\n", sport))
	run(pg("pg_ctl"), "-D", standby, "-l", filepath.Join(base, "standby.log"), "-w", "start")
	url := func(port int) string {
		return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	}
	return Replica{PrimaryURL: url(pport), StandbyURL: url(sport)}
}
