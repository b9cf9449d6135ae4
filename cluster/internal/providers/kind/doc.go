// Package kind runs gatecheck's cluster with kind's Go API (sigs.k8s.io/kind/pkg/cluster),
// configured by the repository's kind-config.yaml.
package kind
