package ir

// Config delivery between the reference controller and its proxies.
//
// The controller serves, on its xDS-like delivery port (default 18000), over mutual TLS: the
// proxy presents the certificate the controller issued for its Gateway (a URI SAN
// spiffe://gatecheck.dev/ns/<namespace>/gateway/<name>, signed by the controller's own CA)
// and may read and acknowledge only that Gateway:
//
//	GET  /v1/snapshots/{namespace}/{gateway}?proxy={podName}
//	     A never-ending response of Content-Type application/x-ndjson: one Update JSON per
//	     line, the way delta xDS works. The first line is the Gateway's full state (BaseVersion
//	     0); every later line is a delta from the version before it: the Gateway-level part
//	     when it changed, the routes upserted and the routes deleted, keyed by route. A proxy
//	     applies a delta only on the version it names as its base, and otherwise reconnects,
//	     which gets it the full state again. An empty line is sent every HeartbeatInterval so
//	     both sides notice a dead connection. 403 for another Gateway's certificate, 404 for a
//	     Gateway without configuration.
//	POST /v1/acks
//	     Body: an Ack. The proxy posts it after it has applied (or rejected) a version; 409
//	     unless that proxy has a stream open and was sent that version.
//
// A Gateway is Programmed only once every ready proxy Pod of that Gateway has acknowledged the
// current Version without error, so tests never run against a stale data plane.

import "time"

const (
	// SnapshotsPath is the prefix of the snapshot stream endpoint.
	SnapshotsPath = "/v1/snapshots/"
	// AcksPath is the ack endpoint.
	AcksPath = "/v1/acks"
	// DefaultDeliveryPort is where the controller serves snapshots.
	DefaultDeliveryPort = 18000
	// HeartbeatInterval is how often an idle stream carries an empty line.
	HeartbeatInterval = 10 * time.Second
)

// Ack reports what a proxy did with a snapshot version.
type Ack struct {
	Gateway NamespacedName `json:"gateway"`
	// Proxy is the proxy Pod's name.
	Proxy   string `json:"proxy"`
	Version int64  `json:"version"`
	// Error is empty when the version was applied; otherwise why it was rejected (the proxy
	// keeps serving the previous version).
	Error string `json:"error,omitempty"`
}

// Update is one line of a Gateway's delivery stream: its full state (BaseVersion 0), or what
// changed from BaseVersion to Version. Package delta computes and applies them.
type Update struct {
	Schema  string         `json:"schema,omitempty"`
	Gateway NamespacedName `json:"gateway"`
	Version int64          `json:"version"`
	// BaseVersion is the version this delta applies to; 0 means the full state, which
	// replaces whatever the proxy had.
	BaseVersion int64 `json:"baseVersion,omitempty"`
	// Head is the Gateway-level part: always in the full state, in a delta only when it
	// changed.
	Head *Head `json:"head,omitempty"`
	// Upserts are the routes added or changed, whole (every listener they attach to).
	Upserts []RouteEntry `json:"upserts,omitempty"`
	// Deletes are the routes gone.
	Deletes []RouteKey `json:"deletes,omitempty"`
}

// Head is the part of a Snapshot that is not routes: the listeners with their route lists
// empty, and the backend client certificate.
type Head struct {
	BackendClientCertificate *Certificate `json:"backendClientCertificate,omitempty"`
	Listeners                []Listener   `json:"listeners"`
}

// RouteKind names a listener's route list.
type RouteKind string

const (
	KindHTTPRoute RouteKind = "HTTPRoute"
	KindGRPCRoute RouteKind = "GRPCRoute"
	KindTCPRoute  RouteKind = "TCPRoute"
	KindUDPRoute  RouteKind = "UDPRoute"
	KindTLSRoute  RouteKind = "TLSRoute"
)

// RouteKey identifies a route within a Gateway's configuration. Name is the route's name, with
// "#2", "#3"... appended when a snapshot holds the same route more than once on a listener.
type RouteKey struct {
	Kind      RouteKind `json:"kind"`
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
}

func (k RouteKey) String() string { return string(k.Kind) + " " + k.Namespace + "/" + k.Name }

// RouteEntry is one route as attached to each of its listeners.
type RouteEntry struct {
	RouteKey
	Attachments []Attachment `json:"attachments"`
}

// Attachment is a route on one listener (its hostnames intersected with that listener's):
// exactly the field of the key's kind is set.
type Attachment struct {
	Listener string     `json:"listener"`
	HTTP     *HTTPRoute `json:"http,omitempty"`
	GRPC     *GRPCRoute `json:"grpc,omitempty"`
	TCP      *TCPRoute  `json:"tcp,omitempty"`
	UDP      *UDPRoute  `json:"udp,omitempty"`
	TLS      *TLSRoute  `json:"tls,omitempty"`
}
