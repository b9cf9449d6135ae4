// Package images builds gatecheck's container images from Go main packages with
// go-containerregistry (static binary on an empty base, no container engine) and writes them
// as docker-archive tarballs that containerd and kind load.
package images
