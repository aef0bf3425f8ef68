#!/usr/bin/env bash
# Run by bench/run.sh: CRUD new/get through the router vs raw sqlite3.
# PH_BENCH_DIR picks the disk (default: /tmp); fsync speed decides `new`.
set -euo pipefail
"${1:-build}/bench/bench_crud" 9 200 50000
