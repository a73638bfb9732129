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

// pgEnv runs the machine's PostgreSQL server binaries as the postgres
// user in a temporary directory of the test's own, removed at cleanup
// (after the cleanups registered later, which stop the servers).
type pgEnv struct {
	base       string
	bin        func(name string) string
	asPostgres func(args ...string) *exec.Cmd
	t          testing.TB
}

func newPGEnv(t testing.TB, prefix string) *pgEnv {
	t.Helper()
	bin, err := exec.Command("sh", "-c", "ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1").Output()
	if err != nil || len(bin) == 0 {
		t.Fatalf("testenv: PostgreSQL's server binaries are not installed (run `make services`): %v", err)
	}
	dir := string(bin[:len(bin)-1])
	e := &pgEnv{t: t, bin: func(name string) string { return filepath.Join(dir, name) }}
	e.base, err = os.MkdirTemp("", prefix)
	Must(t, err)
	Must(t, os.Chmod(e.base, 0o755))
	t.Cleanup(func() { _ = os.RemoveAll(e.base) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		Must(t, err)
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		Must(t, os.Chown(e.base, uid, gid))
		e.asPostgres = func(args ...string) *exec.Cmd {
			return exec.Command("runuser", append([]string{"-u", "postgres", "--"}, args...)...)
		}
	} else {
		e.asPostgres = func(args ...string) *exec.Cmd { return exec.Command(args[0], args[1:]...) }
	}
	return e
}

func (e *pgEnv) run(args ...string) {
	e.t.Helper()
	if out, err := e.asPostgres(args...).CombinedOutput(); err != nil {
		e.t.Fatalf("testenv: %v: %v\n%s", args, err, out)
	}
}

// appendConf appends text to data's file name, as the postgres user.
func (e *pgEnv) appendConf(data, name, text string) {
	e.run("sh", "-c", fmt.Sprintf("printf %%s \"$1\" >> %s/%s", data, name), "_", text)
}

// server initialises a data directory with conf and starts it on port;
// it is stopped at cleanup.
func (e *pgEnv) server(name string, port int, conf string) string {
	data := filepath.Join(e.base, name)
	e.t.Cleanup(func() { _ = e.asPostgres(e.bin("pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop").Run() })
	e.run(e.bin("initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
	e.appendConf(data, "postgresql.conf", fmt.Sprintf("port = %d\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\nfsync = off\n", port, e.base)+conf)
	return data
}

func (e *pgEnv) start(data string) {
	e.run(e.bin("pg_ctl"), "-D", data, "-l", data+".log", "-w", "start")
}

// StartReplica starts a primary and a standby replicating from it.
func StartReplica(t testing.TB) Replica {
	t.Helper()
	e := newPGEnv(t, "zipq-replica-")
	pport, sport := freePort(t), freePort(t)
	primary := e.server("primary", pport, "max_wal_senders = 4\nwal_level = replica\nhot_standby = on\n")
	e.start(primary)
	standby := filepath.Join(e.base, "standby")
	t.Cleanup(func() { _ = e.asPostgres(e.bin("pg_ctl"), "-D", standby, "-m", "immediate", "-w", "stop").Run() })
	e.run(e.bin("pg_basebackup"), "-h", "127.0.0.1", "-p", strconv.Itoa(pport), "-U", "postgres", "-D", standby, "-R", "-X", "stream")
	e.appendConf(standby, "postgresql.conf", fmt.Sprintf("port = %d\n", sport))
	e.start(standby)
	url := func(port int) string {
		return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	}
	return Replica{PrimaryURL: url(pport), StandbyURL: url(sport)}
}

// StartTLSPostgres starts a server that accepts only TLS connections
// presenting a client certificate signed by pki's CA, for user postgres
// (pg_hba "cert"). It returns its URL without any ssl parameters.
func StartTLSPostgres(t testing.TB, pki *PKI) string {
	t.Helper()
	e := newPGEnv(t, "zipq-pgtls-")
	port := freePort(t)
	data := e.server("data", port, "ssl = on\nssl_cert_file = 'server.pem'\nssl_key_file = 'server.key'\nssl_ca_file = 'ca.pem'\n")
	for src, dst := range map[string]string{pki.ServerCert: "server.pem", pki.ServerKey: "server.key", pki.CA: "ca.pem"} {
		b, err := os.ReadFile(src)
		Must(t, err)
		e.run("sh", "-c", fmt.Sprintf("umask 077; printf %%s \"$1\" > %s/%s", data, dst), "_", string(b))
	}
	e.run("sh", "-c", fmt.Sprintf("printf 'local all all trust\\nhostssl all postgres 127.0.0.1/32 cert\\n' > %s/pg_hba.conf", data))
	e.start(data)
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres", port)
}
