#!/usr/bin/env bash
# Builds the pinned upstream binaries the host cluster provider runs, from the Go
# module proxy, into a cache outside the checkout:
#   $GATECHECK_CACHE/kubernetes/v1.37.2/bin/{kube-apiserver,...,kubectl}
#   $GATECHECK_CACHE/containerd/v2.4.2/bin/{containerd,ctr,containerd-shim-runc-v2}
#   $GATECHECK_CACHE/etcd/v3.6.4/bin/etcd
# A component whose bin/.complete marker exists is skipped, so a warm run is instant.
# The Go provider (cluster/host) runs this same script; CI caches $GATECHECK_CACHE.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${GATECHECK_CACHE:-${HOME}/.cache/gatecheck}"
K8S_VERSION="${K8S_VERSION:-v1.37.2}"
CONTAINERD_VERSION="${CONTAINERD_VERSION:-v2.4.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.4}"
export CGO_ENABLED=0
export PATH="/usr/local/go/bin:${PATH}"
export GOCACHE="${GOCACHE:-${CACHE}/gocache}"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
# The links pass -w (no DWARF in the binaries); -dwarf=false spares the compiler making it,
# about a tenth of the compile time (cluster/images NoDWARF).
NODWARF="-gcflags=all=-dwarf=false"

log() { printf '[build-host-binaries %s] %s\n' "$(date -u +%T)" "$*"; }

# What this builds runs as root (the host cluster), so nothing it writes may be changeable
# by anyone else: no group/other write bits, whatever umask the caller has.
umask 022

# root_only refuses a path when it or a directory above it is owned by another user or
# writable by group or others (a sticky directory above, like /tmp, is fine). The provider
# checks the same before running this script and what it built.
root_only() {
  local path="$1" p owner mode
  p="$(readlink -m "${path}")"
  while :; do
    if [[ -e "${p}" ]]; then
      read -r owner mode < <(stat -c '%u %a' "${p}")
      if [[ "${owner}" != 0 ]]; then
        echo "refusing ${path}: ${p} is owned by uid ${owner}, not root; chown -R root:root it and chmod -R go-w, or set GATECHECK_CACHE to a directory only root can write" >&2
        exit 1
      fi
      if (( 8#${mode} & 8#022 )) && ! { [[ "${p}" != "$(readlink -m "${path}")" ]] && (( 8#${mode} & 8#1000 )); }; then
        echo "refusing ${path}: ${p} is writable by group or others (mode ${mode}); chmod go-w it, or set GATECHECK_CACHE to a directory only root can write" >&2
        exit 1
      fi
    fi
    [[ "${p}" == / ]] && break
    p="$(dirname "${p}")"
  done
}
if [[ "${EUID}" == 0 ]]; then
  root_only "${CACHE}"
  root_only "${ROOT}/cluster/host/build"
fi

# progress prints a line every 30 s while a long build runs, so nobody wonders.
progress() {
  local what="$1" pid="$2" start=$SECONDS
  while kill -0 "$pid" 2>/dev/null; do
    sleep 30
    kill -0 "$pid" 2>/dev/null && log "still building ${what} ($((SECONDS - start)) s so far; first build on 2 cores takes ~12 min for kubernetes, ~3 min for containerd, ~1 min for etcd)"
  done
  wait "$pid"
}

build_kubernetes() {
  local out="${CACHE}/kubernetes/${K8S_VERSION}/bin"
  if [[ -f "${out}/.complete" ]]; then log "kubernetes ${K8S_VERSION}: cached in ${out}"; return; fi
  mkdir -p "${out}"
  local minor; minor="$(echo "${K8S_VERSION}" | cut -d. -f2)"
  local ldf="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf="${ldf} -X ${pkg}.gitVersion=${K8S_VERSION} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor} -X ${pkg}.gitTreeState=clean -X ${pkg}.gitCommit=0000000000000000000000000000000000000000 -X ${pkg}.buildDate=2026-01-01T00:00:00Z"
  done
  log "kubernetes ${K8S_VERSION}: building kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl into ${out}"
  local start=$SECONDS
  (cd "${ROOT}/cluster/host/build/kubernetes" && go build -mod=mod -trimpath "${NODWARF}" -ldflags "${ldf}" -o "${out}/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet \
    k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubectl) &
  progress "kubernetes ${K8S_VERSION}" $!
  touch "${out}/.complete"
  log "kubernetes ${K8S_VERSION}: built in $((SECONDS - start)) s"
}

build_containerd() {
  local out="${CACHE}/containerd/${CONTAINERD_VERSION}/bin"
  if [[ -f "${out}/.complete" ]]; then log "containerd ${CONTAINERD_VERSION}: cached in ${out}"; return; fi
  mkdir -p "${out}"
  log "containerd ${CONTAINERD_VERSION}: building containerd ctr containerd-shim-runc-v2 into ${out}"
  local start=$SECONDS
  # One go install for the three commands: their shared packages compile once and they link
  # in parallel.
  local pkgs=()
  for c in containerd ctr containerd-shim-runc-v2; do pkgs+=("github.com/containerd/containerd/v2/cmd/${c}@${CONTAINERD_VERSION}"); done
  (export GOBIN="${out}"; go install -trimpath "${NODWARF}" -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=${CONTAINERD_VERSION}" "${pkgs[@]}") &
  progress "containerd ${CONTAINERD_VERSION}" $!
  touch "${out}/.complete"
  log "containerd ${CONTAINERD_VERSION}: built in $((SECONDS - start)) s"
}

build_etcd() {
  local out="${CACHE}/etcd/${ETCD_VERSION}/bin"
  if [[ -f "${out}/.complete" ]]; then log "etcd ${ETCD_VERSION}: cached in ${out}"; return; fi
  mkdir -p "${out}"
  log "etcd ${ETCD_VERSION}: building etcd into ${out}"
  local start=$SECONDS
  # A nested module: plain `go install go.etcd.io/etcd/server/v3@...` refuses its replace directives.
  (cd "${ROOT}/cluster/host/build/etcd" && go build -mod=mod -trimpath "${NODWARF}" -ldflags "-s -w" -o "${out}/etcd" go.etcd.io/etcd/server/v3) &
  progress "etcd ${ETCD_VERSION}" $!
  touch "${out}/.complete"
  log "etcd ${ETCD_VERSION}: built in $((SECONDS - start)) s"
}

what="${1:-all}"
case "${what}" in
  all)
    # Concurrently: one build's module downloads and single-threaded links fill the other's
    # idle CPU (on 2 cores, about a minute of a fresh machine's first run).
    pids=()
    build_etcd & pids+=($!)
    build_containerd & pids+=($!)
    build_kubernetes & pids+=($!)
    failed=0
    for pid in "${pids[@]}"; do wait "${pid}" || failed=1; done
    exit "${failed}" ;;
  kubernetes) build_kubernetes ;;
  containerd) build_containerd ;;
  etcd) build_etcd ;;
  *) echo "usage: $0 [all|kubernetes|containerd|etcd]" >&2; exit 2 ;;
esac
