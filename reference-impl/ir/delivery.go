package ir

// Config delivery between the reference controller and its proxies.
//
// The controller serves, on its xDS-like delivery port (default 18000), over mutual TLS: the
// proxy presents the certificate the controller issued for its Gateway (a URI SAN
// spiffe://gatecheck.dev/ns/<namespace>/gateway/<name>, signed by the controller's own CA)
// and may read and acknowledge only that Gateway:
//
//	GET  /v1/snapshots/{namespace}/{gateway}?proxy={podName}
//	     A never-ending response of Content-Type application/x-ndjson: one Snapshot JSON per
//	     line, the current one first, then a new line each time the Gateway's Version changes.
//	     An empty line is sent every HeartbeatInterval so both sides notice a dead connection.
//	     403 for another Gateway's certificate, 404 for a Gateway without configuration.
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
