package controller

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The delivery channel is mutual TLS. The controller owns a CA (kept in a Secret in its own
// namespace, created at first start); it signs its delivery server's certificate at every
// start and, per Gateway, a client certificate whose only identity is a URI naming that
// Gateway (proxyIdentity). The proxy Deployment mounts that certificate from a Secret the
// Gateway owns; the delivery server serves and accepts acks for exactly the Gateway the
// verified client certificate names.

const (
	// Secret keys: the CA's own Secret holds caCertKey and caKeyKey; a proxy's holds caCertKey
	// (to verify the controller), corev1.TLSCertKey and corev1.TLSPrivateKeyKey.
	caCertKey = "ca.crt"
	caKeyKey  = "ca.key"
	// DefaultCASecretName is the Secret, in the controller's namespace, holding the delivery CA.
	DefaultCASecretName = "gatecheck-reference-delivery-ca"
	// identityPrefix starts the URI SAN of a proxy certificate:
	// spiffe://gatecheck.dev/ns/<namespace>/gateway/<name>.
	identityPrefix = "spiffe://gatecheck.dev/ns/"

	caValidity    = 10 * 365 * 24 * time.Hour
	leafValidity  = 365 * 24 * time.Hour
	renewBefore   = 30 * 24 * time.Hour
	clockSkewBack = 5 * time.Minute
)

// CA signs the delivery server's and the proxies' certificates.
type CA struct {
	cert    *x509.Certificate
	certPEM []byte
	key     *ecdsa.PrivateKey
}

// NewCA generates a CA (used when there is no Secret to keep it in: tests, the benchmark).
func NewCA() (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "gatecheck reference delivery CA"},
		NotBefore:             now.Add(-clockSkewBack),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("self-sign CA: %w", err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &CA{cert: cert, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key: key}, nil
}

// parseCA reads a CA from the PEM of its certificate and key.
func parseCA(certPEM, keyPEM []byte) (*CA, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, err
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || !cert.IsCA {
		return nil, errors.New("not an ECDSA CA certificate and key")
	}
	if time.Now().After(cert.NotAfter.Add(-renewBefore)) {
		return nil, fmt.Errorf("CA certificate expires %s", cert.NotAfter.Format(time.RFC3339))
	}
	return &CA{cert: cert, certPEM: certPEM, key: key}, nil
}

// LoadOrCreateCA reads the CA from the Secret key, creating the Secret with a new CA when it
// does not exist. A Secret that exists but does not hold a usable CA is an error naming it
// (deleting it makes the next start create a new CA, and the proxies' certificates follow).
func LoadOrCreateCA(ctx context.Context, c client.Client, key types.NamespacedName) (*CA, error) {
	for attempt := 0; attempt < 2; attempt++ {
		var s corev1.Secret
		err := c.Get(ctx, key, &s)
		if err == nil {
			ca, err := parseCA(s.Data[caCertKey], s.Data[caKeyKey])
			if err != nil {
				return nil, fmt.Errorf("delivery CA Secret %s (keys %s, %s): %w; delete it to have a new CA created", key, caCertKey, caKeyKey, err)
			}
			return ca, nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("get delivery CA Secret %s: %w", key, err)
		}
		ca, err := NewCA()
		if err != nil {
			return nil, err
		}
		keyDER, err := x509.MarshalECPrivateKey(ca.key)
		if err != nil {
			return nil, fmt.Errorf("encode CA key: %w", err)
		}
		s = corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name, Labels: map[string]string{LabelManagedBy: ManagedByValue}},
			Type:       corev1.SecretTypeOpaque,
			Data: map[string][]byte{
				caCertKey: ca.certPEM,
				caKeyKey:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
			},
		}
		switch err := c.Create(ctx, &s); {
		case err == nil:
			return ca, nil
		case apierrors.IsAlreadyExists(err):
			continue // another replica created it first: use theirs
		default:
			return nil, fmt.Errorf("create delivery CA Secret %s: %w", key, err)
		}
	}
	return nil, fmt.Errorf("delivery CA Secret %s: created and deleted concurrently", key)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// issue signs a leaf certificate; it returns the certificate and key PEM.
func (ca *CA) issue(tmpl *x509.Certificate) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	now := time.Now()
	tmpl.SerialNumber = serial()
	tmpl.NotBefore, tmpl.NotAfter = now.Add(-clockSkewBack), now.Add(leafValidity)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("sign certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

// ServerTLS is the delivery server's TLS configuration: a certificate for serverName, and
// only clients with a certificate from this CA.
func (ca *CA) ServerTLS(serverName string) (*tls.Config, error) {
	certPEM, keyPEM, err := ca.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: serverName},
		DNSNames:    []string{serverName},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return nil, fmt.Errorf("delivery server certificate: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.pool(),
	}, nil
}

func (ca *CA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// CertPEM is the CA certificate.
func (ca *CA) CertPEM() []byte { return ca.certPEM }

// IssueProxy signs the client certificate of the proxies serving gw.
func (ca *CA) IssueProxy(gw types.NamespacedName) (certPEM, keyPEM []byte, err error) {
	id := proxyIdentity(gw)
	return ca.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "proxy " + gw.String()},
		URIs:        []*url.URL{id},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

// proxyCertCurrent says whether a proxy Secret's certificate is one this CA signed for gw and
// not due for renewal.
func (ca *CA) proxyCertCurrent(gw types.NamespacedName, data map[string][]byte, now time.Time) bool {
	if !bytes.Equal(data[caCertKey], ca.certPEM) {
		return false
	}
	if _, err := tls.X509KeyPair(data[corev1.TLSCertKey], data[corev1.TLSPrivateKeyKey]); err != nil {
		return false
	}
	b, _ := pem.Decode(data[corev1.TLSCertKey])
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil || now.After(cert.NotAfter.Add(-renewBefore)) {
		return false
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CurrentTime: now}); err != nil {
		return false
	}
	got, err := identityOf(cert)
	return err == nil && got == gw
}

func proxyIdentity(gw types.NamespacedName) *url.URL {
	u, _ := url.Parse(identityPrefix + gw.Namespace + "/gateway/" + gw.Name)
	return u
}

// identityOf is the Gateway a verified proxy certificate names.
func identityOf(cert *x509.Certificate) (types.NamespacedName, error) {
	if len(cert.URIs) != 1 {
		return types.NamespacedName{}, fmt.Errorf("certificate %q: want exactly one URI SAN naming a Gateway, got %d", cert.Subject.CommonName, len(cert.URIs))
	}
	rest, ok := strings.CutPrefix(cert.URIs[0].String(), identityPrefix)
	ns, name, ok2 := strings.Cut(rest, "/gateway/")
	if !ok || !ok2 || ns == "" || name == "" || strings.Contains(name, "/") {
		return types.NamespacedName{}, fmt.Errorf("certificate %q: URI SAN %q does not name a Gateway (%s<namespace>/gateway/<name>)", cert.Subject.CommonName, cert.URIs[0], identityPrefix)
	}
	return types.NamespacedName{Namespace: ns, Name: name}, nil
}
