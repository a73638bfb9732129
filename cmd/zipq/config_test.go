package main

import (
	"testing"

	"github.com/zipq/zipq/broker"
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
