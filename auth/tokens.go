package auth

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/zipq/zipq/internal/tenant"
)

// Scope is a set of permissions.
type Scope uint8

const (
	// Read: the Zipkin and Tempo APIs, the UI's data, /metrics.
	Read Scope = 1 << iota
	// Write: span ingest over HTTP, OTLP/HTTP and OTLP/gRPC.
	Write
	// Admin: replay, discard, the pipeline page with its parked messages,
	// /health's error detail, profiles.
	Admin
)

var scopeNames = []struct {
	s    Scope
	name string
}{{Read, "read"}, {Write, "write"}, {Admin, "admin"}}

func (s Scope) String() string {
	var parts []string
	for _, n := range scopeNames {
		if s&n.s != 0 {
			parts = append(parts, n.name)
		}
	}
	return strings.Join(parts, ",")
}

// ParseScopes reads a comma-separated list of read, write and admin.
func ParseScopes(v string) (Scope, error) {
	var s Scope
	for part := range strings.SplitSeq(v, ",") {
		found := false
		for _, n := range scopeNames {
			if part == n.name {
				s |= n.s
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("scope %q: want read, write or admin (comma-separated)", part)
		}
	}
	return s, nil
}

// Token is one configured token: its name (for logs and metrics, never
// the secret), what it may do, and its tenant ("" = the one the request
// names, or the default).
type Token struct {
	Name    string
	Scopes  Scope
	Tenant  string
	Expires time.Time // zero: never
	hash    []byte    // bcrypt
}

// maxBcrypt is the longest secret bcrypt reads whole; a longer presented
// token cannot match a hashed one.
const maxBcrypt = 72

// ParseTokens reads a tokens file: one token per line, five fields
// separated by spaces,
//
//	name  scopes  tenant  expires  bcrypt-hash
//	grafana  read  team-a  -  $2a$10$...
//
// where scopes is a comma-separated list of read, write, admin; tenant and
// expires are "-" for none; expires is a date (midnight UTC) or an RFC 3339
// time. Blank lines and lines starting with # are skipped. Errors name the
// line; a file with any bad line is refused whole (a reload keeps the
// tokens it had).
func ParseTokens(r io.Reader) ([]Token, error) {
	var out []Token
	var errs []error
	names := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		t, err := parseTokenLine(line)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", n, err))
			continue
		}
		if prev, dup := names[t.Name]; dup {
			errs = append(errs, fmt.Errorf("line %d: name %q is also on line %d: names must be unique (metrics and logs use them)", n, t.Name, prev))
			continue
		}
		names[t.Name] = n
		out = append(out, t)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

func parseTokenLine(line string) (Token, error) {
	f := strings.Fields(line)
	if len(f) != 5 {
		return Token{}, fmt.Errorf("%d fields: want 5 (name scopes tenant expires bcrypt-hash; - for no tenant or expiry)", len(f))
	}
	t := Token{Name: f[0]}
	var err error
	if t.Scopes, err = ParseScopes(f[1]); err != nil {
		return Token{}, err
	}
	if f[2] != "-" {
		if t.Tenant, err = tenant.Parse(f[2]); err != nil {
			return Token{}, err
		}
	}
	if f[3] != "-" {
		if t.Expires, err = ParseExpiry(f[3]); err != nil {
			return Token{}, err
		}
	}
	if _, err := bcrypt.Cost([]byte(f[4])); err != nil {
		return Token{}, fmt.Errorf("hash of %q: %w (want a bcrypt hash, $2a$ or $2b$; zipq token makes one)", t.Name, err)
	}
	t.hash = []byte(f[4])
	return t, nil
}

// ParseExpiry reads a date (midnight UTC) or an RFC 3339 time.
func ParseExpiry(v string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("expires %q: want a date (2027-06-30) or an RFC 3339 time, or -", v)
	}
	return t, nil
}

// NewToken makes a random token and its tokens-file line (bcrypt at cost),
// bound to tenant bound unless it is empty.
func NewToken(name string, scopes Scope, bound string, expires time.Time, cost int) (secret, line string, err error) {
	if name == "" || strings.ContainsAny(name, " \t\r\n#") {
		return "", "", fmt.Errorf("name %q: want one word", name)
	}
	if bound != "" {
		if _, err := tenant.Parse(bound); err != nil {
			return "", "", err
		}
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	secret = "zq_" + base64.RawURLEncoding.EncodeToString(b)
	hash, err := bcrypt.GenerateFromPassword([]byte(secret), cost)
	if err != nil {
		return "", "", err
	}
	ten, exp := "-", "-"
	if bound != "" {
		ten = bound
	}
	if !expires.IsZero() {
		exp = expires.UTC().Format(time.RFC3339)
	}
	return secret, fmt.Sprintf("%s %s %s %s %s", name, scopes, ten, exp, hash), nil
}

// checkTokenText accepts RFC 6750's b64token characters only, so a token
// survives every header and metadata encoding unchanged.
func checkTokenText(t string) error {
	end := len(strings.TrimRight(t, "="))
	for i := 0; i < end; i++ {
		c := t[i]
		if !alnum(c) && strings.IndexByte("-._~+/", c) < 0 {
			return fmt.Errorf("character %q at %d: tokens are letters, digits and -._~+/ (RFC 6750)", c, i)
		}
	}
	if end == 0 {
		return errors.New("empty token")
	}
	return nil
}

// Credential extracts the token from an Authorization value: "Bearer
// <token>", or Basic with the token as the password (for clients that
// only speak basic auth; the user name is ignored). ok is false when v
// carries no credential at all; err says what is wrong with one that does.
func Credential(v string) (token string, ok bool, err error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", false, nil
	}
	scheme, rest, _ := strings.Cut(v, " ")
	rest = strings.TrimSpace(rest)
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		token = rest
	case strings.EqualFold(scheme, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return "", true, errors.New("basic credentials are not base64")
		}
		_, pass, found := strings.Cut(string(raw), ":")
		if !found {
			return "", true, errors.New("basic credentials have no password (the token)")
		}
		token = pass
	default:
		return "", true, errors.New("want Authorization: Bearer <token>")
	}
	if err := checkTokenText(token); err != nil {
		return "", true, err
	}
	return token, true, nil
}

// DefaultTenant is the tenant of requests that name none.
const DefaultTenant = tenant.Default

func alnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }
