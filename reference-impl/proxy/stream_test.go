package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// startTLSBackend is a TLS server with a certificate for dnsNames that answers every
// connection with name + ":" + the SNI it saw, then closes.
func startTLSBackend(t *testing.T, name string, dnsNames ...string) (ir.Backend, *x509.CertPool) {
	t.Helper()
	certPEM, keyPEM, cert := selfSigned(t, dnsNames...)
	kp, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{kp}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := c.(*tls.Conn)
				if err := tc.Handshake(); err != nil {
					return
				}
				io.WriteString(tc, name+":"+tc.ConnectionState().ServerName)
			}()
		}
	}()
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return ir.Backend{Name: "test/" + name, Weight: 1, Endpoints: []ir.Endpoint{{Address: "127.0.0.1", Port: int32(ln.Addr().(*net.TCPAddr).Port)}}}, pool
}

// tlsThrough dials the proxy's TLS port with sni, verifying the backend's certificate with
// pool, and returns what the backend wrote.
func tlsThrough(t *testing.T, port int32, sni string, pool *x509.CertPool) (string, error) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", "127.0.0.1:"+strconv.Itoa(int(port)), &tls.Config{ServerName: sni, RootCAs: pool})
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err
}

func TestTLSPassthroughRoutesBySNI(t *testing.T) {
	t.Parallel()
	a, poolA := startTLSBackend(t, "a", "a.example.com")
	w, poolW := startTLSBackend(t, "w", "*.example.com", "x.example.com")
	o, poolO := startTLSBackend(t, "o", "other.test")
	port := freePort(t)
	old := time.Unix(100, 0)
	startProxy(t, Options{}, snapshot(1,
		ir.Listener{Name: "tls-example", Port: port, Protocol: ir.ProtocolTLS, Hostname: "*.example.com", TLSMode: ir.TLSPassthrough, TLSRoutes: []ir.TLSRoute{
			{RouteMeta: ir.RouteMeta{Namespace: "t", Name: "exact", CreationTimestamp: old.Add(time.Hour), Hostnames: []string{"a.example.com"}}, Backends: []ir.Backend{a}},
			{RouteMeta: ir.RouteMeta{Namespace: "t", Name: "wild", CreationTimestamp: old}, Backends: []ir.Backend{w}},
		}},
		ir.Listener{Name: "tls-other", Port: port, Protocol: ir.ProtocolTLS, Hostname: "other.test", TLSRoutes: []ir.TLSRoute{
			{RouteMeta: ir.RouteMeta{Namespace: "t", Name: "other"}, Backends: []ir.Backend{o}},
		}},
	))
	for _, tc := range []struct {
		sni  string
		pool *x509.CertPool
		want string
	}{
		{"a.example.com", poolA, "a:a.example.com"}, // the exact route beats the listener-wide one
		{"x.example.com", poolW, "w:x.example.com"}, // the route without hostnames takes the listener's
		{"other.test", poolO, "o:other.test"},       // another listener on the same port, by its hostname
		{"A.Example.COM", poolA, "a:A.Example.COM"}, // SNI matching is case-insensitive
	} {
		got, err := tlsThrough(t, port, tc.sni, tc.pool)
		if err != nil || got != tc.want {
			t.Errorf("SNI %s: got %q, %v; want %q (the backend's own certificate, end to end)", tc.sni, got, err, tc.want)
		}
	}
	// No route for the name, or no SNI at all: the connection is closed without a handshake.
	for _, sni := range []string{"nowhere.test", ""} {
		cfg := &tls.Config{ServerName: sni, InsecureSkipVerify: true}
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", "127.0.0.1:"+strconv.Itoa(int(port)), cfg)
		if err == nil {
			c.Close()
			t.Errorf("SNI %q: handshake succeeded; want the connection closed", sni)
		}
	}
}

func TestTLSPassthroughWeightsAndNoClientHello(t *testing.T) {
	t.Parallel()
	a, _ := startTLSBackend(t, "a", "s.example.com")
	b, _ := startTLSBackend(t, "b", "s.example.com")
	a.Weight, b.Weight = 3, 1
	port := freePort(t)
	p := startProxy(t, Options{}, snapshot(1, ir.Listener{Name: "tls", Port: port, Protocol: ir.ProtocolTLS, TLSRoutes: []ir.TLSRoute{
		{RouteMeta: ir.RouteMeta{Namespace: "t", Name: "r", Hostnames: []string{"s.example.com"}}, Backends: []ir.Backend{a, b}},
	}}))
	countA := 0
	const n = 120
	for i := 0; i < n; i++ {
		// Skip verification: the two backends have different self-signed certificates.
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", "127.0.0.1:"+strconv.Itoa(int(port)), &tls.Config{ServerName: "s.example.com", InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		got, _ := io.ReadAll(c)
		c.Close()
		if strings.HasPrefix(string(got), "a:") {
			countA++
		}
	}
	// Binomial(120, 0.75): sd 4.7; 6 sd allowed.
	if countA < 90-28 || countA > 90+28 {
		t.Errorf("backend a got %d of %d connections; want about 90", countA, n)
	}
	// A client that sends no ClientHello: counted and closed.
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(int(port)))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _ := c.Read(make([]byte, 10)); n != 0 {
		t.Errorf("a plaintext request got %d bytes back", n)
	}
	c.Close()
	deadline := time.Now().Add(2 * time.Second)
	for p.Metrics().TLS("", "", "no_client_hello") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no no_client_hello count")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTLSTerminateAndMixedOnOnePort(t *testing.T) {
	t.Parallel()
	plain := startTCPBackend(t, "plain")
	pass, passPool := startTLSBackend(t, "pass", "pass.example.com")
	certPEM, keyPEM, gwCert := selfSigned(t, "term.example.com")
	port := freePort(t)
	startProxy(t, Options{}, snapshot(1,
		ir.Listener{Name: "term", Port: port, Protocol: ir.ProtocolTLS, Hostname: "term.example.com", TLSMode: ir.TLSTerminate,
			TLS:       &ir.TLS{Certificates: []ir.Certificate{{Name: "t/cert", CertPEM: certPEM, KeyPEM: keyPEM}}},
			TLSRoutes: []ir.TLSRoute{{RouteMeta: ir.RouteMeta{Namespace: "t", Name: "term"}, Backends: []ir.Backend{plain}}}},
		ir.Listener{Name: "pass", Port: port, Protocol: ir.ProtocolTLS, Hostname: "pass.example.com", TLSMode: ir.TLSPassthrough,
			TLSRoutes: []ir.TLSRoute{{RouteMeta: ir.RouteMeta{Namespace: "t", Name: "pass"}, Backends: []ir.Backend{pass}}}},
	))
	// Terminate: the proxy's certificate, and the backend gets the plaintext (it answers once
	// the client's close_notify, turned into a half-close, reaches it).
	pool := x509.NewCertPool()
	pool.AddCert(gwCert)
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", "127.0.0.1:"+strconv.Itoa(int(port)), &tls.Config{ServerName: "term.example.com", RootCAs: pool})
	if err != nil {
		t.Fatalf("terminate handshake: %v", err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "hello")
	c.CloseWrite()
	got, _ := io.ReadAll(c)
	c.Close()
	if string(got) != "plain:hello" {
		t.Errorf("terminate: got %q; want plain:hello (plaintext at the backend)", got)
	}
	// Passthrough on the same port: the backend's own certificate.
	if got, err := tlsThrough(t, port, "pass.example.com", passPool); err != nil || got != "pass:pass.example.com" {
		t.Errorf("passthrough beside terminate: got %q, %v; want pass:pass.example.com", got, err)
	}
}
