#!/usr/bin/env bash
# Reference proxy vs nginx (Debian) and Traefik's proxy (when gatecheck has built it) as reverse
# proxies to the same echo backend on loopback, 16 keep-alive connections, alternating rounds
# with the machine's load average printed around each run; prints req/s, p50/p99, CPU per
# request and the ratios (reference-impl/proxy/cmd/bench). Extra arguments go to the bench
# (-duration, -rounds, -conns, -traefik PATH|none, -variants=false, -cpuprofile FILE).
#
# Around the run it also prints how the machine's CPU time was split (user, nice, system,
# softirq, idle, from /proc/stat) and the busiest other processes with their nice values: on a
# shared machine, other engineers' builds at nice 19 take a share of the CPU that differs from
# run to run, and every figure above depends on it (the load average alone does not tell
# niced work from the bench's own).
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

# cpu_split BEFORE AFTER: the share of each kind of CPU time between two /proc/stat "cpu" lines.
cpu_split() {
  local -a a b
  read -ra a <<<"$1"
  read -ra b <<<"$2"
  local i total=0 d=()
  for i in 1 2 3 4 5 6 7 8; do
    d[i]=$((${b[i]:-0} - ${a[i]:-0}))
    total=$((total + d[i]))
  done
  ((total > 0)) || return 0
  awk -v u="${d[1]}" -v n="${d[2]}" -v s="${d[3]}" -v id="$((d[4] + d[5]))" -v irq="$((d[6] + d[7]))" -v st="${d[8]}" -v t="$total" \
    'BEGIN { printf "machine CPU during the run: user %.1f%%, nice (background at nice > 0) %.1f%%, system %.1f%%, irq+softirq %.1f%%, idle+iowait %.1f%%, steal %.1f%%\n", 100*u/t, 100*n/t, 100*s/t, 100*irq/t, 100*id/t, 100*st/t }'
}

busiest() {
  echo "busiest processes ($1; NI = nice value, %CPU over each one's lifetime):"
  ps -eo pid,ni,pcpu,etime,comm --sort=-pcpu | head -6 | sed 's/^/  /'
}

# Building is a background job on a shared machine; the measurement itself is not niced (the
# rounds are short and alternate, and the load average is printed with each).
nice -n 10 go build -o "$dir/bench" ./reference-impl/proxy/cmd/bench
busiest "before the run"
before=$(head -1 /proc/stat)
status=0
"$dir/bench" -duration "${BENCH_DURATION:-5s}" -rounds "${BENCH_ROUNDS:-3}" "$@" || status=$?
after=$(head -1 /proc/stat)
echo
cpu_split "$before" "$after"
busiest "after the run"
exit "$status"
