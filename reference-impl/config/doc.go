// Package config holds the reference implementation's manifests (namespace, RBAC, controller
// Deployment and Service, GatewayClass), which the reference profile applies
// (impls/reference/profile.yaml); its tests check them.
package config
