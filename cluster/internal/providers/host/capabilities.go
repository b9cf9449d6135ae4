package host

// The capabilities stand apart from host.go only so they do not collide with the edits under
// way there (MetalLB); they belong beside Kubeconfig.

// Owned is true: Up started the cluster, Down stops it and removes its state.
func (p *Provider) Owned() bool { return true }

// CanLoadImages is true: LoadImages imports archives into the cluster's containerd.
func (p *Provider) CanLoadImages() bool { return true }
