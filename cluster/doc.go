// Package cluster brings up, describes and tears down the Kubernetes cluster gatecheck runs
// against: kind, a real single-node cluster on this host, or an existing one.
package cluster
