# Sourced by the shell benchmarks: the twin of bench/report.h.
# figure NAME VALUE UNIT CMP TARGET: prints "NAME VALUE target CMP TARGET ok|MISS"
# and appends the figure to $PH_BENCH_RESULTS (when set) for the summary table.
figure() {
  local verdict
  verdict=$(awk -v v="$2" -v c="$4" -v t="$5" 'BEGIN { ok = (c == "<=") ? v <= t : v >= t; print ok ? "ok" : "MISS" }')
  printf '  %-46s %9.3f%-3s target %s %s%s  %s\n' "$1" "$2" "$3" "$4" "$5" "$3" "$verdict"
  if [ -n "${PH_BENCH_RESULTS:-}" ]; then
    printf '%s\t%.3f\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$verdict" >>"$PH_BENCH_RESULTS"
  fi
}

# A port nobody listens on (the kernel picks it; the race to reuse it is harmless here).
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The median of the numbers on stdin, one per line.
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
