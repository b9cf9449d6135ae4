package controller

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/gatecheck/gatecheck/reference-impl/proxy/delivery"
)

const testServerName = "gatecheck-reference-delivery"

// tlsDelivery serves d the way Run does (mutual TLS with ca's certificates).
func tlsDelivery(t *testing.T, d *Delivery, ca *CA) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(d.Handler())
	cfg, err := ca.ServerTLS(testServerName)
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = cfg
	srv.StartTLS()
	return srv
}

// proxyClient is the HTTP client a proxy of gw gets: its certificate, written where the
// Secret would be mounted, read by the proxy's own MutualTLS.
func proxyClient(t *testing.T, ca *CA, gw types.NamespacedName) *http.Client {
	t.Helper()
	certPEM, keyPEM, err := ca.IssueProxy(gw)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, b := range map[string][]byte{caCertKey: ca.CertPEM(), corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	hc, err := delivery.MutualTLS(dir, testServerName)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hc.CloseIdleConnections)
	return hc
}

func mustCA(t testing.TB) *CA {
	t.Helper()
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	return ca
}
