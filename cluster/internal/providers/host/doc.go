// Package host runs a real single-node Kubernetes cluster on this machine from pinned
// upstream binaries (etcd, containerd + runc, kube-apiserver, kube-controller-manager,
// kube-scheduler, kubelet, kube-proxy), like hack/local-up-cluster.sh, for machines where
// kind cannot run. Everything it writes lives under one state dir.
package host
