#!/usr/bin/env bash
# make bench: every benchmark, each printing ratios against a baseline
# measured in the same run, each figure with its target and ok/MISS; then a
# summary table of all the figures.
#
#   bench/run.sh [BUILD_DIR]
#   env: ONLY=router,crud,...  run only these pieces (names below)
#        STRICT=1              exit non-zero on a MISS or a failed benchmark
set -uo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
pieces=(router reload crud startup resolve many http)
declare -A title=(
  [router]="router overhead"
  [reload]="hot reload: gate overhead, gate-closed time per swap, write -> serving"
  [crud]="CRUD new/get and group commit vs raw sqlite3"
  [startup]="start-up of 1,000 packages vs the dlopen+dlsym floor; 400 model packages restart"
  [resolve]="check/list on 1,000 packages (resolution)"
  [many]="1,000 model packages under a soft open-file limit of 1024"
  [http]="HTTP gateway vs bare libmicrohttpd, nginx+Lua, and a hand-written CRUD service"
)
run_piece() {
  case "$1" in
    router) "$build/bench/bench_router" "$build/packages" 11 ;;
    reload) "$build/bench/bench_reload" "$build/packages" 11 ;;
    *) bash "$here/bench_$1.sh" "$build" ;;
  esac
}
only=",${ONLY:-},"
for p in ${ONLY//,/ }; do
  [[ " ${pieces[*]} " == *" $p "* ]] || { echo "bench: unknown piece '$p' (pieces: ${pieces[*]})"; exit 2; }
done
results=$(mktemp)
trap 'rm -f "$results"' EXIT
export PH_BENCH_RESULTS=$results
failed=()
for p in "${pieces[@]}"; do
  [ "$only" = ",," ] || [[ "$only" == *",$p,"* ]] || continue
  [ -e "$here/bench_$p.sh" ] || [ -x "$build/bench/bench_$p" ] || continue
  echo "== $p: ${title[$p]} =="
  run_piece "$p" || { echo "bench: $p failed (exit $?)"; failed+=("$p"); }
done
misses=$(awk -F'\t' '$6 == "MISS"' "$results" | wc -l)
echo
echo "== summary: $(wc -l <"$results") figures, $misses MISS, ${#failed[@]} benchmark(s) failed =="
awk -F'\t' '{ printf "  %-46s %9s%-3s %s %s%s  %s\n", $1, $2, $3, $4, $5, $3, $6 }' "$results"
[ ${#failed[@]} -eq 0 ] || echo "  failed: ${failed[*]}"
if [ "${STRICT:-0}" = 1 ] && { [ "$misses" -gt 0 ] || [ ${#failed[@]} -gt 0 ]; }; then
  echo "bench: STRICT=1 and $misses MISS, ${#failed[@]} failed"
  exit 1
fi
exit 0
