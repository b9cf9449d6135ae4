package proxy

// TLS to backends (BackendTLSPolicy, ir.Backend.TLS): the proxy dials the endpoint, sends the
// policy's hostname as SNI, verifies the chain against the policy's CA certificates (or the
// system roots) and the name (the hostname, or one of the subjectAltNames), and presents the
// Gateway's client certificate when the backend asks for one. Requests to such backends go
// through net/http's Transport, one per configuration, never through h1Fast: cleartext
// backends keep the fast path untouched.

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// backendTLS is a backend's compiled TLS origination.
type backendTLS struct {
	policy     string
	serverName string
	// roots verify the chain; nil means the system roots.
	roots *x509.CertPool
	sans  []ir.SubjectAltName
	// key identifies the configuration: connections are pooled per key (a connection made
	// with one SNI and verification must never serve another).
	key string
}

func compileBackendTLS(t *ir.BackendTLS) (*backendTLS, error) {
	out := &backendTLS{policy: t.Policy, serverName: t.ServerName, sans: t.SubjectAltNames}
	if !t.SystemCAs {
		out.roots = x509.NewCertPool()
		if !out.roots.AppendCertsFromPEM(t.CACertPEM) {
			return nil, fmt.Errorf("backend TLS of policy %s: caCertPEM holds no PEM certificate", t.Policy)
		}
	}
	h := sha256.New()
	fmt.Fprintf(h, "%q %q %t %q\n", t.Policy, t.ServerName, t.SystemCAs, t.CACertPEM)
	for _, s := range t.SubjectAltNames {
		fmt.Fprintf(h, "%q %q\n", s.Hostname, s.URI)
	}
	out.key = hex.EncodeToString(h.Sum(nil))
	return out, nil
}

// verify checks the backend's certificate (tls.Config.VerifyConnection, with the standard
// verification off): the chain must lead to the roots, and the leaf must be valid for the
// server name, or carry one of the subjectAltNames when the policy lists any (the hostname
// then only selects the certificate, as the API says).
func (b *backendTLS) verify(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("backend TLS (policy %s): the backend sent no certificate", b.policy)
	}
	leaf := cs.PeerCertificates[0]
	opts := x509.VerifyOptions{Roots: b.roots, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	if len(b.sans) == 0 {
		opts.DNSName = b.serverName
	}
	if _, err := leaf.Verify(opts); err != nil {
		return fmt.Errorf("backend TLS (policy %s): %w", b.policy, err)
	}
	if len(b.sans) == 0 {
		return nil
	}
	for _, san := range b.sans {
		if san.Hostname != "" && leaf.VerifyHostname(san.Hostname) == nil {
			return nil
		}
		if san.URI != "" {
			for _, u := range leaf.URIs {
				if u.String() == san.URI {
					return nil
				}
			}
		}
	}
	return fmt.Errorf("backend TLS (policy %s): the certificate carries none of the subjectAltNames %v (DNS %v, URIs %v)", b.policy, b.sans, leaf.DNSNames, leaf.URIs)
}

// clientCert is the Gateway's backend client certificate (ir.Snapshot.BackendClientCertificate).
type clientCert struct {
	name    string
	certPEM []byte
	keyPEM  []byte
	cert    tls.Certificate
}

func parseClientCert(c *ir.Certificate) (*clientCert, error) {
	if c == nil {
		return nil, nil
	}
	cert, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("backendClientCertificate %s: %w", c.Name, err)
	}
	return &clientCert{name: c.Name, certPEM: c.CertPEM, keyPEM: c.KeyPEM, cert: cert}, nil
}

// same reports whether c was parsed from exactly in (both may be nil).
func (c *clientCert) same(in *ir.Certificate) bool {
	if c == nil || in == nil {
		return c == nil && in == nil
	}
	return c.name == in.Name && string(c.certPEM) == string(in.CertPEM) && string(c.keyPEM) == string(in.KeyPEM)
}

// tlsUpstreams are the Transports to TLS backends, created on first use, one per backend
// configuration, client certificate and protocol. A configuration change (a rotated CA, a new
// SNI, another client certificate) makes a new key; prune drops the Transports no request has
// used for a while, so that a long-lived proxy does not keep one per configuration it ever had.
type tlsUpstreams struct {
	base func() *http.Transport
	// cert is the client certificate of the snapshot in force (shared by the proxy's and
	// the mirror's upstreams); nil: none.
	cert *atomic.Pointer[clientCert]
	m    sync.Map // tlsKey -> *tlsTransport
	now  func() time.Time
}

type tlsTransport struct {
	t    *http.Transport
	used atomic.Int64 // when a request last took it (Unix ns)
}

// tlsUnusedAfter is how long a TLS Transport no request took is kept: past the Transports'
// IdleConnTimeout (90 s), so its idle connections have closed on their own by then.
const tlsUnusedAfter = 3 * time.Minute

func (u *tlsUpstreams) clock() time.Time {
	if u.now != nil {
		return u.now()
	}
	return time.Now()
}

// prune closes and forgets the Transports no request took for unused; it runs when a
// configuration is applied, the only time new keys appear. A request still running on one
// keeps it until it ends; its connection then idles out (IdleConnTimeout).
func (u *tlsUpstreams) prune(unused time.Duration) (dropped int) {
	cutoff := u.clock().Add(-unused).UnixNano()
	u.m.Range(func(k, v any) bool {
		if e := v.(*tlsTransport); e.used.Load() < cutoff && u.m.CompareAndDelete(k, e) {
			e.t.CloseIdleConnections()
			dropped++
		}
		return true
	})
	return dropped
}

type tlsKey struct {
	config string
	cert   *clientCert
	h2     bool
}

func (u *tlsUpstreams) transport(b *backendTLS, h2 bool) *http.Transport {
	var cert *clientCert
	if u.cert != nil {
		cert = u.cert.Load()
	}
	k := tlsKey{config: b.key, cert: cert, h2: h2}
	now := u.clock().UnixNano()
	if v, ok := u.m.Load(k); ok {
		e := v.(*tlsTransport)
		e.used.Store(now)
		return e.t
	}
	t := u.base()
	t.TLSClientConfig = &tls.Config{
		ServerName: b.serverName,
		// Verification is VerifyConnection's: the chain against the policy's roots, then the
		// hostname or the subjectAltNames.
		InsecureSkipVerify: true,
		VerifyConnection:   b.verify,
		MinVersion:         tls.VersionTLS12,
	}
	if cert != nil {
		// Always present it when asked, even if the backend's list of acceptable CAs does not
		// name its issuer: the backend decides.
		t.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert.cert, nil }
	}
	t.Protocols = new(http.Protocols)
	if h2 {
		t.Protocols.SetHTTP2(true)
		t.HTTP2 = &http.HTTP2Config{PingTimeout: 15 * time.Second, SendPingTimeout: 30 * time.Second}
	} else {
		t.Protocols.SetHTTP1(true)
	}
	e := &tlsTransport{t: t}
	e.used.Store(now)
	if actual, loaded := u.m.LoadOrStore(k, e); loaded {
		e = actual.(*tlsTransport) // another request made it first
		e.used.Store(now)
	}
	return e.t
}

func (u *tlsUpstreams) closeIdle() {
	u.m.Range(func(_, v any) bool {
		v.(*tlsTransport).t.CloseIdleConnections()
		return true
	})
}

// roundTripTLS sends r over TLS to f's backend: HTTP/2 for h2c-protocol backends (gRPC),
// else HTTP/1.1 with the response head timeout of cleartext HTTP/1.
func (u *upstreams) roundTripTLS(r *http.Request, f *forward) (*http.Response, error) {
	t := u.tls.transport(f.tls, f.h2c)
	if f.h2c {
		return t.RoundTrip(r)
	}
	return u.withHeaderTimeout(t, r)
}
