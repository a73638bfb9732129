package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// There is no Docker engine where CI runs, so the compose file is checked
// for shape: it parses and names the services the README promises.
func TestComposeFileNamesItsServices(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Services map[string]struct {
			Image       string
			Hostname    string
			Profiles    []string
			Command     []string
			Volumes     []string
			Environment map[string]string
			Deploy      struct{ Replicas int }
		}
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("docker-compose.yml does not parse: %v", err)
	}
	for _, s := range []string{"postgres", "rabbitmq", "migrate", "collector", "query"} {
		if _, ok := f.Services[s]; !ok {
			t.Errorf("service %q missing", s)
		}
	}
	if c := f.Services["collector"]; !slices.Equal(c.Command, []string{"collector"}) || c.Deploy.Replicas != 2 {
		t.Errorf("collector must run `zipq collector` with 2 replicas: %+v", c)
	}
	// The span queue must be a quorum queue (default_queue_type needs
	// 3.13.3+) and the broker's data must outlive its container.
	r := f.Services["rabbitmq"]
	conf, err := os.ReadFile("../../deploy/rabbitmq/zipq.conf")
	if err != nil || !slices.Contains(r.Volumes, "./deploy/rabbitmq/zipq.conf:/etc/rabbitmq/conf.d/90-zipq.conf:ro") ||
		!strings.Contains(string(conf), "\ndefault_queue_type = quorum\n") {
		t.Errorf("rabbitmq must load deploy/rabbitmq/zipq.conf with default_queue_type = quorum: %+v %v", r, err)
	}
	if !slices.Contains(r.Volumes, "rabbitmq-data:/var/lib/rabbitmq") || r.Image < "rabbitmq:3.13.3" {
		t.Errorf("rabbitmq needs a data volume and 3.13.3+: %+v", r)
	}
	// The cluster profile: three nodes with the names cluster.conf lists,
	// each with its own data volume, and zipq processes given all three.
	cluster, err := os.ReadFile("../../deploy/rabbitmq/cluster.conf")
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		n := fmt.Sprintf("rabbitmq-%d", i)
		svc := f.Services[n]
		if !slices.Contains(svc.Profiles, "cluster") || svc.Hostname != n ||
			!strings.Contains(string(cluster), fmt.Sprintf("classic_config.nodes.%d = rabbit@%s\n", i, n)) ||
			!slices.Contains(svc.Volumes, n+"-data:/var/lib/rabbitmq") ||
			!slices.Contains(svc.Volumes, "./deploy/rabbitmq/cluster.conf:/etc/rabbitmq/conf.d/90-zipq.conf:ro") {
			t.Errorf("cluster node %s: %+v", n, svc)
		}
	}
	if !strings.Contains(string(cluster), "\ndefault_queue_type = quorum\n") {
		t.Error("cluster.conf must make the span queue a quorum queue")
	}
	for _, n := range []string{"collector-cluster", "query-cluster"} {
		a := f.Services[n].Environment["RABBIT_ADDRESSES"]
		if !slices.Contains(f.Services[n].Profiles, "cluster") || strings.Count(a, "rabbitmq-") != 3 {
			t.Errorf("%s must use the three nodes: %q", n, a)
		}
	}
	if q := f.Services["query"]; !slices.Equal(q.Command, []string{"query"}) {
		t.Errorf("query must run `zipq query`: %+v", q)
	}
	// Tokens and TLS as shipped: every zipq process that listens reads the
	// files init-secrets makes (TestInitSecretsThenServeOnANetwork runs
	// that path), from the volume it writes.
	if s := f.Services["init-secrets"]; len(s.Command) == 0 || s.Command[0] != "init-secrets" || !slices.Contains(s.Volumes, "zipq-secrets:/secrets") {
		t.Errorf("init-secrets must run `zipq init-secrets` into the zipq-secrets volume: %+v", s)
	}
	for _, n := range []string{"collector", "query", "collector-cluster", "query-cluster"} {
		s := f.Services[n]
		e := s.Environment
		if e["ZIPQ_TOKENS_FILE"] != "/secrets/tokens" || e["ZIPQ_TLS_CERT_FILE"] != "/secrets/server.pem" ||
			e["ZIPQ_TLS_KEY_FILE"] != "/secrets/server.key" || !slices.Contains(s.Volumes, "zipq-secrets:/secrets:ro") {
			t.Errorf("%s must serve with the tokens and certificate of init-secrets: %+v", n, s)
		}
	}
}
