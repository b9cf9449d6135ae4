// Package status holds the description every cluster provider returns.
package status

// Status describes a cluster as a provider sees it.
type Status struct {
	// Provider is "host", "kind" or "existing".
	Provider string
	// Up is true when the API server answers.
	Up bool
	// Kubeconfig is the path of an admin kubeconfig for the cluster.
	Kubeconfig string
	// KubernetesVersion is the API server's version when it answers.
	KubernetesVersion string
	// LoadBalancerPool is the address range MetalLB gives LoadBalancer Services in a cluster
	// gatecheck created; empty where gatecheck installs no load balancer (existing).
	LoadBalancerPool string
	// Details are provider-specific lines (processes, state dir, node image, ...).
	Details []string
}
