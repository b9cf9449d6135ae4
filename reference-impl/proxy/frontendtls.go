package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// clientAuth is an HTTPS port's client certificate validation (ir.ClientValidation, the
// Gateway's spec.tls.frontend for the port), compiled.
type clientAuth struct {
	// mode is RequireAndVerifyClientCert (AllowValidOnly) or RequestClientCert
	// (AllowInsecureFallback: asked for, neither required nor verified).
	mode tls.ClientAuthType
	cas  *x509.CertPool
}

// compileClientAuth sets pc's client certificate validation from its HTTPS listener l. IR
// validation makes every HTTPS listener of a port carry the same one, so the first decides.
func compileClientAuth(pc *portConfig, l *ir.Listener) error {
	if l.Protocol != ir.ProtocolHTTPS || l.TLS == nil || l.TLS.ClientValidation == nil || pc.clientAuth != nil {
		return nil
	}
	cv := l.TLS.ClientValidation
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(cv.CACertPEM) {
		return fmt.Errorf("tls.clientValidation: no PEM CA certificate (from %v)", cv.Sources)
	}
	ca := &clientAuth{mode: tls.RequireAndVerifyClientCert, cas: pool}
	if cv.Mode == ir.AllowInsecureFallback {
		ca.mode = tls.RequestClientCert
	}
	pc.clientAuth = ca
	return nil
}

// handshakeConfig is an HTTPS port's GetConfigForClient: base with the port's client
// certificate validation as the applied snapshot has it at this handshake, or nil (base
// itself) when the port validates none.
func (p *Proxy) handshakeConfig(port int32, base *tls.Config) (*tls.Config, error) {
	c := p.cur.Load()
	if c == nil {
		return nil, nil
	}
	pc := c.ports[port]
	if pc == nil || pc.clientAuth == nil {
		return nil, nil
	}
	cfg := base.Clone()
	cfg.GetConfigForClient = nil
	cfg.ClientAuth, cfg.ClientCAs = pc.clientAuth.mode, pc.clientAuth.cas
	// No resumption: a resumed session keeps the certificate verified against the CAs of
	// its first handshake, which a later snapshot may have replaced.
	cfg.SessionTicketsDisabled = true
	return cfg, nil
}
