package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// selfSigned returns a PEM certificate and key for dnsNames, and the parsed certificate.
func selfSigned(t testing.TB, dnsNames ...string) (certPEM, keyPEM []byte, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: dnsNames[0]},
		DNSNames:     dnsNames,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), cert
}

func TestHTTPSWithSNI(t *testing.T) {
	t.Parallel()
	v1, v2, v3 := startBackend(t, "v1"), startBackend(t, "v2"), startBackend(t, "v3")
	port := freePort(t)
	pool := x509.NewCertPool()
	listener := func(name, hostname string, b *testBackend, certNames ...string) ir.Listener {
		c, k, parsed := selfSigned(t, certNames...)
		pool.AddCert(parsed)
		return ir.Listener{Name: name, Port: port, Protocol: ir.ProtocolHTTPS, Hostname: hostname,
			TLS:        &ir.TLS{Certificates: []ir.Certificate{{Name: "test/" + name, CertPEM: c, KeyPEM: k}}},
			HTTPRoutes: []ir.HTTPRoute{{RouteMeta: ir.RouteMeta{Namespace: "test", Name: name}, Rules: []ir.HTTPRule{{Backends: []ir.Backend{b.irBackend(1)}}}}}}
	}
	startProxy(t, Options{}, snapshot(1,
		listener("default", "", v1, "default.example", "example.org"),
		listener("second", "second.example", v2, "second.example"),
		listener("wild", "*.wild.example", v3, "*.wild.example"),
	))
	tests := []struct {
		name, sni, host string
		h2              bool
		wantCert        string
		wantCode        int
		wantBackend     string
	}{
		{"catch-all listener", "example.org", "example.org", false, "default.example", 200, "v1"},
		{"specific listener h1", "second.example", "second.example", false, "second.example", 200, "v2"},
		{"specific listener h2", "second.example", "second.example", true, "second.example", 200, "v2"},
		{"wildcard listener", "x.wild.example", "y.wild.example", true, "*.wild.example", 200, "v3"},
		{"misdirected: SNI chose another listener", "second.example", "example.org", true, "second.example", 421, ""},
		{"misdirected: host of a specific listener on the catch-all", "example.org", "second.example", false, "default.example", 421, ""},
		{"no SNI: the catch-all's host", "", "example.org", false, "default.example", 200, "v1"},
		{"misdirected: no SNI, host of a specific listener", "", "second.example", false, "default.example", 421, ""},
		{"misdirected: no SNI, host of a specific listener h2", "", "x.wild.example", true, "default.example", 421, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Without a ServerName, Go sends no SNI to an IP address; it cannot verify the
			// certificate then, which is the client's risk, not the point here.
			tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: tc.sni, RootCAs: pool, InsecureSkipVerify: tc.sni == ""}, Protocols: new(http.Protocols)}
			if tc.h2 {
				tr.Protocols.SetHTTP2(true)
			} else {
				tr.Protocols.SetHTTP1(true)
			}
			defer tr.CloseIdleConnections()
			res, e := do(t, &http.Client{Transport: tr, Timeout: 10 * time.Second}, "GET", "https://127.0.0.1:"+strconv.Itoa(int(port))+"/p", tc.host, nil)
			if got := res.TLS.PeerCertificates[0].Subject.CommonName; got != tc.wantCert {
				t.Errorf("certificate for SNI %s: got %q; want %q", tc.sni, got, tc.wantCert)
			}
			if wantProto := map[bool]int{true: 2, false: 1}[tc.h2]; res.ProtoMajor != wantProto {
				t.Errorf("protocol: got %s; want HTTP/%d", res.Proto, wantProto)
			}
			if res.StatusCode != tc.wantCode || e.Backend != tc.wantBackend {
				t.Errorf("got %d from %q; want %d from %q", res.StatusCode, e.Backend, tc.wantCode, tc.wantBackend)
			}
		})
	}
}
