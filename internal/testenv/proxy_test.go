package testenv

import (
	"io"
	"net"
	"testing"
)

func TestMain(m *testing.M) { VerifyNoLeaks(m) }

func echoServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Must(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	return roundTripOn(c)
}

func TestProxyCutsAndRestores(t *testing.T) {
	p := NewProxy(t, echoServer(t))
	Must(t, roundTrip(p.Addr()))
	live, err := net.Dial("tcp", p.Addr())
	Must(t, err)
	defer live.Close()
	Must(t, roundTripOn(live))
	p.Cut()
	if roundTripOn(live) == nil {
		t.Fatal("an open connection survived Cut")
	}
	if roundTrip(p.Addr()) == nil {
		t.Fatal("a new connection got through while cut")
	}
	p.Restore()
	Must(t, roundTrip(p.Addr()))
}

func roundTripOn(c net.Conn) error {
	if _, err := c.Write([]byte("ping")); err != nil {
		return err
	}
	b := make([]byte, 4)
	_, err := io.ReadFull(c, b)
	return err
}
