package main

import (
	"os"
	"slices"
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
			Command []string
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
	if q := f.Services["query"]; !slices.Equal(q.Command, []string{"query"}) {
		t.Errorf("query must run `zipq query`: %+v", q)
	}
}
