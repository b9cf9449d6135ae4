package grpcecho_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	conformancepb "sigs.k8s.io/gateway-api/conformance/echo-basic/grpcechoserver"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/grpcecho"
	"github.com/gatecheck/gatecheck/echo-backend/pkg/grpcecho/echopb"
)

func TestTLS(t *testing.T) {
	t.Parallel()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "grpc.test"}, DNSNames: []string{"grpc.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)

	srv := grpcecho.NewServer(grpcecho.Options{Identity: testID, TLS: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "grpc.test"})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := ctxWithID(t, "tls")
	resp, err := echopb.NewEchoClient(conn).Unary(ctx, &echopb.EchoRequest{})
	if err != nil {
		t.Fatalf("Unary over TLS: %v", err)
	}
	if got := resp.GetTls(); got.GetServerName() != "grpc.test" || got.GetNegotiatedProtocol() != "h2" || got.GetVersion() != "TLSv1.3" {
		t.Errorf("tls: got %v; want serverName grpc.test, ALPN h2, TLSv1.3", got)
	}
	c, err := conformancepb.NewGrpcEchoClient(conn).EchoTwo(ctx, &conformancepb.EchoRequest{})
	if err != nil {
		t.Fatalf("GrpcEcho/EchoTwo over TLS: %v", err)
	}
	if c.GetAssertions().GetTlsAssertions().GetServerName() != "grpc.test" {
		t.Errorf("conformance tls assertions: got %v; want serverName grpc.test", c.GetAssertions().GetTlsAssertions())
	}
}
