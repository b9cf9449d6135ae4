// Package loadbalancer installs MetalLB in the clusters gatecheck creates, so the
// LoadBalancer Services most Gateway implementations provision get an address.
package loadbalancer
