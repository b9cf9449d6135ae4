#!/usr/bin/env bash
# Reference proxy vs nginx (Debian) and Traefik's proxy (when gatecheck has built it) as reverse
# proxies to the same echo backend on loopback, 16 keep-alive connections, alternating rounds
# with the machine's load average printed around each run; prints req/s, p50/p99, CPU per
# request and the ratios (reference-impl/proxy/cmd/bench). Extra arguments go to the bench
# (-duration, -rounds, -conns, -traefik PATH|none, -variants=false, -cpuprofile FILE).
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
PATH="$PATH:/usr/sbin"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# Building is a background job on a shared machine; the measurement itself is not niced (the
# rounds are short and alternate, and the load average is printed with each).
nice -n 10 go build -o "$dir/bench" ./reference-impl/proxy/cmd/bench
"$dir/bench" -duration "${BENCH_DURATION:-5s}" -rounds "${BENCH_ROUNDS:-3}" "$@"
