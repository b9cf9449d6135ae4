// Package gatecheck holds the files a gatecheck binary needs at run time when there is no
// source tree around it (`go install .../cmd/gatecheck@version`, the container image): the
// implementation profiles, the manifests they install and kind-config.yaml. cluster.FilesRoot
// writes them out when no checkout is found.
package gatecheck

import "embed"

// Files are impls/, reference-impl/config/ and kind-config.yaml, at their paths in the module,
// so profiles' relative paths (../../reference-impl/config/*.yaml) resolve as in a checkout.
//
//go:embed impls reference-impl/config kind-config.yaml
var Files embed.FS
