package ir

import (
	"strings"
	"testing"
)

// TestClientValidationNamesTheField: a snapshot with a bad client certificate validation is
// refused naming the listener and the field; a good one passes.
func TestClientValidationNamesTheField(t *testing.T) {
	t.Parallel()
	const caPEM = `-----BEGIN CERTIFICATE-----
MIIBhDCCASmgAwIBAgIUUGPJB/gOM98sNkS5VkFMLKiY2eYwCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLZXhhbXBsZS5jb20wIBcNMjYxMTI2MDc0MjA2WhgPMjEyNjEx
MDIwNzQyMDZaMBYxFDASBgNVBAMMC2V4YW1wbGUuY29tMFkwEwYHKoZIzj0CAQYI
KoZIzj0DAQcDQgAEbqCjSJgr+hUcXPeyVg1YTXLE3rUy8+2Sz0JeX02Gl7MWseNa
zDtfmUFP/ASFkSlYzRmGRm+nYWt1i5qKRVrIl6NTMFEwHQYDVR0OBBYEFNnc75iH
55T4ZD2DxepK44uLa425MB8GA1UdIwQYMBaAFNnc75iH55T4ZD2DxepK44uLa425
MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAMib5IxWjWVxlaNi
XoDMtK3Rhu1VBJKmhMH4qwJWhDw6AiEA8K2kqh4/pAceQRMJ/Djs2tCfU8Zl3iQe
/hydIxx8LGQ=
-----END CERTIFICATE-----
`
	https := func(name string, port int32, host string, cv *ClientValidation) Listener {
		return Listener{Name: name, Port: port, Protocol: ProtocolHTTPS, Hostname: host,
			TLS: &TLS{Certificates: []Certificate{{Name: "ns/cert", CertPEM: []byte("c"), KeyPEM: []byte("k")}}, ClientValidation: cv}}
	}
	valid := func() *ClientValidation {
		return &ClientValidation{Sources: []string{"ns/ca"}, CACertPEM: []byte(caPEM)}
	}
	tests := []struct {
		name string
		ls   []Listener
		want string // "" means valid
	}{
		{"valid, two listeners on a port alike", []Listener{https("a", 443, "", valid()), https("b", 443, "b.example", valid())}, ""},
		{"valid fallback", []Listener{https("a", 443, "", &ClientValidation{CACertPEM: []byte(caPEM), Mode: AllowInsecureFallback})}, ""},
		{"no certificate in the PEM", []Listener{https("a", 443, "", &ClientValidation{Sources: []string{"ns/ca"}, CACertPEM: []byte("not pem")})},
			`listeners[0] "a".tls.clientValidation.caCertPEM: no PEM certificate in it`},
		{"unknown mode", []Listener{https("a", 443, "", &ClientValidation{CACertPEM: []byte(caPEM), Mode: "Sometimes"})},
			`listeners[0] "a".tls.clientValidation.mode: unsupported "Sometimes"`},
		{"differs on a port", []Listener{https("a", 443, "", valid()), https("b", 443, "b.example", nil)},
			`listeners[1] "b".tls.clientValidation: differs from listener "a" on the same port 443`},
		{"mode differs on a port", []Listener{https("a", 443, "", valid()), https("b", 443, "b.example", &ClientValidation{CACertPEM: []byte(caPEM), Mode: AllowInsecureFallback})},
			`listeners[1] "b".tls.clientValidation: differs from listener "a"`},
		{"other ports may differ", []Listener{https("a", 443, "", valid()), https("b", 8443, "", nil)}, ""},
		{"not on TLS listeners", []Listener{{Name: "t", Port: 443, Protocol: ProtocolTLS, TLSMode: TLSTerminate,
			TLS: &TLS{Certificates: []Certificate{{Name: "ns/cert", CertPEM: []byte("c"), KeyPEM: []byte("k")}}, ClientValidation: valid()}}},
			`listeners[0] "t".tls.clientValidation: only HTTPS listeners validate client certificates`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &Snapshot{Schema: SchemaVersion, Gateway: NamespacedName{Namespace: "ns", Name: "gw"}, Listeners: tc.ls}
			err := s.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate: %v; want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate: %v; want an error containing %q", err, tc.want)
			}
		})
	}
}
