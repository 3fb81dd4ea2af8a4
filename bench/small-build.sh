#!/usr/bin/env bash
# One-shot build of a small site (3 pages, one fenced Rust block, so the code
# highlighter's grammars are loaded) with one or more sited binaries, alternating runs:
# what a small build pays for the syntax set. Prints the median wall time
# per binary. Usage: bench/small-build.sh [RUNS] [SITED ...] (default 15, and
# target/release/sited, built first).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-15}
shift || true
if [ "$#" -eq 0 ]; then
  cargo build --release --quiet -p sited
  set -- target/release/sited
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
site="$work/site"
mkdir -p "$site/content"
printf 'title = "small"\nbase_url = "http://127.0.0.1/"\n' > "$site/site.toml"
printf '# Home\n\nA small site.\n' > "$site/content/_index.md"
printf '# About\n\nNo code here.\n' > "$site/content/about.md"
printf '# Code\n\n```rust\nfn main() {\n    println!("hi");\n}\n```\n' > "$site/content/code.md"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for run in $(seq 1 "$runs"); do
  for bin in "$@"; do
    rm -rf "$work/out"
    start=$(date +%s%N)
    "$bin" build "$site" --out "$work/out" > /dev/null
    end=$(date +%s%N)
    echo "$bin $(( (end - start) / 1000 ))" >> "$work/results"
  done
done
for bin in "$@"; do
  grep -F "$bin " "$work/results" | awk '{print $2}' | sort -n |
    awk -v bin="$bin" '{a[NR]=$1/1000} END {printf "%s: median wall %.1f ms, min %.1f, max %.1f (n=%d)\n", bin, a[int((NR+1)/2)], a[1], a[NR], NR}'
done
