package ir

import (
	"bytes"
	"crypto/x509"
	"fmt"
)

// ClientValidationMode is how an HTTPS listener treats client certificates, spelled as in the
// Gateway API (FrontendValidationModeType).
type ClientValidationMode string

const (
	// AllowValidOnly: the handshake requires a client certificate that chains to one of the
	// CA certificates; without one it fails.
	AllowValidOnly ClientValidationMode = "AllowValidOnly"
	// AllowInsecureFallback: the handshake asks for a client certificate but accepts the
	// connection without one, or with one that does not verify.
	AllowInsecureFallback ClientValidationMode = "AllowInsecureFallback"
)

// ClientValidation is an HTTPS listener's client certificate validation: the Gateway's
// spec.tls.frontend for the listener's port (the per-port entry, else the default). Every
// HTTPS listener on one port carries the same one, since the proxy handshakes per port.
type ClientValidation struct {
	// Sources are where CACertPEM came from ("namespace/configmap"), for logs and errors.
	Sources []string `json:"sources,omitempty"`
	// CACertPEM holds the PEM CA certificates a client certificate must chain to (the
	// caCertificateRefs' ca.crt keys, concatenated); at least one.
	CACertPEM []byte `json:"caCertPEM"`
	// Mode is AllowValidOnly ("" means it) or AllowInsecureFallback.
	Mode ClientValidationMode `json:"mode,omitempty"`
}

// Equal reports whether a and b validate alike (nil is no validation).
func (a *ClientValidation) Equal(b *ClientValidation) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.effectiveMode() == b.effectiveMode() && bytes.Equal(a.CACertPEM, b.CACertPEM)
}

func (a *ClientValidation) effectiveMode() ClientValidationMode {
	if a.Mode == "" {
		return AllowValidOnly
	}
	return a.Mode
}

// clientValidation returns l's client certificate validation, or nil.
func (l *Listener) clientValidation() *ClientValidation {
	if l.TLS == nil {
		return nil
	}
	return l.TLS.ClientValidation
}

// validateClientValidation checks l's client certificate validation and that it matches the
// other HTTPS listeners' on its port (first holds the first HTTPS listener seen per port).
func (l *Listener) validateClientValidation(where loc, first map[int32]*Listener) []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	cv := l.clientValidation()
	if cv != nil {
		if l.Protocol != ProtocolHTTPS {
			add("%s.tls.clientValidation: only HTTPS listeners validate client certificates, not %s", where(), l.Protocol)
		}
		switch cv.Mode {
		case "", AllowValidOnly, AllowInsecureFallback:
		default:
			add("%s.tls.clientValidation.mode: unsupported %q (want AllowValidOnly or AllowInsecureFallback)", where(), cv.Mode)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(cv.CACertPEM) {
			add("%s.tls.clientValidation.caCertPEM: no PEM certificate in it (from %v)", where(), cv.Sources)
		}
	}
	if l.Protocol != ProtocolHTTPS {
		return errs
	}
	if f, ok := first[l.Port]; !ok {
		first[l.Port] = l
	} else if !f.clientValidation().Equal(cv) {
		add("%s.tls.clientValidation: differs from listener %q on the same port %d (the proxy validates client certificates per port)", where(), f.Name, l.Port)
	}
	return errs
}
