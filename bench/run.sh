#!/usr/bin/env bash
# make bench: every benchmark, each printing ratios against a baseline
# measured in the same run.
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
echo "== router overhead =="
"$build/bench/bench_router" "$build/packages" 11
echo "== hot reload: gate overhead, gate-closed time per swap, write -> serving =="
"$build/bench/bench_reload" "$build/packages" 11
for extra in "$here"/bench_*.sh; do
  [ -e "$extra" ] || continue
  echo "== $(basename "$extra" .sh) =="
  bash "$extra" "$build"
done
