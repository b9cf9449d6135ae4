package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// testPKI is a CA that issues server and client certificates, as the conformance suite's
// tls-checks-ca-certificate does.
type testPKI struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func randomSerial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func newTestPKI(t testing.TB, name string) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: randomSerial(t), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testPKI{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM certificate and key for the names (DNS names, or URIs when they parse
// with a scheme) with the given extended key usage.
func (ca *testPKI) issue(t testing.TB, usage x509.ExtKeyUsage, names ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: randomSerial(t), Subject: pkix.Name{CommonName: "leaf"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	for _, n := range names {
		if u, err := url.Parse(n); err == nil && u.Scheme != "" {
			tmpl.URIs = append(tmpl.URIs, u)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// tlsEcho is what the TLS test backend answers: the handshake as it saw it.
type tlsEcho struct {
	SNI        string `json:"sni"`
	Proto      string `json:"proto"`
	Path       string `json:"path"`
	ClientCert string `json:"clientCert"` // the client certificate's PEM, "" without one
}

// startPolicyBackend serves HTTPS (h2 and HTTP/1.1) on loopback with a certificate from ca for
// names. With clientCA, it demands a client certificate issued by it.
func startPolicyBackend(t testing.TB, ca *testPKI, clientCA *testPKI, names ...string) ir.Endpoint {
	t.Helper()
	certPEM, keyPEM := ca.issue(t, x509.ExtKeyUsageServerAuth, names...)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	if clientCA != nil {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = x509.NewCertPool()
		cfg.ClientCAs.AddCert(clientCA.cert)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := tlsEcho{SNI: r.TLS.ServerName, Proto: r.Proto, Path: r.URL.Path}
		if len(r.TLS.PeerCertificates) > 0 {
			e.ClientCert = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.TLS.PeerCertificates[0].Raw}))
		}
		json.NewEncoder(w).Encode(e)
	}), TLSConfig: cfg, ErrorLog: log.New(io.Discard, "", 0)} // refused handshakes are the point
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return ir.Endpoint{Address: "127.0.0.1", Port: int32(ln.Addr().(*net.TCPAddr).Port)}
}

// TestBackendTLS sends requests through the proxy to real TLS backends under the policies of
// the upstream BackendTLSPolicy and BackendTLSPolicySANValidation tests: the right CA and
// name pass, a wrong CA, a wrong hostname or no matching subjectAltName get a 502, the
// hostname is the SNI.
func TestBackendTLS(t *testing.T) {
	t.Parallel()
	ca, otherCA := newTestPKI(t, "ca"), newTestPKI(t, "other-ca")
	ep := startPolicyBackend(t, ca, nil, "abc.example.com", "spiffe://abc.example.com/test-identity", "other.example.com")
	tlsFor := func(host string, caPEM []byte, sans ...ir.SubjectAltName) *ir.BackendTLS {
		return &ir.BackendTLS{Policy: "test/policy", ServerName: host, CACertPEM: caPEM, SubjectAltNames: sans}
	}
	dns := func(h string) ir.SubjectAltName { return ir.SubjectAltName{Hostname: h} }
	uri := func(u string) ir.SubjectAltName { return ir.SubjectAltName{URI: u} }
	tests := []struct {
		name string
		tls  *ir.BackendTLS
		h2   bool
		code int
		sni  string
	}{
		{"right CA and hostname", tlsFor("abc.example.com", ca.pem), false, 200, "abc.example.com"},
		{"other hostname on the certificate is the SNI", tlsFor("other.example.com", ca.pem), false, 200, "other.example.com"},
		{"wrong CA", tlsFor("abc.example.com", otherCA.pem), false, 502, ""},
		{"both CAs in the bundle", tlsFor("abc.example.com", append(append([]byte{}, otherCA.pem...), ca.pem...)), false, 200, "abc.example.com"},
		{"hostname not on the certificate", tlsFor("mismatch.example.com", ca.pem), false, 502, ""},
		{"system roots do not hold a private CA", &ir.BackendTLS{Policy: "test/system", ServerName: "abc.example.com", SystemCAs: true}, false, 502, ""},
		{"SAN hostname matches", tlsFor("abc.example.com", ca.pem, dns("abc.example.com")), false, 200, "abc.example.com"},
		{"SAN hostname mismatch", tlsFor("abc.example.com", ca.pem, dns("dce.example.com")), false, 502, ""},
		{"SAN decides, not the hostname", tlsFor("mismatch.example.com", ca.pem, dns("other.example.com")), false, 200, "mismatch.example.com"},
		{"SAN URI matches", tlsFor("abc.example.com", ca.pem, uri("spiffe://abc.example.com/test-identity")), false, 200, "abc.example.com"},
		{"SAN URI mismatch", tlsFor("abc.example.com", ca.pem, uri("spiffe://def.example.com/test-identity")), false, 502, ""},
		{"one of several SANs", tlsFor("abc.example.com", ca.pem, uri("spiffe://abc.example.com/test-identity"), dns("abc.example.com")), false, 200, "abc.example.com"},
		{"none of several SANs", tlsFor("abc.example.com", ca.pem, uri("spiffe://def.example.com/test-identity"), dns("def.example.com")), false, 502, ""},
		{"h2 over TLS for an h2c-protocol backend", tlsFor("abc.example.com", ca.pem), true, 200, "abc.example.com"},
	}
	port := freePort(t)
	var rules []ir.HTTPRule
	for i, tc := range tests {
		b := ir.Backend{Name: "test/tls-" + strconv.Itoa(i), Weight: 1, Endpoints: []ir.Endpoint{ep}, TLS: tc.tls}
		if tc.h2 {
			b.Protocol = ir.BackendH2C
		}
		rules = append(rules, ir.HTTPRule{Index: i, Matches: []ir.HTTPMatch{{Path: &ir.PathMatch{Type: ir.MatchExact, Value: "/" + strconv.Itoa(i)}}},
			Backends: []ir.Backend{b}})
	}
	startProxy(t, Options{}, snapshot(1, ir.Listener{Name: "http", Port: port, Protocol: ir.ProtocolHTTP,
		HTTPRoutes: []ir.HTTPRoute{{RouteMeta: ir.RouteMeta{Namespace: "test", Name: "r"}, Rules: rules}}}))
	c := h1Client()
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, body := getTLSEcho(t, c, proxyURL(port, "/"+strconv.Itoa(i)))
			if res.StatusCode != tc.code {
				t.Fatalf("status: got %d; want %d", res.StatusCode, tc.code)
			}
			if tc.code != 200 {
				return
			}
			if body.SNI != tc.sni {
				t.Errorf("SNI the backend saw: got %q; want %q", body.SNI, tc.sni)
			}
			if want := map[bool]string{false: "HTTP/1.1", true: "HTTP/2.0"}[tc.h2]; body.Proto != want {
				t.Errorf("protocol to the backend: got %s; want %s", body.Proto, want)
			}
			if body.ClientCert != "" {
				t.Errorf("client certificate presented without one configured")
			}
		})
	}
}

// TestBackendTLSClientCertificate: the Gateway's backend client certificate is presented to a
// backend that demands one (GatewayBackendClientCertificate); without it the handshake fails;
// a new snapshot with another certificate replaces it on new connections.
func TestBackendTLSClientCertificate(t *testing.T) {
	t.Parallel()
	ca := newTestPKI(t, "ca")
	ep := startPolicyBackend(t, ca, ca, "abc.example.com")
	port := freePort(t)
	snap := func(v int64, cert *ir.Certificate) *ir.Snapshot {
		s := snapshot(v, ir.Listener{Name: "http", Port: port, Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{{
			RouteMeta: ir.RouteMeta{Namespace: "test", Name: "r"},
			Rules: []ir.HTTPRule{{Backends: []ir.Backend{{Name: "test/tls", Weight: 1, Endpoints: []ir.Endpoint{ep},
				TLS: &ir.BackendTLS{Policy: "test/p", ServerName: "abc.example.com", CACertPEM: ca.pem}}}}},
		}}})
		s.BackendClientCertificate = cert
		return s
	}
	p := startProxy(t, Options{}, snap(1, nil))
	c := h1Client()
	if res, _ := getTLSEcho(t, c, proxyURL(port, "/")); res.StatusCode != 502 {
		t.Fatalf("without a client certificate: got %d; want 502 (the backend demands one)", res.StatusCode)
	}
	for v, name := range []string{"infra/client-1", "infra/client-2"} {
		certPEM, keyPEM := ca.issue(t, x509.ExtKeyUsageClientAuth)
		if err := p.Apply(snap(int64(v+2), &ir.Certificate{Name: name, CertPEM: certPEM, KeyPEM: keyPEM})); err != nil {
			t.Fatal(err)
		}
		res, body := getTLSEcho(t, c, proxyURL(port, "/"))
		if res.StatusCode != 200 {
			t.Fatalf("%s: got %d; want 200", name, res.StatusCode)
		}
		if body.ClientCert != string(certPEM) {
			t.Fatalf("%s: the backend saw client certificate %q; want the configured one", name, body.ClientCert)
		}
	}
	bad := snap(9, &ir.Certificate{Name: "infra/broken", CertPEM: []byte("x"), KeyPEM: []byte("y")})
	if err := p.Apply(bad); err == nil || !contains(err.Error(), `backendClientCertificate "infra/broken"`) {
		t.Fatalf("Apply with a broken client certificate: got %v; want an error naming it", err)
	}
}

func getTLSEcho(t *testing.T, c *http.Client, u string) (*http.Response, tlsEcho) {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer res.Body.Close()
	var e tlsEcho
	if res.StatusCode == 200 {
		if err := json.NewDecoder(res.Body).Decode(&e); err != nil {
			t.Fatalf("GET %s: decode the backend's answer: %v", u, err)
		}
	}
	return res, e
}

// A Transport per backend TLS configuration is made on first use; one no request took for
// tlsUnusedAfter is dropped when a configuration is applied, so a proxy whose policies change
// (rotated CAs, new SNIs) keeps only what it uses.
func TestTLSUpstreamsPrune(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	made := 0
	u := &tlsUpstreams{base: func() *http.Transport { made++; return &http.Transport{} }, now: func() time.Time { return now }}
	count := func() (n int) {
		u.m.Range(func(any, any) bool { n++; return true })
		return n
	}
	oldCA, err := compileBackendTLS(&ir.BackendTLS{Policy: "default/p", ServerName: "a.example", SystemCAs: true})
	if err != nil {
		t.Fatal(err)
	}
	newCA, err := compileBackendTLS(&ir.BackendTLS{Policy: "default/p", ServerName: "b.example", SystemCAs: true})
	if err != nil {
		t.Fatal(err)
	}
	first := u.transport(oldCA, false)
	if u.transport(oldCA, false) != first || made != 1 {
		t.Fatalf("a second request with the same configuration made a new Transport (%d made)", made)
	}
	now = now.Add(time.Minute)
	u.transport(newCA, false) // the policy changed: a new key
	u.transport(oldCA, true)  // the old configuration, over HTTP/2, still in use
	if dropped := u.prune(tlsUnusedAfter); dropped != 0 || count() != 3 {
		t.Fatalf("prune one minute on dropped %d, kept %d; want 0 dropped, 3 kept", dropped, count())
	}
	now = now.Add(tlsUnusedAfter - 30*time.Second)
	u.transport(newCA, false)
	now = now.Add(time.Minute)
	// oldCA was last used 4m30s ago over HTTP/1 and 3m30s ago over HTTP/2, newCA 1m ago.
	if dropped := u.prune(tlsUnusedAfter); dropped != 2 || count() != 1 {
		t.Fatalf("prune dropped %d, kept %d; want the 2 unused Transports dropped, 1 kept", dropped, count())
	}
	if u.transport(oldCA, false) == first {
		t.Error("a dropped configuration's Transport was handed out again")
	}
}
