#!/usr/bin/env bash
# `plughost check` on 1,000 packages (issue 13, acceptance 4).
#
# 1. "mixed": 25 chains of 20 (each chain's last package requires one that
#    is missing, so every chain is skipped), 50 diamonds (two requirers of
#    one base, one of them out of range), 50 packages installed in 3
#    versions with 2 requirers each, and the rest (50) on a cycle; first
#    without libraries (resolution and output size), then with a real
#    library in every package directory.
# 2. "loadable": 50 chains of 20 whose every package resolves, each with a
#    real library: check opens and validates all 1,000 in scanner children
#    (one child for them all, scan.h).
# 3. "unsolvable": 332 packages in 3 versions and a base no version of which
#    suits them and one more requirer: the version search's dead end.
#
# The libraries (resolve/package.c, one per name and version) are compiled
# once and kept under BUILD/bench-resolve-libs. Prints the time of `plughost
# list` (discovery and resolution) and of `plughost check`, best of three
# each (wall time, and CPU time of plughost with its scanner children), the
# output size and bytes per package. Fails if resolution takes 1 s or more,
# check with libraries 1 s of CPU or more, or check prints more than 400
# bytes per package (output linear in the packages).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
build=${1:-build}
bin="$build/plughost"
here=$(cd "$(dirname "$0")" && pwd)
libs="$build/bench-resolve-libs"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$libs"
python3 - "$tmp" <<'PY'
import os, sys
tmp = sys.argv[1]
def layout(root, packages, need):
    def pkg(name, version, extra="", dirname=None):
        d = os.path.join(root, dirname or name)
        os.makedirs(d)
        with open(os.path.join(d, "package.ini"), "w") as f:
            f.write(f"[package]\nname = {name}\nversion = {version}\n{extra}")
        need.append(f"{name} {version} {d}")
    packages(pkg)
def mixed(pkg):
    n = 0
    for c in range(25):  # chains of 20, the last requiring a missing package
        for i in range(20):
            nxt = f"ch{c}_{i + 1}" if i < 19 else f"missing{c}"
            pkg(f"ch{c}_{i}", "1.0.0", f"[requires]\n{nxt} = ^1\n"); n += 1
    for d in range(50):  # diamonds: top -> left, right -> base; right wants another major
        pkg(f"dm{d}_base", "1.5.0"); pkg(f"dm{d}_left", "1.0.0", f"[requires]\ndm{d}_base = ^1.0\n")
        pkg(f"dm{d}_right", "1.0.0", f"[requires]\ndm{d}_base = ^2.0\n")
        pkg(f"dm{d}_top", "1.0.0", f"[requires]\ndm{d}_left = *\ndm{d}_right = *\n"); n += 4
    for v in range(50):  # 3 versions each of 50 packages, two requirers choosing the middle one
        for ver in ("1.0.0", "1.1.0", "2.0.0"):
            pkg(f"mv{v}", ver, "", f"mv{v}-{ver}"); n += 1
        pkg(f"mv{v}_a", "1.0.0", f"[requires]\nmv{v} = ^1.0\n")
        pkg(f"mv{v}_b", "1.0.0", f"[requires]\nmv{v} = >=1.1\n"); n += 2
    for i in range(1000 - n):  # one cycle through the rest
        pkg(f"cy{i}", "1.0.0", f"[requires]\ncy{(i + 1) % (1000 - n)} = *\n")
def loadable(pkg):
    for c in range(50):  # chains of 20, every link present
        for i in range(20):
            pkg(f"ld{c}_{i}", "1.0.0", f"[requires]\nld{c}_{i + 1} = ^1\n" if i < 19 else "")
def unsolvable(pkg):
    for v in range(332):
        for ver in ("1.0.0", "1.1.0", "2.0.0"):
            pkg(f"un{v}", ver, "[requires]\nbase = >=1.0\n", f"un{v}-{ver}")
    for ver in ("1.0.0", "1.1.0", "1.2.0"):
        pkg("base", ver, "", f"base-{ver}")
    pkg("zodd", "1.0.0", "[requires]\nbase = ^2\n")
for name, fn in (("mixed", mixed), ("loadable", loadable), ("unsolvable", unsolvable)):
    need = []
    layout(os.path.join(tmp, name), fn, need)
    with open(os.path.join(tmp, name + ".libs"), "w") as f:
        f.write("\n".join(need) + "\n")
PY

# One library per name and version, compiled once (two at a time) and cached.
cut -d' ' -f1,2 "$tmp/mixed.libs" "$tmp/loadable.libs" | sort -u | while read -r name version; do
  [ -e "$libs/$name-$version.so" ] || echo "$name $version"
done >"$tmp/to_build"
if [ -s "$tmp/to_build" ]; then
  echo "compiling $(wc -l <"$tmp/to_build") package libraries into $libs (once)"
  export libs here
  xargs -P 2 -L 1 sh -c 'cc -std=c11 -shared -fPIC -fvisibility=hidden -O1 \
    -I"$here/../sdk/include" -DPH_PACKAGE_NAME="\"$0\"" -DPH_PACKAGE_VERSION="\"$1\"" \
    -o "$libs/$0-$1.so.tmp" "$here/resolve/package.c" && mv "$libs/$0-$1.so.tmp" "$libs/$0-$1.so"' \
    <"$tmp/to_build"
fi
with_libs() { # ROOT: a copy of ROOT with each package's library in place
  python3 - "$tmp" "$1" "$libs" <<'PY'
import os, shutil, sys
tmp, root, libs = sys.argv[1:]
shutil.copytree(os.path.join(tmp, root), os.path.join(tmp, root + "-libs"))
for line in open(os.path.join(tmp, root + ".libs")):
    name, version, d = line.split()
    d = os.path.join(tmp, root + "-libs", os.path.relpath(d, os.path.join(tmp, root)))
    shutil.copy(os.path.join(libs, f"{name}-{version}.so"), os.path.join(d, name + ".so"))
PY
}
with_libs mixed
with_libs loadable

# best_of CMD ROOT: the best of three runs, in ms of wall time ($best, all
# three in $times) and of CPU time, user + system of plughost and its
# scanner children ($cpu, the best run's): the machine is shared, so the wall
# time shows the load as much as the work. The last run's output is in
# $tmp/out, its exit code in $rc.
best_of() {
  local cmd=$1 root=$2 ms t
  best= times= cpu=
  for _ in 1 2 3; do
    rm -rf "$tmp/data"
    set +e
    { time "$bin" --packages "$root" --data-dir "$tmp/data" --log-level error "$cmd" \
        >"$tmp/out" 2>&1; } 2>"$tmp/time"
    rc=$?
    set -e
    read -r -a t <"$tmp/time" # real user sys, in seconds with 3 decimals
    ms=$(python3 -c "import sys; print(round(float(sys.argv[1]) * 1000))" "${t[0]}")
    times="$times${times:+, }$ms"
    if [ -z "$best" ] || [ "$ms" -lt "$best" ]; then
      best=$ms
      cpu=$(python3 -c "import sys; print(round((float(sys.argv[1]) + float(sys.argv[2])) * 1000))" \
        "${t[1]}" "${t[2]}")
    fi
  done
}
TIMEFORMAT='%3R %3U %3S'
count=$(ls "$tmp/mixed" | wc -l)

best_of list "$tmp/mixed"
list_ms=$best
best_of check "$tmp/mixed"
check_ms=$best check_times=$times check_rc=$rc
bytes=$(wc -c <"$tmp/out")
lines=$(wc -l <"$tmp/out")
echo "$count packages (chains, diamonds, several versions, a cycle), no libraries: resolution" \
  "(plughost list) ${list_ms} ms; plughost check ${check_ms} ms (runs: $check_times ms)," \
  "exit $check_rc, $bytes bytes in $lines lines ($((bytes / count)) bytes per package)"
[ "$check_rc" = 1 ] || { echo "bench_resolve: check should report the problems (exit 1), got $check_rc"; exit 1; }
[ "$list_ms" -lt 1000 ] || { echo "bench_resolve: resolution took ${list_ms} ms (limit 1000)"; exit 1; }
[ "$bytes" -lt $((count * 400)) ] || { echo "bench_resolve: output is not linear"; exit 1; }
figure "resolve: list (resolution) of $count packages" "$list_ms" ms "<=" 999
figure "resolve: check output per package" "$((bytes / count))" B "<=" 399

best_of check "$tmp/mixed-libs"
mixed_ms=$best mixed_times=$times mixed_cpu=$cpu
scanned=$(grep -c '\[ok\] build' "$tmp/out" || true)
echo "the same with a library each: plughost check ${mixed_ms} ms (runs: $mixed_times ms;" \
  "CPU ${mixed_cpu} ms), exit $rc, $scanned packages scanned and ok"
[ "$scanned" -gt 0 ] || { echo "bench_resolve: no package was scanned: $(tail -5 "$tmp/out")"; exit 1; }

best_of check "$tmp/loadable-libs"
load_ms=$best load_times=$times load_cpu=$cpu
scanned=$(grep -c '\[ok\] build' "$tmp/out" || true)
echo "1000 loadable packages (50 chains of 20) with a library each: plughost check ${load_ms} ms" \
  "(runs: $load_times ms; CPU ${load_cpu} ms), exit $rc, $scanned packages scanned and ok"
[ "$rc" = 0 ] && [ "$scanned" = 1000 ] ||
  { echo "bench_resolve: every package should be ok: $(tail -5 "$tmp/out")"; exit 1; }
figure "resolve: check, 1000 packages with libraries" "$load_ms" ms "<=" 999
figure "resolve: check, same, CPU" "$load_cpu" ms "<=" 999

best_of list "$tmp/unsolvable"
echo "$(ls "$tmp/unsolvable" | wc -l) packages, no version of base suits every requirer:" \
  "resolution (plughost list) ${best} ms (runs: $times ms)"
figure "resolve: list, unsolvable 1000-package input" "$best" ms "<=" 999
[ "$best" -lt 1000 ] || { echo "bench_resolve: resolution took ${best} ms (limit 1000)"; exit 1; }
# The limit holds for the work done (CPU time); the wall time is printed, and
# on an idle machine is the same.
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
for ms in "$mixed_cpu" "$load_cpu"; do
  [ "$ms" -lt 1000 ] || { echo "bench_resolve: check with libraries took ${ms} ms of CPU (limit 1000)"; exit 1; }
done
