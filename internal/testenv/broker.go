package testenv

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Broker is a RabbitMQ node of one test's own, from the machine's
// rabbitmq-server package: its own node name, ports and data directory on
// 127.0.0.1, so a test may stop and restart it (never the machine's shared
// broker). It is stopped and removed at cleanup.
type Broker struct {
	Node    string // Erlang node name, e.g. zqt1a2b3c@localhost
	Port    int    // AMQP port
	TLSPort int    // AMQPS port (StartTLSBroker), else 0
	dir     string
	env     []string
}

// StartBroker starts a single-node broker and waits until it runs.
func StartBroker(t testing.TB) *Broker { return startBroker(t, nil) }

// StartTLSBroker starts a broker that also listens for AMQPS on TLSPort
// with pki's server certificate, and accepts only clients presenting a
// certificate signed by pki's CA there.
func StartTLSBroker(t testing.TB, pki *PKI) *Broker {
	return startBroker(t, func(dir string, b *Broker) string {
		b.TLSPort = freePort(t)
		conf := fmt.Sprintf("listeners.ssl.default = 127.0.0.1:%d\n", b.TLSPort)
		for key, src := range map[string]string{"cacertfile": pki.CA, "certfile": pki.ServerCert, "keyfile": pki.ServerKey} {
			pem, err := os.ReadFile(src)
			Must(t, err)
			dst := filepath.Join(dir, key+".pem")
			Must(t, os.WriteFile(dst, pem, 0o600)) // chowned with the directory
			conf += fmt.Sprintf("ssl_options.%s = %s\n", key, dst)
		}
		return conf + "ssl_options.verify = verify_peer\nssl_options.fail_if_no_peer_cert = true\n"
	})
}

// startBroker starts a node; extra (optional) writes files into its
// directory and returns more rabbitmq.conf lines.
func startBroker(t testing.TB, extra func(dir string, b *Broker) string) *Broker {
	t.Helper()
	if _, err := exec.LookPath("rabbitmq-server"); err != nil {
		t.Fatalf("testenv: rabbitmq-server is not installed (run `make services`): %v", err)
	}
	dir, err := os.MkdirTemp("", "zipq-broker-")
	Must(t, err)
	b := &Broker{Node: "zqt" + ID() + "@localhost", Port: freePort(t), dir: dir}
	for _, f := range []string{"enabled_plugins", "env.conf"} {
		Must(t, os.WriteFile(filepath.Join(dir, f), nil, 0o644))
	}
	conf := fmt.Sprintf("listeners.tcp.default = 127.0.0.1:%d\n", b.Port)
	if extra != nil {
		conf += extra(dir, b)
	}
	Must(t, os.WriteFile(filepath.Join(dir, "rabbitmq.conf"), []byte(conf), 0o644))
	// Debian's wrapper runs the node as user rabbitmq (when started as
	// root), keeping the environment: the directory must be its.
	if u, err := user.Lookup("rabbitmq"); err == nil && os.Geteuid() == 0 {
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		Must(t, filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Chown(p, uid, gid)
		}))
	}
	b.env = append(os.Environ(),
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(dir, "env.conf"), // ignore the system node's env
		"RABBITMQ_NODENAME="+b.Node,
		"RABBITMQ_NODE_PORT="+strconv.Itoa(b.Port),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(freePort(t)),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"ERL_EPMD_ADDRESS=127.0.0.1",
		// Listen on loopback only, and keep idle schedulers from spinning
		// on a 2-core machine.
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1} +sbwt none +sbwtdcpu none +sbwtdio none",
	)
	t.Cleanup(func() {
		_ = b.ctl("stop")
		_ = os.RemoveAll(dir)
	})
	b.Start(t)
	return b
}

// Start starts the node (again) and waits until it accepts connections.
func (b *Broker) Start(t testing.TB) {
	t.Helper()
	cmd := exec.Command("rabbitmq-server", "-detached")
	cmd.Env = b.env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testenv: start broker %s: %v\n%s", b.Node, err, out)
	}
	deadline := time.Now().Add(90 * time.Second)
	for b.ctl("await_startup", "--timeout", "5") != nil {
		if time.Now().After(deadline) {
			t.Fatalf("testenv: broker %s did not start", b.Node)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Stop stops the whole node (its Erlang VM exits), as a broker restart or
// crash would.
func (b *Broker) Stop(t testing.TB) {
	t.Helper()
	if err := b.ctl("stop"); err != nil {
		t.Fatalf("testenv: stop broker %s: %v", b.Node, err)
	}
}

// Ctl runs rabbitmqctl against this node.
func (b *Broker) Ctl(t testing.TB, args ...string) {
	t.Helper()
	if err := b.ctl(args...); err != nil {
		t.Fatalf("testenv: rabbitmqctl %v on %s: %v", args, b.Node, err)
	}
}

func (b *Broker) ctl(args ...string) error {
	cmd := exec.Command("rabbitmqctl", append([]string{"-q", "-n", b.Node}, args...)...)
	cmd.Env = b.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}

// VHost creates a vhost on this broker for guest; queueType is its default
// queue type ("" for none, i.e. classic). It returns the AMQP URL.
func (b *Broker) VHost(t testing.TB, name, queueType string) string {
	t.Helper()
	args := []string{"add_vhost", name}
	if queueType != "" {
		args = append(args, "--default-queue-type", queueType)
	}
	b.Ctl(t, args...)
	b.Ctl(t, "set_permissions", "-p", name, "guest", ".*", ".*", ".*")
	return fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/%s", b.Port, url.PathEscape(name))
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Must(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// StartCluster starts n broker nodes of the test's own and joins them into
// one cluster (nodes 2..n join node 1), as ../shared/scale-out.md does.
func StartCluster(t testing.TB, n int) []*Broker {
	t.Helper()
	nodes := make([]*Broker, n)
	for i := range nodes {
		nodes[i] = StartBroker(t)
	}
	for _, b := range nodes[1:] {
		b.Ctl(t, "stop_app")
		b.Ctl(t, "join_cluster", nodes[0].Node)
		b.Ctl(t, "start_app")
	}
	return nodes
}

// Address is the node's AMQP host:port.
func (b *Broker) Address() string { return fmt.Sprintf("127.0.0.1:%d", b.Port) }

// Output runs rabbitmqctl against this node and returns what it printed.
func (b *Broker) Output(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command("rabbitmqctl", append([]string{"-q", "-n", b.Node}, args...)...)
	cmd.Env = b.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("testenv: rabbitmqctl %v on %s: %v\n%s", args, b.Node, err, out)
	}
	return string(out)
}
