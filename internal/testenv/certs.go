package testenv

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zipq/zipq/internal/certs"
)

// PKI is a certificate authority made for one test, with a server
// certificate for 127.0.0.1, ::1 and localhost and a client certificate,
// as PEM files in the test's temporary directory.
type PKI struct {
	CA                    string // the CA certificate
	ServerCert, ServerKey string
	ClientCert, ClientKey string
	dir                   string
	ca                    *certs.Authority
}

// NewPKI makes a CA and a server and a client certificate signed by it.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	ca, err := certs.NewAuthority("zipq test CA", 24*time.Hour)
	Must(t, err)
	p := &PKI{dir: t.TempDir(), ca: ca}
	p.CA = p.write(t, "ca.pem", ca.PEM)
	p.ServerCert, p.ServerKey = p.Issue(t, "server", "localhost", x509.ExtKeyUsageServerAuth)
	p.ClientCert, p.ClientKey = p.Issue(t, "client", "zipq", x509.ExtKeyUsageClientAuth)
	return p
}

// Issue signs a new certificate named name for cn (and 127.0.0.1, ::1 and
// localhost) and writes it and its key; it returns their paths. Issuing
// again under the same name replaces the files (a renewal).
func (p *PKI) Issue(t testing.TB, name, cn string, usage x509.ExtKeyUsage) (cert, key string) {
	t.Helper()
	c, k, err := p.ca.Issue(cn, []string{"localhost", cn, "127.0.0.1", "::1"}, usage == x509.ExtKeyUsageClientAuth, 24*time.Hour)
	Must(t, err)
	return p.write(t, name+".pem", c), p.write(t, name+".key", k)
}

func (p *PKI) write(t testing.TB, name string, b []byte) string {
	path := filepath.Join(p.dir, name)
	tmp := path + ".tmp"
	Must(t, os.WriteFile(tmp, b, 0o600))
	Must(t, os.Rename(tmp, path)) // whole files only: a reader never sees half of one
	return path
}
