#!/usr/bin/env bash
# Scale (issue 17.7): the tldr corpus copied K times over (default K = 1, 4, 14: up to
# about 104,000 pages); at each size a one-shot build against hugo (wall, peak RSS), and
# through the daemon `up` → first page, the whole first build, the daemon's RSS and
# write → reload event. Harness: bench/src/bin/scale.rs.
# Usage: bench/scale.sh [RUNS] [EDITS] [K...] (defaults 3, 10, 1 4 14).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v hugo >/dev/null || ! [ -x /usr/bin/time ]; then
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends hugo time
fi
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "hugo: $(hugo version | cut -d' ' -f1-2)"
cargo build --release --quiet -p sited -p sitectl -p sited-bench
target/release/scale "$@"
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
