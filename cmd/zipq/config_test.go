package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/zipq/zipq/broker"
	"github.com/zipq/zipq/internal/testenv"
)

// TestRabbitAddressesAreSplit: RABBIT_ADDRESSES is comma-separated
// host:port, spaces around commas and empty entries ignored.
func TestRabbitAddressesAreSplit(t *testing.T) {
	t.Setenv("RABBIT_ADDRESSES", " 10.0.0.1:5672, ,h2:5673 ")
	bc := broker.DefaultConfig()
	s := newSettings("test")
	bindRabbit(s, &bc)
	if err := s.parse(nil); err != nil {
		t.Fatal(err)
	}
	if got := bc.Addresses; len(got) != 2 || got[0] != "10.0.0.1:5672" || got[1] != "h2:5673" {
		t.Fatalf("split: %q", got)
	}
}

// TestREADMEConfigurationTableIsCurrent: the README's configuration table
// is exactly what `zipq config` prints, so every setting is documented
// with its real default.
func TestREADMEConfigurationTableIsCurrent(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(binary, "config").Output()
	testenv.Must(t, err)
	readme, err := os.ReadFile("../../README.md")
	testenv.Must(t, err)
	start := strings.Index(string(readme), "| flag | environment | default | meaning |")
	if start < 0 {
		t.Fatal("README has no configuration table")
	}
	table, _, _ := strings.Cut(string(readme[start:]), "\n\n")
	if table != strings.TrimRight(string(out), "\n") {
		t.Fatal("README's configuration table differs from `zipq config`: paste its output into README.md")
	}
}
