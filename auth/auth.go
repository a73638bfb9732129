package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/zipq/zipq/internal/tenant"
)

// Principal is who a request is: the token's name and scopes, and the
// tenant it acts for.
type Principal struct {
	Name   string
	Scopes Scope
	Tenant string
}

// The ways a credential fails; each is a 401 (or UNAUTHENTICATED).
var (
	ErrMissing = errors.New("no token: send Authorization: Bearer <token>")
	ErrInvalid = errors.New("invalid token")
	ErrExpired = errors.New("token expired")
)

// LimitedError is an address that failed too often: it may try again
// after RetryAfter (429, RESOURCE_EXHAUSTED).
type LimitedError struct{ RetryAfter time.Duration }

func (e *LimitedError) Error() string {
	return fmt.Sprintf("too many failed attempts from this address: retry after %s", e.RetryAfter.Round(time.Second))
}

// ForbiddenError is a valid token that may not do this (403,
// PERMISSION_DENIED).
type ForbiddenError struct {
	Reason string
	Tenant bool // the tenant, not the scope, is wrong
}

func (e *ForbiddenError) Error() string { return e.Reason }

// Authenticator checks credentials against the configured tokens. Its
// tokens are swapped whole on Reload; checks in progress finish with the
// set they started with.
type Authenticator struct {
	cfg     Config
	log     *slog.Logger
	state   atomic.Pointer[state]
	limiter *limiter
	// bcrypt is slow by design (tens of ms): at most two run at once, so a
	// flood of wrong tokens cannot take every core.
	slow     chan struct{}
	failures *prometheus.CounterVec
	tokens   prometheus.Gauge
	reloads  *prometheus.CounterVec
}

// state is one loaded token set and what it has verified.
type state struct {
	hashed []Token
	env    []envToken
	mu     sync.RWMutex
	// verified maps SHA-256 of a token that passed bcrypt to its entry, so
	// bcrypt runs once per token and set, not per request. The map holds
	// only tokens that matched, so it is as small as the token set.
	verified map[[sha256.Size]byte]*Token
}

// size is how many tokens s holds.
func (s *state) size() int { return len(s.hashed) + len(s.env) }

type envToken struct {
	digest [sha256.Size]byte
	tok    Token
}

// New loads cfg's tokens. reg may be nil (tests).
func New(cfg Config, reg prometheus.Registerer, log *slog.Logger) (*Authenticator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Authenticator{cfg: cfg, log: log, limiter: newLimiter(cfg.FailureBurst, cfg.refill()), slow: make(chan struct{}, 2),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zipq_auth_failures_total",
			Help: "Requests refused by access control, by reason (missing, invalid, expired, scope, tenant, limited)."}, []string{"reason"}),
		tokens: prometheus.NewGauge(prometheus.GaugeOpts{Name: "zipq_auth_tokens", Help: "Tokens loaded (file and environment)."}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zipq_auth_reloads_total",
			Help: "Reloads of the tokens file, by result (ok, error: the previous tokens stay)."}, []string{"result"}),
	}
	for _, r := range []string{"missing", "invalid", "expired", "scope", "tenant", "limited"} {
		a.failures.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(a.failures, a.tokens, a.reloads)
	}
	s, err := a.load()
	if err != nil {
		return nil, err
	}
	a.state.Store(s)
	a.tokens.Set(float64(s.size()))
	return a, nil
}

// Enforcing reports whether reads and writes need a token.
func (a *Authenticator) Enforcing() bool { return a.cfg.Enforcing() }

// MultiTenant reports whether tenants besides the default one are served.
func (a *Authenticator) MultiTenant() bool { return len(a.cfg.Tenants) > 0 }

// HasAdmin reports whether any token may administer (admin routes are
// mounted only then).
func (a *Authenticator) HasAdmin() bool {
	s := a.state.Load()
	for _, t := range s.hashed {
		if t.Scopes&Admin != 0 {
			return true
		}
	}
	for _, t := range s.env {
		if t.tok.Scopes&Admin != 0 {
			return true
		}
	}
	return false
}

func (a *Authenticator) load() (*state, error) {
	s := &state{verified: map[[sha256.Size]byte]*Token{}}
	for _, e := range []struct {
		tok    string
		name   string
		scopes Scope
	}{{a.cfg.ReadToken, "env-read", Read}, {a.cfg.WriteToken, "env-write", Write}, {a.cfg.AdminToken, "env-admin", Read | Write | Admin}} {
		if e.tok != "" {
			s.env = append(s.env, envToken{digest: sha256.Sum256([]byte(e.tok)), tok: Token{Name: e.name, Scopes: e.scopes}})
		}
	}
	if a.cfg.TokensFile == "" {
		return s, nil
	}
	f, err := os.Open(a.cfg.TokensFile)
	if err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	defer f.Close()
	if s.hashed, err = ParseTokens(f); err != nil {
		return nil, fmt.Errorf("tokens file %s: %w", a.cfg.TokensFile, err)
	}
	return s, nil
}

// Reload re-reads the tokens file; on error the tokens in use stay. Tokens
// already verified are verified again (a removed token stops working at
// once; a changed hash takes effect).
func (a *Authenticator) Reload() error {
	s, err := a.load()
	if err != nil {
		a.reloads.WithLabelValues("error").Inc()
		a.log.Error("tokens not reloaded; the previous tokens stay", slog.Any("err", err))
		return err
	}
	a.state.Store(s)
	a.tokens.Set(float64(s.size()))
	a.reloads.WithLabelValues("ok").Inc()
	a.log.Info("tokens reloaded", slog.Int("tokens", s.size()))
	return nil
}

// Authenticate checks the credential of a request from addr (its client
// IP) with Authorization value authz and X-Scope-OrgID value named, for
// scope need. The error is ErrMissing, ErrInvalid, ErrExpired, a
// *LimitedError or a *ForbiddenError, or a bad tenant (a 400).
func (a *Authenticator) Authenticate(ctx context.Context, addr, authz, named string, need Scope) (Principal, error) {
	p, err := a.authenticate(ctx, addr, authz, named, need)
	if err != nil {
		a.failures.WithLabelValues(reason(err)).Inc()
	}
	return p, err
}

func (a *Authenticator) authenticate(ctx context.Context, addr, authz, named string, need Scope) (Principal, error) {
	if named != "" {
		var err error
		if named, err = tenant.Parse(named); err != nil {
			return Principal{}, &BadTenantError{err}
		}
	}
	secret, ok, err := Credential(authz)
	if !ok {
		return Principal{}, ErrMissing
	}
	if wait := a.limiter.wait(addr); wait > 0 {
		return Principal{}, &LimitedError{RetryAfter: wait}
	}
	var tok *Token
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrInvalid, err)
	} else {
		tok, err = a.lookup(ctx, secret)
	}
	if err != nil {
		if errors.Is(err, ErrInvalid) {
			a.limiter.fail(addr)
		}
		return Principal{}, err
	}
	if !tok.Expires.IsZero() && !time.Now().Before(tok.Expires) {
		a.limiter.fail(addr)
		return Principal{}, ErrExpired
	}
	p := Principal{Name: tok.Name, Scopes: tok.Scopes, Tenant: tok.Tenant}
	switch {
	case p.Tenant == "" && named != "":
		p.Tenant = named
	case p.Tenant == "":
		p.Tenant = DefaultTenant
	case named != "" && named != p.Tenant:
		return Principal{}, &ForbiddenError{Reason: fmt.Sprintf("token %q acts for another tenant than X-Scope-OrgID %q", tok.Name, named), Tenant: true}
	}
	if p.Scopes&need != need {
		return Principal{}, &ForbiddenError{Reason: fmt.Sprintf("token %q has scopes %q; this needs %q", tok.Name, p.Scopes, need)}
	}
	return a.served(p)
}

// served refuses a principal of a tenant this zipq does not serve.
func (a *Authenticator) served(p Principal) (Principal, error) {
	switch {
	case p.Tenant == DefaultTenant || slices.Contains(a.cfg.Tenants, p.Tenant):
		return p, nil
	case len(a.cfg.Tenants) == 0:
		return Principal{}, &ForbiddenError{Tenant: true, Reason: fmt.Sprintf("tenant %q: this zipq keeps one tenant's data (%s); "+
			"send no X-Scope-OrgID, or list tenants in ZIPQ_TENANTS_FILE", p.Tenant, DefaultTenant)}
	}
	return Principal{}, &ForbiddenError{Tenant: true, Reason: fmt.Sprintf("tenant %q is not one of this zipq's tenants (ZIPQ_TENANTS_FILE)", p.Tenant)}
}

// BadTenantError is an X-Scope-OrgID that no tenant can have (400).
type BadTenantError struct{ err error }

func (e *BadTenantError) Error() string { return "X-Scope-OrgID: " + e.err.Error() }

// lookup finds the token secret names: environment tokens by digest in
// constant time, then tokens already verified, then bcrypt against each
// file token. A verified token is found by its SHA-256 in a map; the
// timing of that reveals nothing usable about the secret.
func (a *Authenticator) lookup(ctx context.Context, secret string) (*Token, error) {
	s := a.state.Load()
	d := sha256.Sum256([]byte(secret))
	var found *Token
	for i := range s.env {
		if subtle.ConstantTimeCompare(d[:], s.env[i].digest[:]) == 1 {
			found = &s.env[i].tok
		}
	}
	if found != nil {
		return found, nil
	}
	s.mu.RLock()
	found = s.verified[d]
	s.mu.RUnlock()
	if found != nil || len(s.hashed) == 0 || len(secret) > maxBcrypt {
		if found == nil {
			return nil, ErrInvalid
		}
		return found, nil
	}
	select {
	case a.slow <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-a.slow }()
	for i := range s.hashed {
		if bcrypt.CompareHashAndPassword(s.hashed[i].hash, []byte(secret)) == nil {
			s.mu.Lock()
			s.verified[d] = &s.hashed[i]
			s.mu.Unlock()
			return &s.hashed[i], nil
		}
	}
	return nil, ErrInvalid
}

func reason(err error) string {
	var lim *LimitedError
	var forb *ForbiddenError
	var bad *BadTenantError
	switch {
	case errors.Is(err, ErrMissing):
		return "missing"
	case errors.Is(err, ErrExpired):
		return "expired"
	case errors.As(err, &lim):
		return "limited"
	case errors.As(err, &bad):
		return "tenant"
	case errors.As(err, &forb):
		if forb.Tenant {
			return "tenant"
		}
		return "scope"
	}
	return "invalid"
}

type principalKey struct{}

// WithPrincipal is ctx carrying p, acting for p's tenant (tenant.From).
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return tenant.With(context.WithValue(ctx, principalKey{}, p), p.Tenant)
}

// FromContext is the request's principal; ok is false for a request that
// was not authenticated (access control off for its route).
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
