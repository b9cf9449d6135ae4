#!/usr/bin/env bash
# Copies the Gateway API CRDs of the pinned module version into install/gatewayapi/crds so the
# binary embeds them (no network at install time). Run after bumping sigs.k8s.io/gateway-api.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
DIR="$(go list -m -f '{{.Dir}}' sigs.k8s.io/gateway-api)"
for ch in standard experimental; do
  rm -rf "install/gatewayapi/crds/${ch}"
  mkdir -p "install/gatewayapi/crds/${ch}"
  cp "${DIR}/config/crd/${ch}/"*.yaml "install/gatewayapi/crds/${ch}/"
  rm -f "install/gatewayapi/crds/${ch}/kustomization.yaml"
  chmod 644 "install/gatewayapi/crds/${ch}/"*.yaml
done
echo "copied CRDs from ${DIR}"
