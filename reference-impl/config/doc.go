// Package config embeds the reference controller's manifests (namespace, RBAC, Deployment,
// Service, GatewayClass) so the installer can apply them.
package config
