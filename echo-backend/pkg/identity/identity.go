// Package identity names the backend instance that answered a request, so every echo (HTTP,
// gRPC, TCP) and every record can be traced to one Pod of one Service.
package identity

// Identity is who answered. Field names follow upstream echo-basic's JSON where they overlap.
type Identity struct {
	// Backend is a free-form label set by the BACKEND env var (e.g. "v1", "mirror").
	Backend   string `json:"backend"`
	Pod       string `json:"pod"`
	Namespace string `json:"namespace"`
	Service   string `json:"service"`
	// Ingress mirrors echo-basic's INGRESS_NAME; kept only so that our JSON is a superset.
	Ingress string `json:"ingress"`
}

// FromEnv reads BACKEND, POD_NAME, NAMESPACE, SERVICE_NAME and INGRESS_NAME through getenv
// (os.Getenv in production, a map in tests).
func FromEnv(getenv func(string) string) Identity {
	return Identity{
		Backend:   getenv("BACKEND"),
		Pod:       getenv("POD_NAME"),
		Namespace: getenv("NAMESPACE"),
		Service:   getenv("SERVICE_NAME"),
		Ingress:   getenv("INGRESS_NAME"),
	}
}
