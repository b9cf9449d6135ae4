package echoit

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/echo"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/grpcecho"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/grpcecho/echopb"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/identity"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/tcpecho"
	"github.com/gatecheck/gatecheck/reference-impl/ir"
	"github.com/gatecheck/gatecheck/reference-impl/proxy"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

func listen(t *testing.T) (net.Listener, ir.Endpoint) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln, ir.Endpoint{Address: "127.0.0.1", Port: int32(ln.Addr().(*net.TCPAddr).Port)}
}

func freePort(t *testing.T) int32 {
	ln, ep := listen(t)
	ln.Close()
	return ep.Port
}

func httpEcho(t *testing.T, name string) ir.Backend {
	ln, ep := listen(t)
	srv, err := echo.NewServer(echo.Options{Identity: identity.Identity{Backend: name}})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return ir.Backend{Name: "echo/" + name, Weight: 1, Endpoints: []ir.Endpoint{ep}}
}

func grpcEcho(t *testing.T, name string) ir.Backend {
	ln, ep := listen(t)
	srv := grpcecho.NewServer(grpcecho.Options{Identity: identity.Identity{Backend: name}})
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return ir.Backend{Name: "grpc/" + name, Weight: 1, Endpoints: []ir.Endpoint{ep}}
}

func tcpEcho(t *testing.T, name string) ir.Backend {
	ln, ep := listen(t)
	srv := tcpecho.NewServer(tcpecho.Options{Identity: identity.Identity{Backend: name}})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return ir.Backend{Name: "tcp/" + name, Weight: 1, Endpoints: []ir.Endpoint{ep}}
}

func selfSigned(t *testing.T, host string) (certPEM, keyPEM []byte, pool *x509.CertPool) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), pool
}

func TestThroughProxyToEchoBackend(t *testing.T) {
	v1, v2 := httpEcho(t, "v1"), httpEcho(t, "v2")
	g1, g2 := grpcEcho(t, "g1"), grpcEcho(t, "g2")
	tc := tcpEcho(t, "t1")
	httpPort, httpsPort, tcpPort := freePort(t), freePort(t), freePort(t)
	certPEM, keyPEM, pool := selfSigned(t, "secure.example")
	httpRoute := ir.HTTPRoute{RouteMeta: ir.RouteMeta{Namespace: "echo", Name: "http"}, Rules: []ir.HTTPRule{
		{Index: 0, Backends: []ir.Backend{v1}},
		{Index: 1, Matches: []ir.HTTPMatch{{Path: &ir.PathMatch{Type: ir.MatchPathPrefix, Value: "/v2"}}}, Backends: []ir.Backend{v2}},
	}}
	snap := &ir.Snapshot{Version: 1, Gateway: ir.NamespacedName{Namespace: "echo", Name: "gw"}, Listeners: []ir.Listener{
		{Name: "http", Port: httpPort, Protocol: ir.ProtocolHTTP, HTTPRoutes: []ir.HTTPRoute{httpRoute},
			GRPCRoutes: []ir.GRPCRoute{{RouteMeta: ir.RouteMeta{Namespace: "echo", Name: "grpc"}, Rules: []ir.GRPCRule{
				{Index: 0, Matches: []ir.GRPCMatch{{Method: &ir.GRPCMethodMatch{Type: ir.MatchExact, Service: "gatecheck.echo.v1.Echo", Method: "Unary"}}}, Backends: []ir.Backend{g1}},
				{Index: 1, Matches: []ir.GRPCMatch{{Method: &ir.GRPCMethodMatch{Type: ir.MatchExact, Service: "gatecheck.echo.v1.Echo"}}}, Backends: []ir.Backend{g2}},
			}}}},
		{Name: "https", Port: httpsPort, Protocol: ir.ProtocolHTTPS, Hostname: "secure.example",
			TLS:        &ir.TLS{Certificates: []ir.Certificate{{Name: "echo/cert", CertPEM: certPEM, KeyPEM: keyPEM}}},
			HTTPRoutes: []ir.HTTPRoute{httpRoute}},
		{Name: "tcp", Port: tcpPort, Protocol: ir.ProtocolTCP, TCPRoutes: []ir.TCPRoute{{RouteMeta: ir.RouteMeta{Namespace: "echo", Name: "tcp"}, Backends: []ir.Backend{tc}}}},
	}}
	p := proxy.New(proxy.Options{BindAddress: "127.0.0.1"})
	if err := p.Apply(snap); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })

	getJSON := func(t *testing.T, c *http.Client, url string) (int, echo.Response) {
		t.Helper()
		res, err := c.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer res.Body.Close()
		var e echo.Response
		b, _ := io.ReadAll(res.Body)
		json.Unmarshal(b, &e)
		return res.ProtoMajor, e
	}
	plain := "http://127.0.0.1:" + strconv.Itoa(int(httpPort))
	t.Run("HTTP/1.1", func(t *testing.T) {
		proto, e := getJSON(t, &http.Client{}, plain+"/v2/x")
		if proto != 1 || e.Backend != "v2" || e.Path != "/v2/x" {
			t.Errorf("got proto %d backend %q path %q; want 1, v2, /v2/x", proto, e.Backend, e.Path)
		}
	})
	t.Run("h2c", func(t *testing.T) {
		tr := &http.Transport{Protocols: new(http.Protocols)}
		tr.Protocols.SetUnencryptedHTTP2(true)
		proto, e := getJSON(t, &http.Client{Transport: tr}, plain+"/a")
		if proto != 2 || e.Backend != "v1" {
			t.Errorf("got proto %d backend %q; want 2, v1", proto, e.Backend)
		}
	})
	t.Run("TLS h2", func(t *testing.T) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: "secure.example", RootCAs: pool}, ForceAttemptHTTP2: true}
		req, _ := http.NewRequest("GET", "https://127.0.0.1:"+strconv.Itoa(int(httpsPort))+"/v2", nil)
		req.Host = "secure.example"
		res, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var e echo.Response
		json.NewDecoder(res.Body).Decode(&e)
		if res.ProtoMajor != 2 || e.Backend != "v2" || e.Host != "secure.example" {
			t.Errorf("got proto %d backend %q host %q; want 2, v2, secure.example", res.ProtoMajor, e.Backend, e.Host)
		}
	})

	conn, err := grpc.NewClient("127.0.0.1:"+strconv.Itoa(int(httpPort)), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := echopb.NewEchoClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t.Run("gRPC unary", func(t *testing.T) {
		res, err := client.Unary(ctx, &echopb.EchoRequest{Payload: "hi"})
		if err != nil || res.GetIdentity().GetBackend() != "g1" || res.GetPayload() != "hi" {
			t.Errorf("Unary: got %v backend %q payload %q; want g1, hi", err, res.GetIdentity().GetBackend(), res.GetPayload())
		}
		_, err = client.Unary(ctx, &echopb.EchoRequest{FailWithCode: int32(codes.ResourceExhausted)})
		if status.Code(err) != codes.ResourceExhausted {
			t.Errorf("Unary fail_with_code: got %v; want ResourceExhausted from the backend's trailers", err)
		}
	})
	t.Run("gRPC bidi streaming", func(t *testing.T) {
		stream, err := client.Bidi(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Each response must arrive before the next request is sent: the proxy flushes both
		// directions immediately.
		for i := range 3 {
			if err := stream.Send(&echopb.EchoRequest{Payload: strconv.Itoa(i)}); err != nil {
				t.Fatal(err)
			}
			res, err := stream.Recv()
			if err != nil || res.GetPayload() != strconv.Itoa(i) || res.GetIdentity().GetBackend() != "g2" {
				t.Fatalf("Bidi message %d: got %v payload %q backend %q; want %d from g2", i, err, res.GetPayload(), res.GetIdentity().GetBackend(), i)
			}
		}
		stream.CloseSend()
		if _, err := stream.Recv(); err != io.EOF {
			t.Errorf("end of stream: got %v; want io.EOF (OK status in trailers)", err)
		}
	})
	t.Run("gRPC server streaming", func(t *testing.T) {
		stream, err := client.ServerStream(ctx, &echopb.StreamRequest{Count: 3, IntervalMs: 10, Request: &echopb.EchoRequest{Payload: "s"}})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			_, err := stream.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != 3 {
			t.Errorf("messages: got %d; want 3", n)
		}
	})
	t.Run("TCP", func(t *testing.T) {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(int(tcpPort)))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		g, err := tcpecho.ReadGreeting(br)
		if err != nil || g.Backend != "t1" {
			t.Fatalf("greeting: got %+v, %v; want backend t1", g, err)
		}
		io.WriteString(c, "ping")
		c.(*net.TCPConn).CloseWrite()
		rest, err := io.ReadAll(br)
		if err != nil || string(rest) != "ping" {
			t.Errorf("echo after half-close: got %q, %v; want ping then EOF", rest, err)
		}
	})
}
