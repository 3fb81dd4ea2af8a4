#!/usr/bin/env bash
# Shutdown speed and idle cost: 50 small sites up, SIGTERM to a foreground sited, time
# until every port can be bound again and the process is gone (median of 10 runs, with
# and without a live-reload client per site); VmRSS with 0 and 50 sites; CPU time over
# 10 idle seconds. Builds release binaries, runs the harness (bench/src/bin/shutdown.rs).
# Usage: bench/shutdown.sh [RUNS] [SITES]
set -euo pipefail
cd "$(dirname "$0")/.."
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr)"
cargo build --release --quiet -p sited -p sitectl -p sited-bench
target="${CARGO_TARGET_DIR:-target}"
"$target/release/shutdown" "${1:-10}" "${2:-50}"
