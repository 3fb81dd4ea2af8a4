#!/usr/bin/env bash
# Edit → reload event on a Hugo site with its own layouts (tests/fixtures/hugo-site):
# sited supervising `hugo` against `hugo server`'s own live reload, side by side.
# Installs hugo when missing, builds release binaries, runs the harness
# (bench/src/bin/generator-reload.rs). Usage: bench/generator-reload.sh [EDITS]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v hugo >/dev/null; then
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends hugo
fi
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr)"
echo "hugo: $(hugo version | cut -d' ' -f1-2)"
cargo build --release --quiet -p sited -p sitectl -p sited-bench
target/release/generator-reload "${1:-15}"
