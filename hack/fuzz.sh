#!/usr/bin/env bash
# Runs every Fuzz* target in the module for the given time each (default 5s).
set -euo pipefail
T="${1:-5s}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
fail=0
while IFS=: read -r file name; do
  pkg="./$(dirname "$file")"
  echo "== fuzz ${pkg} ${name} for ${T}"
  go test -run '^$' -fuzz "^${name}\$" -fuzztime "${T}" -fuzzminimizetime 0 "${pkg}" || fail=1
done < <(grep -rEo --include='*_test.go' '^func (Fuzz[A-Za-z0-9_]+)' . | sed -E 's#^\./##; s#func ##')
exit $fail
