// Package pki generates the host cluster's certificate authority, serving and client
// certificates, service-account key and admin kubeconfig with crypto/x509.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// File names inside the PKI directory.
const (
	CACert        = "ca.crt"
	CAKey         = "ca.key"
	APIServerCert = "apiserver.crt"
	APIServerKey  = "apiserver.key"
	AdminCert     = "admin.crt"
	AdminKey      = "admin.key"
	SAKey         = "sa.key"
	SAPub         = "sa.pub"
	Kubeconfig    = "admin.kubeconfig"

	// etcd has its own CA, as kubeadm does: the controller-manager signs approved CSRs with
	// the cluster CA, and no certificate it signs may open etcd.
	EtcdCACert          = "etcd-ca.crt"
	EtcdCAKey           = "etcd-ca.key"
	EtcdServerCert      = "etcd-server.crt"
	EtcdServerKey       = "etcd-server.key"
	EtcdPeerCert        = "etcd-peer.crt"
	EtcdPeerKey         = "etcd-peer.key"
	APIServerEtcdCert   = "apiserver-etcd-client.crt"
	APIServerEtcdKey    = "apiserver-etcd-client.key"
	EtcdHealthcheckCert = "etcd-healthcheck-client.crt"
	EtcdHealthcheckKey  = "etcd-healthcheck-client.key"
)

// Options says what the certificates must cover.
type Options struct {
	// Dir receives the files; it is created 0700.
	Dir string
	// NodeIP and ServiceIP (first address of the service range) are in the serving cert.
	NodeIP, ServiceIP net.IP
	// Server is the API server URL written into the kubeconfig.
	Server string
	// ClusterName names the kubeconfig's cluster, user and context.
	ClusterName string
	// Validity defaults to ten years: the cluster is disposable, rotation is out of scope.
	Validity time.Duration
}

// apiserverDNSNames are the names in-cluster clients and the host use for the API server.
var apiserverDNSNames = []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}

// Ensure generates whatever is missing or no longer matches opts (a new node IP after a
// reboot on another network invalidates the serving cert) and reports whether it wrote
// anything. An intact CA is kept so existing kubeconfigs stay valid.
func Ensure(opts Options) (bool, error) {
	if err := validate(opts); err != nil {
		return false, err
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return false, fmt.Errorf("create pki dir %s: %w", opts.Dir, err)
	}
	if opts.Validity == 0 {
		opts.Validity = 10 * 365 * 24 * time.Hour
	}
	changed := false
	ca, caKey, err := loadPair(opts.Dir, CACert, CAKey)
	if err != nil {
		if ca, caKey, err = newCA(opts); err != nil {
			return false, err
		}
		if err := writePair(opts.Dir, CACert, CAKey, ca, caKey); err != nil {
			return false, err
		}
		changed = true
	}
	if changed || !servingCertOK(opts, ca) {
		if err := issue(opts, ca, caKey, APIServerCert, APIServerKey, servingTemplate(opts)); err != nil {
			return false, err
		}
		changed = true
	}
	if changed || !clientCertOK(opts.Dir, ca) {
		if err := issue(opts, ca, caKey, AdminCert, AdminKey, adminTemplate()); err != nil {
			return false, err
		}
		changed = true
	}
	etcdChanged, err := ensureEtcd(opts)
	if err != nil {
		return false, err
	}
	changed = changed || etcdChanged
	if _, err := os.Stat(filepath.Join(opts.Dir, SAPub)); err != nil {
		if err := writeSAKey(opts.Dir); err != nil {
			return false, err
		}
		changed = true
	}
	if changed || !kubeconfigOK(opts) {
		if err := writeKubeconfig(opts); err != nil {
			return false, err
		}
		changed = true
	}
	return changed, nil
}

func validate(opts Options) error {
	switch {
	case opts.Dir == "":
		return errors.New("pki options: field Dir is empty")
	case opts.NodeIP == nil:
		return errors.New("pki options: field NodeIP is empty")
	case opts.ServiceIP == nil:
		return errors.New("pki options: field ServiceIP is empty")
	case opts.Server == "":
		return errors.New("pki options: field Server is empty")
	case opts.ClusterName == "":
		return errors.New("pki options: field ClusterName is empty")
	}
	return nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // the OS RNG failing leaves nothing to do
	}
	return n
}

// ensureEtcd keeps etcd's CA and issues what is missing or invalid under it: the serving and
// peer certificates (loopback only: etcd listens nowhere else) and the client certificates
// of the API server and of the provider's health checks.
func ensureEtcd(opts Options) (bool, error) {
	changed := false
	ca, caKey, err := loadPair(opts.Dir, EtcdCACert, EtcdCAKey)
	if err != nil {
		if ca, caKey, err = newCA(Options{ClusterName: opts.ClusterName + "-etcd", Validity: opts.Validity}); err != nil {
			return false, err
		}
		if err := writePair(opts.Dir, EtcdCACert, EtcdCAKey, ca, caKey); err != nil {
			return false, err
		}
		changed = true
	}
	for _, leaf := range []struct {
		cert, key string
		usage     x509.ExtKeyUsage
		tmpl      func() *x509.Certificate
	}{
		{EtcdServerCert, EtcdServerKey, x509.ExtKeyUsageServerAuth, func() *x509.Certificate { return etcdServingTemplate("etcd-server") }},
		{EtcdPeerCert, EtcdPeerKey, x509.ExtKeyUsageServerAuth, func() *x509.Certificate { return etcdServingTemplate("etcd-peer") }},
		{APIServerEtcdCert, APIServerEtcdKey, x509.ExtKeyUsageClientAuth, func() *x509.Certificate { return clientTemplate("kube-apiserver-etcd-client") }},
		{EtcdHealthcheckCert, EtcdHealthcheckKey, x509.ExtKeyUsageClientAuth, func() *x509.Certificate { return clientTemplate("gatecheck-etcd-healthcheck-client") }},
	} {
		if !changed && pairOK(opts.Dir, leaf.cert, leaf.key, ca, leaf.usage) {
			continue
		}
		if err := issue(opts, ca, caKey, leaf.cert, leaf.key, leaf.tmpl()); err != nil {
			return false, err
		}
		changed = true
	}
	return changed, nil
}

// etcdServingTemplate serves and, for peers, also authenticates as a client (kubeadm's
// etcd server and peer certificates carry both usages).
func etcdServingTemplate(cn string) *x509.Certificate {
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
}

func clientTemplate(cn string) *x509.Certificate {
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}

// pairOK: the certificate chains to ca for usage and its key loads.
func pairOK(dir, certFile, keyFile string, ca *x509.Certificate, usage x509.ExtKeyUsage) bool {
	cert, err := readCert(filepath.Join(dir, certFile))
	if err != nil || !verify(ca, cert, usage) {
		return false
	}
	_, _, err = loadPair(dir, certFile, keyFile)
	return err == nil
}

func newCA(opts Options) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate ca key: %w", err)
	}
	now := time.Now().Add(-time.Hour)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: opts.ClusterName + "-ca"},
		NotBefore:             now,
		NotAfter:              now.Add(opts.Validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("self-sign ca: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func servingTemplate(opts Options) *x509.Certificate {
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    apiserverDNSNames,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), opts.NodeIP, opts.ServiceIP},
	}
}

func adminTemplate() *x509.Certificate {
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: "admin", Organization: []string{"system:masters"}},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}

func issue(opts Options, ca *x509.Certificate, caKey crypto.Signer, certFile, keyFile string, tmpl *x509.Certificate) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate key for %s: %w", certFile, err)
	}
	now := time.Now().Add(-time.Hour)
	tmpl.SerialNumber = serial()
	tmpl.NotBefore = now
	tmpl.NotAfter = now.Add(opts.Validity)
	tmpl.BasicConstraintsValid = true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return fmt.Errorf("sign %s: %w", certFile, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("parse %s: %w", certFile, err)
	}
	return writePair(opts.Dir, certFile, keyFile, cert, key)
}

func writeSAKey(dir string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("generate service-account key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return fmt.Errorf("marshal service-account public key: %w", err)
	}
	if err := writePEM(filepath.Join(dir, SAKey), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key), 0o600); err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, SAPub), "PUBLIC KEY", pub, 0o644)
}

func writePair(dir, certFile, keyFile string, cert *x509.Certificate, key crypto.Signer) error {
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("marshal key %s: %w", keyFile, err)
	}
	if err := writePEM(filepath.Join(dir, keyFile), "PRIVATE KEY", kder, 0o600); err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, certFile), "CERTIFICATE", cert.Raw, 0o644)
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	data := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func readCert(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no CERTIFICATE block", path)
	}
	return x509.ParseCertificate(b.Bytes)
}

func loadPair(dir, certFile, keyFile string) (*x509.Certificate, crypto.Signer, error) {
	cert, err := readCert(filepath.Join(dir, certFile))
	if err != nil {
		return nil, nil, err
	}
	data, err := os.ReadFile(filepath.Join(dir, keyFile))
	if err != nil {
		return nil, nil, err
	}
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, nil, fmt.Errorf("%s: no PEM block", keyFile)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parse %s: %w", keyFile, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("%s: key type %T cannot sign", keyFile, k)
	}
	return cert, signer, nil
}

// verify checks cert chains to ca for usage, and is not about to expire.
func verify(ca, cert *x509.Certificate, usage x509.ExtKeyUsage) bool {
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if time.Until(cert.NotAfter) < 24*time.Hour {
		return false
	}
	_, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{usage}})
	return err == nil
}

func servingCertOK(opts Options, ca *x509.Certificate) bool {
	cert, err := readCert(filepath.Join(opts.Dir, APIServerCert))
	if err != nil || !verify(ca, cert, x509.ExtKeyUsageServerAuth) {
		return false
	}
	if _, _, err := loadPair(opts.Dir, APIServerCert, APIServerKey); err != nil {
		return false
	}
	for _, ip := range []net.IP{opts.NodeIP, opts.ServiceIP} {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

func clientCertOK(dir string, ca *x509.Certificate) bool {
	cert, err := readCert(filepath.Join(dir, AdminCert))
	if err != nil || !verify(ca, cert, x509.ExtKeyUsageClientAuth) {
		return false
	}
	_, _, err = loadPair(dir, AdminCert, AdminKey)
	return err == nil
}

func kubeconfigOK(opts Options) bool {
	cfg, err := clientcmd.LoadFromFile(filepath.Join(opts.Dir, Kubeconfig))
	if err != nil {
		return false
	}
	c, ok := cfg.Clusters[opts.ClusterName]
	return ok && c.Server == opts.Server && cfg.CurrentContext == opts.ClusterName
}

// writeKubeconfig embeds the certificates so the file can be copied anywhere.
func writeKubeconfig(opts Options) error {
	read := func(name string) ([]byte, error) { return os.ReadFile(filepath.Join(opts.Dir, name)) }
	caPEM, err := read(CACert)
	if err != nil {
		return fmt.Errorf("read ca for kubeconfig: %w", err)
	}
	certPEM, err := read(AdminCert)
	if err != nil {
		return fmt.Errorf("read admin cert for kubeconfig: %w", err)
	}
	keyPEM, err := read(AdminKey)
	if err != nil {
		return fmt.Errorf("read admin key for kubeconfig: %w", err)
	}
	n := opts.ClusterName
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[n] = &clientcmdapi.Cluster{Server: opts.Server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[n+"-admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	cfg.Contexts[n] = &clientcmdapi.Context{Cluster: n, AuthInfo: n + "-admin"}
	cfg.CurrentContext = n
	path := filepath.Join(opts.Dir, Kubeconfig)
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return os.Chmod(path, 0o600)
}
