package delivery

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// Files in the directory the controller's per-Gateway Secret is mounted at.
const (
	caFile   = "ca.crt"
	certFile = "tls.crt"
	keyFile  = "tls.key"
)

// MutualTLS returns an HTTP client for the controller's delivery server: it presents the
// proxy's certificate (dir/tls.crt, dir/tls.key) and accepts only a server certificate for
// serverName signed by the CA in dir/ca.crt. The files are read at every handshake, so a
// renewed certificate or a new CA (the kubelet updates the mounted Secret) is used on the next
// connection without a restart. Timeouts are those of the default client (see Client.HTTP).
func MutualTLS(dir, serverName string) (*http.Client, error) {
	if serverName == "" {
		return nil, errors.New("mutual TLS: the controller's server name is required")
	}
	// Fail at start on missing or unreadable files rather than on every reconnect.
	if _, err := loadPair(dir); err != nil {
		return nil, err
	}
	if _, err := loadCA(dir); err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return loadPair(dir)
		},
		// Verification is done below against the CA file as it is now, instead of a pool
		// fixed at start.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			roots, err := loadCA(dir)
			if err != nil {
				return err
			}
			if len(cs.PeerCertificates) == 0 {
				return errors.New("controller sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err = cs.PeerCertificates[0].Verify(x509.VerifyOptions{
				Roots: roots, Intermediates: inter, DNSName: serverName,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			})
			if err != nil {
				return fmt.Errorf("controller certificate: %w", err)
			}
			return nil
		},
	}
	return &http.Client{Transport: &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 15 * time.Second}).DialContext,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second,
		MaxIdleConns:          4,
		TLSClientConfig:       cfg,
	}}, nil
}

func loadPair(dir string) (*tls.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, certFile), filepath.Join(dir, keyFile))
	if err != nil {
		return nil, fmt.Errorf("proxy certificate in %s: %w", dir, err)
	}
	return &pair, nil
}

func loadCA(dir string) (*x509.CertPool, error) {
	path := filepath.Join(dir, caFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("delivery CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("delivery CA %s: no PEM certificate", path)
	}
	return pool, nil
}
