package pki

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEtcdCertificatesOnALoopbackServer serves TLS the way etcd is configured
// (--client-cert-auth with --trusted-ca-file the etcd CA) and checks who gets in: the API
// server's and the health check's etcd client certificates, and nobody else, not even the
// cluster admin, whose CA is the cluster's, not etcd's.
func TestEtcdCertificatesOnALoopbackServer(t *testing.T) {
	t.Parallel()
	opts := testOptions(t)
	if _, err := Ensure(opts); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	path := func(f string) string { return filepath.Join(opts.Dir, f) }
	etcdCA := x509.NewCertPool()
	caPEM, err := os.ReadFile(path(EtcdCACert))
	if err != nil {
		t.Fatal(err)
	}
	etcdCA.AppendCertsFromPEM(caPEM)
	serving, err := tls.LoadX509KeyPair(path(EtcdServerCert), path(EtcdServerKey))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "in") }),
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{serving},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    etcdCA,
		},
	}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })

	tests := []struct {
		name       string
		cert, key  string
		wantAccess bool
	}{
		{name: "apiserver etcd client", cert: APIServerEtcdCert, key: APIServerEtcdKey, wantAccess: true},
		{name: "healthcheck client", cert: EtcdHealthcheckCert, key: EtcdHealthcheckKey, wantAccess: true},
		{name: "peer (client usage)", cert: EtcdPeerCert, key: EtcdPeerKey, wantAccess: true},
		{name: "no certificate", wantAccess: false},
		{name: "cluster admin (cluster CA, not etcd's)", cert: AdminCert, key: AdminKey, wantAccess: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := &tls.Config{RootCAs: etcdCA, ServerName: "127.0.0.1"}
			if tt.cert != "" {
				c, err := tls.LoadX509KeyPair(path(tt.cert), path(tt.key))
				if err != nil {
					t.Fatal(err)
				}
				cfg.Certificates = []tls.Certificate{c}
			}
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
			resp, err := client.Get("https://" + ln.Addr().String() + "/")
			if err == nil {
				resp.Body.Close()
			}
			switch {
			case tt.wantAccess && err != nil:
				t.Errorf("GET with %s: got %v; want access", tt.name, err)
			case !tt.wantAccess && err == nil:
				t.Errorf("GET with %s: got %s; want the TLS handshake refused", tt.name, resp.Status)
			case !tt.wantAccess && !isTLSRefusal(err):
				t.Errorf("GET with %s: got %v; want a TLS alert from the server", tt.name, err)
			}
		})
	}
}

// isTLSRefusal: the server's TLS alert (certificate required, unknown authority) reached
// the client, rather than some unrelated failure.
func isTLSRefusal(err error) bool {
	return err != nil && strings.Contains(err.Error(), "remote error: tls:")
}

func TestEtcdCertificatesKeptAcrossEnsure(t *testing.T) {
	t.Parallel()
	opts := testOptions(t)
	if _, err := Ensure(opts); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(opts.Dir, APIServerEtcdCert))
	if changed, err := Ensure(opts); err != nil || changed {
		t.Fatalf("second Ensure = %v, %v; want false, nil", changed, err)
	}
	// A deleted client key is reissued under the same etcd CA.
	caBefore, _ := os.ReadFile(filepath.Join(opts.Dir, EtcdCACert))
	if err := os.Remove(filepath.Join(opts.Dir, APIServerEtcdKey)); err != nil {
		t.Fatal(err)
	}
	if changed, err := Ensure(opts); err != nil || !changed {
		t.Fatalf("Ensure after removing %s = %v, %v; want true, nil", APIServerEtcdKey, changed, err)
	}
	after, _ := os.ReadFile(filepath.Join(opts.Dir, APIServerEtcdCert))
	caAfter, _ := os.ReadFile(filepath.Join(opts.Dir, EtcdCACert))
	if string(after) == string(before) {
		t.Errorf("%s unchanged after its key was removed; want reissued", APIServerEtcdCert)
	}
	if string(caAfter) != string(caBefore) {
		t.Errorf("etcd CA regenerated; want kept")
	}
	for _, f := range []string{EtcdCAKey, EtcdServerKey, EtcdPeerKey, APIServerEtcdKey, EtcdHealthcheckKey} {
		st, err := os.Stat(filepath.Join(opts.Dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v; want 0600", f, st.Mode().Perm())
		}
	}
}
