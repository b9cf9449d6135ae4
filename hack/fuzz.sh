#!/usr/bin/env bash
# Runs every Fuzz* target in the module for the given time each (default 5s).
#
# Go 1.26's fuzz coordinator can end a duration-bounded run with a bare
# "context deadline exceeded" failure when -fuzztime expires while a worker is mid-call
# (go.dev/issue/75804, fixed in Go 1.27): nothing was found and no failing input is written.
# A target that fails that way, and only that way, is run once more; any other failure (a
# written failing input, a panic, a t.Fatal message) fails at once, and a second deadline
# failure fails too.
set -euo pipefail
T="${1:-5s}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="$(mktemp)"
trap 'rm -f "$out"' EXIT

# deadline_race reports whether the log in $1 is that coordinator race and nothing else.
deadline_race() {
  grep -q '^    context deadline exceeded$' "$1" &&
    ! grep -qE 'Failing input written|panic:|_test\.go:[0-9]+:' "$1"
}

fail=0
while IFS=: read -r file name; do
  pkg="./$(dirname "$file")"
  for attempt in 1 2; do
    echo "== fuzz ${pkg} ${name} for ${T}"
    if go test -run '^$' -fuzz "^${name}\$" -fuzztime "${T}" -fuzzminimizetime 0 "${pkg}" 2>&1 | tee "$out"; then
      break
    fi
    if [[ $attempt == 1 ]] && deadline_race "$out"; then
      echo "== ${name}: only Go's fuzztime deadline race (go.dev/issue/75804), no input found; running it again"
      continue
    fi
    fail=1
    break
  done
done < <(grep -rEo --include='*_test.go' '^func (Fuzz[A-Za-z0-9_]+)' . | sed -E 's#^\./##; s#func ##')
exit $fail
