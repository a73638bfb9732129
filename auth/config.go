// Package auth decides who may call zipq and what they may do: bearer
// tokens with scopes (read, write, admin), each optionally bound to one
// tenant, from a file of slow hashes or from the environment. It checks a
// request's credentials (HTTP and gRPC alike) and nothing else: which route
// needs which scope is the router's business.
package auth

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// Modes of ZIPQ_AUTH.
const (
	// ModeAuto enforces tokens when read or write tokens are configured;
	// with none, zipq serves openly but only on loopback addresses.
	ModeAuto = "auto"
	// ModeTokens enforces tokens (and refuses to start without any).
	ModeTokens = "tokens"
	// ModeNone serves reads and writes to anyone, on any address: the
	// operator's explicit choice (a proxy in front authenticates). Admin
	// actions still need an admin token.
	ModeNone = "none"
)

// Config is where tokens come from; DefaultConfig is its one source of
// defaults.
type Config struct {
	Mode string
	// TokensFile holds one token per line as a bcrypt hash with its name,
	// scopes, tenant and expiry (see ParseTokens); reloaded on SIGHUP.
	TokensFile string
	// Tokens from the environment, compared in constant time. The admin
	// token has every scope.
	ReadToken, WriteToken, AdminToken string
	// Tenants are the tenants served besides DefaultTenant (those of
	// ZIPQ_TENANTS_FILE): a request for any other (named by X-Scope-OrgID
	// or bound to its token) is refused, never answered with another
	// tenant's data or stored where no collector reads it.
	Tenants []string
	// FailureBurst failed attempts an address may make at once, after
	// which it may make FailureBurst more per minute; beyond that its
	// requests are 429 before any token is checked.
	FailureBurst int
}

// DefaultConfig: auto mode, ten failures a minute per address.
func DefaultConfig() Config { return Config{Mode: ModeAuto, FailureBurst: 10} }

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	switch c.Mode {
	case ModeAuto, ModeNone:
	case ModeTokens:
		if !c.hasTokens() {
			errs = append(errs, errors.New("ZIPQ_AUTH=tokens but no tokens are configured: set ZIPQ_TOKENS_FILE (lines made with `zipq token`) or ZIPQ_READ_TOKEN / ZIPQ_WRITE_TOKEN"))
		}
	default:
		errs = append(errs, fmt.Errorf("auth mode %q: want auto, tokens or none", c.Mode))
	}
	if c.FailureBurst <= 0 {
		errs = append(errs, fmt.Errorf("auth failure burst %d: want a positive number", c.FailureBurst))
	}
	for name, tok := range map[string]string{"ZIPQ_READ_TOKEN": c.ReadToken, "ZIPQ_WRITE_TOKEN": c.WriteToken, "ZIPQ_ADMIN_TOKEN": c.AdminToken} {
		if tok == "" {
			continue
		}
		if err := checkTokenText(tok); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		} else if len(tok) < minTokenLen {
			errs = append(errs, fmt.Errorf("%s is %d characters: want at least %d (zipq token makes one)", name, len(tok), minTokenLen))
		}
	}
	return errors.Join(errs...)
}

// minTokenLen keeps environment tokens out of guessing range (and the
// failure limit keeps guessing slow).
const minTokenLen = 16

func (c Config) hasTokens() bool {
	return c.TokensFile != "" || c.ReadToken != "" || c.WriteToken != ""
}

// Enforcing reports whether reads and writes need a token: in tokens mode,
// and in auto mode once read or write tokens exist. An admin token alone
// keeps the meaning it had before scopes (admin actions only).
func (c Config) Enforcing() bool {
	return c.Mode == ModeTokens || (c.Mode == ModeAuto && c.hasTokens())
}

// CheckExposure refuses to serve openly beyond this machine: in auto mode
// with no tokens, every listen address must be a loopback one.
func (c Config) CheckExposure(addrs ...string) error {
	if c.Enforcing() || c.Mode == ModeNone {
		return nil
	}
	for _, a := range addrs {
		if !Loopback(a) {
			return fmt.Errorf("zipq would listen on %s, which is not a loopback address, with no tokens configured: "+
				"anyone who reaches it could read every trace and write spans. Configure tokens (ZIPQ_TOKENS_FILE with lines "+
				"made by `zipq token`, or ZIPQ_READ_TOKEN and ZIPQ_WRITE_TOKEN), or set ZIPQ_AUTH=none to serve without them "+
				"(behind a proxy that authenticates). README: \"Running zipq on a network\"", a)
		}
	}
	return nil
}

// Loopback reports whether a listen address (host:port) accepts only this
// machine's connections. An empty host listens on every interface.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Retry is how long a limited address waits for its next attempt.
func (c Config) refill() time.Duration { return time.Minute / time.Duration(c.FailureBurst) }
