#!/usr/bin/env bash
# Reload latency: sited's daemon against `hugo server`, on the same copy of the tldr
# corpus (7,425 pages). Installs hugo when missing, builds release binaries, runs the
# harness (bench/src/bin/reload-latency.rs). Usage: bench/reload-latency.sh [EDITS]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v hugo >/dev/null; then
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends hugo
fi
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr)"
echo "hugo: $(hugo version | cut -d' ' -f1-2)"
cargo build --release --quiet -p sited -p sitectl -p sited-bench
target/release/reload-latency "${1:-25}"
