package ir

import "fmt"

// TLSMode is how a TLS listener treats the TLS stream, spelled as in the Gateway API.
type TLSMode string

const (
	TLSPassthrough TLSMode = "Passthrough"
	TLSTerminate   TLSMode = "Terminate"
)

// UDPRoute is an attached UDPRoute: each flow (client address and port to the listener) goes
// to one backend chosen by weight when its first datagram arrives, and stays there until the
// flow has been idle for the proxy's UDP idle timeout.
type UDPRoute struct {
	RouteMeta
	Backends []Backend `json:"backends"`
}

// TLSRoute is an attached TLSRoute: a connection whose ClientHello names one of Hostnames
// (already intersected with the listener's hostname; empty means the listener's) goes to one
// backend chosen by weight, per connection.
type TLSRoute struct {
	RouteMeta
	Backends []Backend `json:"backends"`
}

// validateStream checks what UDP and TLS listeners carry; the caller checks the rest.
func (l *Listener) validateStream(where loc) []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if l.Protocol != ProtocolUDP && len(l.UDPRoutes) > 0 {
		add("%s: %s listener cannot carry UDP routes", where(), l.Protocol)
	}
	if l.Protocol != ProtocolTLS && len(l.TLSRoutes) > 0 {
		add("%s: %s listener cannot carry TLS routes", where(), l.Protocol)
	}
	if (l.Protocol == ProtocolUDP || l.Protocol == ProtocolTLS) && (len(l.HTTPRoutes) > 0 || len(l.GRPCRoutes) > 0 || len(l.TCPRoutes) > 0) {
		add("%s: %s listener cannot carry HTTP, gRPC or TCP routes", where(), l.Protocol)
	}
	switch l.TLSMode {
	case "", TLSPassthrough:
	case TLSTerminate:
		if l.Protocol != ProtocolTLS {
			add("%s.tlsMode: Terminate is for TLS listeners, not %s", where(), l.Protocol)
		} else if l.TLS == nil || len(l.TLS.Certificates) == 0 {
			add("%s.tls: a TLS listener in Terminate mode needs at least one certificate", where())
		}
	default:
		add("%s.tlsMode: unsupported %q (want Passthrough or Terminate)", where(), l.TLSMode)
	}
	for j, r := range l.UDPRoutes {
		rw := where.sub(".udpRoutes[%d] %s/%s", j, r.Namespace, r.Name)
		errs = append(errs, r.RouteMeta.validate(rw)...)
		errs = append(errs, validateBackends(rw, r.Backends)...)
	}
	for j, r := range l.TLSRoutes {
		rw := where.sub(".tlsRoutes[%d] %s/%s", j, r.Namespace, r.Name)
		errs = append(errs, r.RouteMeta.validate(rw)...)
		errs = append(errs, validateBackends(rw, r.Backends)...)
	}
	return errs
}
