#!/usr/bin/env bash
# Reference proxy vs nginx (Debian) as reverse proxies to the same echo backend on loopback,
# 16 keep-alive connections; prints req/s, p50/p99 for both and the ratios.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
  if [[ $(id -u) -eq 0 ]]; then
    echo "installing nginx-light (apt) for the comparison"
    (apt-get install -y nginx-light >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y nginx-light >/dev/null; })
  else
    echo "nginx is not installed and we are not root: skipping the proxy-vs-nginx benchmark" >&2
    exit 0
  fi
fi
go run ./reference-impl/proxy/cmd/bench -duration "${BENCH_DURATION:-5s}" -rounds "${BENCH_ROUNDS:-2}"
