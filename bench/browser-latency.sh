#!/usr/bin/env bash
# Save → updated page in headless Chromium, on a copy of the example blog: a text edit
# morphed in place, a head edit (full reload) and a stylesheet swap, side by side in one
# run; then again with a long chapter of the Rust book added to the post (a long page).
# Builds release binaries and runs the harness (bench/src/bin/browser-latency.rs).
# Usage: bench/browser-latency.sh [EDITS]
set -euo pipefail
cd "$(dirname "$0")/.."
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "browser: $(/usr/bin/chromium --version 2>/dev/null | head -1)"
cargo build --release --quiet -p sited -p sitectl -p sited-bench
target/release/browser-latency "${1:-25}"
article=../shared/corpus/rust-book/content/ch02-00-guessing-game-tutorial.md
if [ -f "$article" ]; then
  echo
  echo "long page: the post with $article added"
  target/release/browser-latency "${1:-25}" "$article"
fi
