package pki

import (
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

func testOptions(t *testing.T) Options {
	t.Helper()
	return Options{
		Dir:         t.TempDir(),
		NodeIP:      net.ParseIP("192.0.2.10"),
		ServiceIP:   net.ParseIP("10.0.0.1"),
		Server:      "https://127.0.0.1:6443",
		ClusterName: "gatecheck",
	}
}

func TestEnsureGeneratesVerifiableChain(t *testing.T) {
	t.Parallel()
	opts := testOptions(t)
	changed, err := Ensure(opts)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if !changed {
		t.Fatalf("first Ensure changed = false; want true")
	}
	ca, err := readCert(filepath.Join(opts.Dir, CACert))
	if err != nil {
		t.Fatal(err)
	}
	if !ca.IsCA {
		t.Errorf("ca.IsCA = false; want true")
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)

	serving, err := readCert(filepath.Join(opts.Dir, APIServerCert))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"kubernetes.default.svc", "localhost", "127.0.0.1", "192.0.2.10", "10.0.0.1"} {
		t.Run("serving/"+name, func(t *testing.T) {
			t.Parallel()
			if _, err := serving.Verify(x509.VerifyOptions{DNSName: name, Roots: pool}); err != nil {
				t.Errorf("serving cert for %s: got %v; want valid", name, err)
			}
		})
	}
	if _, err := serving.Verify(x509.VerifyOptions{DNSName: "203.0.113.1", Roots: pool}); err == nil {
		t.Errorf("serving cert verified for 203.0.113.1; want rejected")
	}

	admin, err := readCert(filepath.Join(opts.Dir, AdminCert))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("admin cert as client: got %v; want valid", err)
	}
	if !slices.Contains(admin.Subject.Organization, "system:masters") {
		t.Errorf("admin organization = %v; want system:masters", admin.Subject.Organization)
	}
	for _, f := range []string{SAKey, SAPub, CAKey, AdminKey, APIServerKey} {
		if _, err := os.Stat(filepath.Join(opts.Dir, f)); err != nil {
			t.Errorf("stat %s: %v", f, err)
		}
	}

	cfg, err := clientcmd.LoadFromFile(filepath.Join(opts.Dir, Kubeconfig))
	if err != nil {
		t.Fatalf("load kubeconfig: %v", err)
	}
	rest, err := clientcmd.NewDefaultClientConfig(*cfg, nil).ClientConfig()
	if err != nil {
		t.Fatalf("kubeconfig client config: %v", err)
	}
	if rest.Host != opts.Server {
		t.Errorf("kubeconfig server = %q; want %q", rest.Host, opts.Server)
	}
	if len(rest.TLSClientConfig.CertData) == 0 || len(rest.TLSClientConfig.CAData) == 0 {
		t.Errorf("kubeconfig lacks embedded cert or CA data")
	}
}

func TestEnsureIsStableAndFollowsNodeIP(t *testing.T) {
	t.Parallel()
	opts := testOptions(t)
	if _, err := Ensure(opts); err != nil {
		t.Fatal(err)
	}
	caBefore, _ := os.ReadFile(filepath.Join(opts.Dir, CACert))
	servingBefore, _ := os.ReadFile(filepath.Join(opts.Dir, APIServerCert))

	changed, err := Ensure(opts)
	if err != nil {
		t.Fatal(err)
	}
	if changed {
		t.Errorf("second Ensure with same options changed = true; want false")
	}

	opts.NodeIP = net.ParseIP("192.0.2.99")
	changed, err = Ensure(opts)
	if err != nil {
		t.Fatal(err)
	}
	if !changed {
		t.Errorf("Ensure after node IP change: changed = false; want true")
	}
	caAfter, _ := os.ReadFile(filepath.Join(opts.Dir, CACert))
	servingAfter, _ := os.ReadFile(filepath.Join(opts.Dir, APIServerCert))
	if string(caAfter) != string(caBefore) {
		t.Errorf("CA was regenerated on node IP change; want kept")
	}
	if string(servingAfter) == string(servingBefore) {
		t.Errorf("serving cert unchanged after node IP change; want reissued")
	}
	serving, _ := readCert(filepath.Join(opts.Dir, APIServerCert))
	if !slices.ContainsFunc(serving.IPAddresses, opts.NodeIP.Equal) {
		t.Errorf("serving IPs = %v; want to include %v", serving.IPAddresses, opts.NodeIP)
	}
}

func TestEnsureRejectsMissingFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		edit  func(*Options)
		field string
	}{
		{"no dir", func(o *Options) { o.Dir = "" }, "Dir"},
		{"no node ip", func(o *Options) { o.NodeIP = nil }, "NodeIP"},
		{"no server", func(o *Options) { o.Server = "" }, "Server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := testOptions(t)
			tt.edit(&opts)
			_, err := Ensure(opts)
			if err == nil {
				t.Fatalf("Ensure: got nil error; want one naming %s", tt.field)
			}
			if want := "field " + tt.field; !strings.Contains(err.Error(), want) {
				t.Errorf("error %q; want it to contain %q", err, want)
			}
		})
	}
}
