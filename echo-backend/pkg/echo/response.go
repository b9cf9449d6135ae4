// Package echo is the HTTP mode of echo-backend: a JSON echo over HTTP/1.1, h2c (prior
// knowledge and Upgrade) and optional TLS, whose answer is a superset of upstream echo-basic's.
package echo

import (
	"crypto/tls"
	"encoding/pem"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/echo-backend/pkg/identity"
)

// Response is the JSON body of every echo. Its first fields carry exactly the names and shapes
// of upstream echo-basic's RequestAssertions (so the conformance helpers decode it); identity
// fields are flattened beside them (backend, pod, namespace, service, ingress).
type Response struct {
	// Path is the request target as received (echo-basic's r.RequestURI: path and query).
	Path    string              `json:"path"`
	Host    string              `json:"host"`
	Method  string              `json:"method"`
	Proto   string              `json:"proto"`
	Headers map[string][]string `json:"headers"`
	// HTTPPort is the local port the request arrived on (echo-basic reports its HTTP_PORT env).
	HTTPPort string `json:"httpPort"`

	identity.Identity

	TLS *TLSInfo `json:"tls,omitempty"`

	// RequestID is the x-request-id header, else the request-id query parameter, else
	// upstream conformance's gateway-api-conformance-request-id query parameter.
	RequestID string `json:"requestId"`
	// ConnectionID names the client connection (same id for requests sharing a connection).
	ConnectionID string `json:"connectionId"`
	// ReceivedAt is when the handler got the request, before any ?delay=.
	ReceivedAt time.Time `json:"receivedAt"`
	RemoteAddr string    `json:"remoteAddr"`
	// BodyLength is how many request body bytes the backend read.
	BodyLength int64 `json:"bodyLength"`
	// Seq is the request's record number on the admin API (0 when records are off).
	Seq uint64 `json:"seq,omitempty"`
}

// TLSInfo describes the TLS connection; same JSON as echo-basic's TLSAssertions.
type TLSInfo struct {
	Version            string   `json:"version"`
	PeerCertificates   []string `json:"peerCertificates,omitempty"`
	ServerName         string   `json:"serverName"`
	NegotiatedProtocol string   `json:"negotiatedProtocol,omitempty"`
	CipherSuite        string   `json:"cipherSuite"`
}

// NewTLSInfo summarises cs like echo-basic does; nil for plaintext.
func NewTLSInfo(cs *tls.ConnectionState) *TLSInfo {
	if cs == nil {
		return nil
	}
	info := &TLSInfo{
		Version:            TLSVersionName(cs.Version),
		NegotiatedProtocol: cs.NegotiatedProtocol,
		ServerName:         cs.ServerName,
		CipherSuite:        tls.CipherSuiteName(cs.CipherSuite),
	}
	for _, c := range cs.PeerCertificates {
		var b strings.Builder
		if err := pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}); err == nil {
			info.PeerCertificates = append(info.PeerCertificates, b.String())
		}
	}
	return info
}

// TLSVersionName spells a TLS version the way echo-basic does ("TLSv1.3").
func TLSVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "TLSv1.3"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS10:
		return "TLSv1.0"
	}
	return ""
}
