package main

import (
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
			Image   string
			Command []string
			Volumes []string
			Deploy  struct{ Replicas int }
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
	if q := f.Services["query"]; !slices.Equal(q.Command, []string{"query"}) {
		t.Errorf("query must run `zipq query`: %+v", q)
	}
}
