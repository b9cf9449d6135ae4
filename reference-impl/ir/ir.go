// Package ir is the intermediate representation the reference controller produces and the
// reference proxy consumes: one versioned, immutable Snapshot per Gateway.
//
// The controller resolves everything Kubernetes-specific before it builds a Snapshot: routes are
// already attached to the listeners they may attach to (allowedRoutes, sectionName, port,
// hostname intersection and ReferenceGrants applied), Services are resolved to ready endpoint
// addresses, Secrets to PEM bytes. The proxy only matches requests and forwards them.
//
// An invalid backendRef stays in the IR as a Backend with its weight and no endpoints (Invalid
// says why), so its share of traffic gets a 500, as the Gateway API spec requires.
//
// A Snapshot must not be modified after it is published: delivery (package delta) splits it
// into per-route entries that share its memory, and the proxy swaps whole compiled
// configurations atomically, requests in flight keeping the one they started with.
package ir

import (
	"time"
)

// SchemaVersion is bumped on incompatible changes to the wire form of Snapshot.
const SchemaVersion = "ir.gatecheck.dev/v1"

// NamespacedName identifies a Kubernetes object.
type NamespacedName struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

func (n NamespacedName) String() string { return n.Namespace + "/" + n.Name }

// Snapshot is the whole data-plane configuration of one Gateway.
type Snapshot struct {
	Schema string `json:"schema,omitempty"`
	// Version increases with every change the controller publishes for this Gateway.
	Version int64          `json:"version"`
	Gateway NamespacedName `json:"gateway"`
	// BackendClientCertificate, when set, is the certificate the proxy presents to backends
	// that ask for one on the TLS connections it originates (Backend.TLS): the Gateway's
	// spec.tls.backend.clientCertificateRef (GatewayBackendClientCertificate).
	BackendClientCertificate *Certificate `json:"backendClientCertificate,omitempty"`
	// Listeners in the Gateway's spec order. Several listeners may share a port (different
	// hostnames); the proxy serves them from one socket.
	Listeners []Listener `json:"listeners"`
}

// Protocol is a listener protocol, spelled as in the Gateway API.
type Protocol string

const (
	ProtocolHTTP  Protocol = "HTTP"
	ProtocolHTTPS Protocol = "HTTPS"
	ProtocolTCP   Protocol = "TCP"
	ProtocolUDP   Protocol = "UDP"
	// ProtocolTLS is a TLS stream listener carrying TLSRoutes: Passthrough (the default) routes
	// the encrypted stream by the ClientHello's SNI, Terminate ends TLS with TLS.Certificates
	// and forwards the plaintext stream (stream.go).
	ProtocolTLS Protocol = "TLS"
)

// Listener is one Gateway listener with the routes attached to it.
type Listener struct {
	Name     string   `json:"name"`
	Port     int32    `json:"port"`
	Protocol Protocol `json:"protocol"`
	// Hostname is the listener hostname; empty matches any host. May start with "*.".
	Hostname string `json:"hostname,omitempty"`
	// TLS holds the certificates for HTTPS listeners (terminate mode).
	TLS *TLS `json:"tls,omitempty"`
	// TLSMode is a TLS listener's mode: TLSPassthrough ("" means it) or TLSTerminate.
	TLSMode TLSMode `json:"tlsMode,omitempty"`
	// UDPIdleTimeout ends a UDP listener's flow after this long without a datagram either
	// way; zero means the proxy's default.
	UDPIdleTimeout Duration `json:"udpIdleTimeout,omitempty"`

	HTTPRoutes []HTTPRoute `json:"httpRoutes,omitempty"`
	GRPCRoutes []GRPCRoute `json:"grpcRoutes,omitempty"`
	TCPRoutes  []TCPRoute  `json:"tcpRoutes,omitempty"`
	UDPRoutes  []UDPRoute  `json:"udpRoutes,omitempty"`
	TLSRoutes  []TLSRoute  `json:"tlsRoutes,omitempty"`
}

// TLS is a listener's server certificates; the proxy selects one by SNI.
type TLS struct {
	Certificates []Certificate `json:"certificates"`
	// ClientValidation, when set, makes the proxy ask HTTPS clients for a certificate and
	// verify it (frontendtls.go); nil asks for none.
	ClientValidation *ClientValidation `json:"clientValidation,omitempty"`
}

// Certificate is a PEM certificate chain and its private key.
type Certificate struct {
	// Name is where it came from ("namespace/secret"), for logs and errors.
	Name    string `json:"name"`
	CertPEM []byte `json:"certPEM"`
	KeyPEM  []byte `json:"keyPEM"`
}

// RouteMeta is what the proxy needs to order routes and to label metrics.
type RouteMeta struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// CreationTimestamp breaks precedence ties: the oldest route wins, then namespace/name.
	CreationTimestamp time.Time `json:"creationTimestamp"`
	// Hostnames are the route's hostnames already intersected with the listener's hostname;
	// empty means the listener's hostname (or any host if that is empty too).
	Hostnames []string `json:"hostnames,omitempty"`
}

// HTTPRoute is an attached HTTPRoute.
type HTTPRoute struct {
	RouteMeta
	Rules []HTTPRule `json:"rules"`
}

// HTTPRule is one rule of an HTTPRoute.
type HTTPRule struct {
	// Index is the rule's position in the route, for precedence ties and metrics labels.
	Index int `json:"index"`
	// Name is the rule's optional name (HTTPRouteRule.name, feature HTTPRouteNamedRouteRule):
	// the proxy labels the rule's metrics and logs "namespace/route/index/name" with it.
	Name string `json:"name,omitempty"`
	// Matches: a request matching any one selects the rule. Empty means PathPrefix "/".
	Matches  []HTTPMatch `json:"matches,omitempty"`
	Filters  []Filter    `json:"filters,omitempty"`
	Backends []Backend   `json:"backends,omitempty"`
	Timeouts *Timeouts   `json:"timeouts,omitempty"`
	// Retry, when set, retries a failed backend request (retry.go in the proxy).
	Retry *Retry `json:"retry,omitempty"`
}

// Retry is an HTTP rule's retry policy (HTTPRouteRetry). A backend request is retried when its
// answer's status is in Codes or it failed without an answer (connection refused or reset, a
// timeout), at most Attempts times after the first, waiting at least Backoff before each.
// Only requests whose body can be sent again are retried. With a retry policy the rule's
// backendRequest timeout bounds each attempt's wait for a response head, the request timeout
// the whole exchange.
type Retry struct {
	Codes    []int    `json:"codes,omitempty"`
	Attempts int      `json:"attempts"`
	Backoff  Duration `json:"backoff,omitempty"`
}

// Timeouts of an HTTP rule; zero means none.
type Timeouts struct {
	Request        Duration `json:"request,omitempty"`
	BackendRequest Duration `json:"backendRequest,omitempty"`
}

// MatchType is how a value is compared.
type MatchType string

const (
	MatchExact             MatchType = "Exact"
	MatchPathPrefix        MatchType = "PathPrefix"
	MatchRegularExpression MatchType = "RegularExpression"
)

// PathMatch matches the request path.
type PathMatch struct {
	Type  MatchType `json:"type"`
	Value string    `json:"value"`
}

// HeaderMatch matches a header (case-insensitive name) or query parameter (exact name).
type HeaderMatch struct {
	Type  MatchType `json:"type"`
	Name  string    `json:"name"`
	Value string    `json:"value"`
}

// HTTPMatch is one HTTPRouteMatch: all of its parts must match.
type HTTPMatch struct {
	Path        *PathMatch    `json:"path,omitempty"`
	Headers     []HeaderMatch `json:"headers,omitempty"`
	QueryParams []HeaderMatch `json:"queryParams,omitempty"`
	Method      string        `json:"method,omitempty"`
}

// FilterType names a filter, spelled as in the Gateway API.
type FilterType string

const (
	FilterRequestHeaderModifier  FilterType = "RequestHeaderModifier"
	FilterResponseHeaderModifier FilterType = "ResponseHeaderModifier"
	FilterRequestRedirect        FilterType = "RequestRedirect"
	FilterURLRewrite             FilterType = "URLRewrite"
	FilterRequestMirror          FilterType = "RequestMirror"
	FilterCORS                   FilterType = "CORS"
)

// Filter is one filter; exactly the field named by Type is set.
type Filter struct {
	Type                   FilterType      `json:"type"`
	RequestHeaderModifier  *HeaderModifier `json:"requestHeaderModifier,omitempty"`
	ResponseHeaderModifier *HeaderModifier `json:"responseHeaderModifier,omitempty"`
	RequestRedirect        *Redirect       `json:"requestRedirect,omitempty"`
	URLRewrite             *URLRewrite     `json:"urlRewrite,omitempty"`
	RequestMirror          *Mirror         `json:"requestMirror,omitempty"`
	CORS                   *CORS           `json:"cors,omitempty"`
}

// CORS answers preflight requests from allowed origins itself and adds the CORS response
// headers to the answers of other requests from them (HTTPRouteCORS; proxy/cors.go).
type CORS struct {
	// AllowOrigins are "scheme://host[:port]" origins; "*" allows any, and one "*" in the
	// host ("https://*.example.com") any text in its place.
	AllowOrigins     []string `json:"allowOrigins,omitempty"`
	AllowCredentials bool     `json:"allowCredentials,omitempty"`
	// AllowMethods and AllowHeaders may be ["*"]: the preflight's requested method and
	// headers are then allowed and echoed.
	AllowMethods  []string `json:"allowMethods,omitempty"`
	AllowHeaders  []string `json:"allowHeaders,omitempty"`
	ExposeHeaders []string `json:"exposeHeaders,omitempty"`
	// MaxAge in seconds for Access-Control-Max-Age; 0 leaves the header out.
	MaxAge int32 `json:"maxAge,omitempty"`
}

// Header is a name and value.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// HeaderModifier sets, adds and removes headers, in that order as the spec describes.
type HeaderModifier struct {
	Set    []Header `json:"set,omitempty"`
	Add    []Header `json:"add,omitempty"`
	Remove []string `json:"remove,omitempty"`
}

// PathModifierType says how a path is rewritten.
type PathModifierType string

const (
	ReplaceFullPath    PathModifierType = "ReplaceFullPath"
	ReplacePrefixMatch PathModifierType = "ReplacePrefixMatch"
)

// PathModifier rewrites the path. ReplacePrefixMatch replaces the part of the path matched by
// the rule's PathPrefix match (the proxy knows which match selected the rule).
type PathModifier struct {
	Type               PathModifierType `json:"type"`
	ReplaceFullPath    string           `json:"replaceFullPath,omitempty"`
	ReplacePrefixMatch string           `json:"replacePrefixMatch,omitempty"`
}

// Redirect answers with a redirect instead of forwarding. Nil fields keep the request's value.
type Redirect struct {
	Scheme   *string       `json:"scheme,omitempty"`
	Hostname *string       `json:"hostname,omitempty"`
	Path     *PathModifier `json:"path,omitempty"`
	Port     *int32        `json:"port,omitempty"`
	// StatusCode is 301, 302, 303, 307 or 308; zero means 302.
	StatusCode int `json:"statusCode,omitempty"`
}

// URLRewrite rewrites the request before forwarding.
type URLRewrite struct {
	Hostname *string       `json:"hostname,omitempty"`
	Path     *PathModifier `json:"path,omitempty"`
}

// Mirror sends a copy of the request to Backend and discards the answer.
type Mirror struct {
	Backend Backend `json:"backend"`
	// Percent of requests to mirror, 0 to 100 (fractions allowed). The controller converts the
	// spec's percent or fraction into this; 100 when neither is given.
	Percent float64 `json:"percent"`
}

// BackendProtocol is how the proxy talks to a backend.
type BackendProtocol string

const (
	// BackendHTTP1 is HTTP/1.1 (the default).
	BackendHTTP1 BackendProtocol = "http1"
	// BackendH2C is HTTP/2 over cleartext with prior knowledge (appProtocol kubernetes.io/h2c,
	// and every GRPCRoute backend).
	BackendH2C BackendProtocol = "h2c"
)

// Backend is one weighted backendRef resolved to endpoints.
type Backend struct {
	// Name labels metrics and logs: "namespace/service:port".
	Name     string          `json:"name"`
	Weight   int32           `json:"weight"`
	Protocol BackendProtocol `json:"protocol,omitempty"`
	// Endpoints are the ready addresses of the Service port. Empty means every request this
	// backend is chosen for gets a 500 (HTTP), UNAVAILABLE (gRPC) or a closed connection (TCP).
	Endpoints []Endpoint `json:"endpoints,omitempty"`
	// Filters at backendRef level (HTTP only), applied after the rule's filters.
	Filters []Filter `json:"filters,omitempty"`
	// Invalid, when set, says why this backend has no endpoints (e.g. "service not found").
	Invalid string `json:"invalid,omitempty"`
	// TLS, when set, makes the proxy talk TLS to the endpoints and verify them (a
	// BackendTLSPolicy targets the Service port); nil means cleartext.
	TLS *BackendTLS `json:"tls,omitempty"`
}

// BackendTLS is how the proxy originates TLS to a backend (BackendTLSPolicy). The proxy
// verifies the backend's chain against CACertPEM (or the system roots with SystemCAs) and
// then its name: ServerName, or one of SubjectAltNames when there are any.
type BackendTLS struct {
	// Policy is the BackendTLSPolicy ("namespace/name"), for logs and errors.
	Policy string `json:"policy,omitempty"`
	// ServerName is sent as SNI; without SubjectAltNames the certificate must be valid for it.
	ServerName string `json:"serverName"`
	// CACertPEM holds the PEM CA certificates the backend's chain must lead to (the policy's
	// caCertificateRefs, concatenated). Exactly one of CACertPEM and SystemCAs is set.
	CACertPEM []byte `json:"caCertPEM,omitempty"`
	// SystemCAs verifies against the proxy's system roots (wellKnownCACertificates System).
	SystemCAs bool `json:"systemCAs,omitempty"`
	// SubjectAltNames, when set, replace ServerName in the name check: the certificate must
	// carry at least one of them (BackendTLSPolicySANValidation).
	SubjectAltNames []SubjectAltName `json:"subjectAltNames,omitempty"`
}

// SubjectAltName is one name a backend certificate may carry; exactly one field is set.
type SubjectAltName struct {
	// Hostname is a DNS name, matched as TLS clients match names (a certificate's *.x.com
	// covers a.x.com).
	Hostname string `json:"hostname,omitempty"`
	// URI is compared exactly with the certificate's URI SANs (a SPIFFE ID, say).
	URI string `json:"uri,omitempty"`
}

// Endpoint is a ready address and port.
type Endpoint struct {
	Address string `json:"address"`
	Port    int32  `json:"port"`
}

// GRPCRoute is an attached GRPCRoute.
type GRPCRoute struct {
	RouteMeta
	Rules []GRPCRule `json:"rules"`
}

// GRPCRule is one rule of a GRPCRoute.
type GRPCRule struct {
	Index int `json:"index"`
	// Name is the rule's optional name (GRPCRouteNamedRouteRule), as HTTPRule.Name.
	Name string `json:"name,omitempty"`
	// Matches: any one selects the rule; empty matches every method.
	Matches  []GRPCMatch `json:"matches,omitempty"`
	Filters  []Filter    `json:"filters,omitempty"`
	Backends []Backend   `json:"backends,omitempty"`
}

// GRPCMatch matches a gRPC method and headers.
type GRPCMatch struct {
	Method  *GRPCMethodMatch `json:"method,omitempty"`
	Headers []HeaderMatch    `json:"headers,omitempty"`
}

// GRPCMethodMatch matches service and method; an empty field matches anything.
type GRPCMethodMatch struct {
	Type    MatchType `json:"type"` // Exact or RegularExpression
	Service string    `json:"service,omitempty"`
	Method  string    `json:"method,omitempty"`
}

// TCPRoute is an attached TCPRoute: each connection goes to one backend chosen by weight.
type TCPRoute struct {
	RouteMeta
	Backends []Backend `json:"backends"`
}
