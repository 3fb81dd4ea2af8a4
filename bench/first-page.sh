#!/usr/bin/env bash
# `sitectl up` → first page served on the tldr corpus (issue 17.2), before and after, with
# `hugo server`'s start → first page beside them, in one run, interleaved (harness
# bench/src/bin/first-page.rs). "after" is this tree; "before" is the git ref BASE
# (default `main`), built from a copy of it into target/first-page-base (first seeded
# with a copy of target/release, so only the workspace's crates are compiled: sharing
# target/ itself would not do, as cargo names a path crate's artifacts by its path in
# the workspace, so the two trees' crates would overwrite each other's), or BEFORE_BIN,
# a folder holding its `sited` and `sitectl`. Usage: bench/first-page.sh [RUNS]
# (default 7).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-7}
root=$PWD
if ! command -v hugo >/dev/null; then
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends hugo
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/before" "$work/after" "$work/base"
if [ -n "${BEFORE_BIN:-}" ]; then
  cp "$BEFORE_BIN/sited" "$BEFORE_BIN/sitectl" "$work/before/"
else
  base=${BASE:-main}
  git archive "$base" | tar -x -C "$work/base"
  base_target="$root/target/first-page-base"
  if [ ! -d "$base_target/release" ] && [ -d target/release ]; then
    mkdir -p "$base_target" && cp -a target/release "$base_target/"
  fi
  (cd "$work/base" && CARGO_TARGET_DIR="$base_target" cargo build --release --quiet --locked -p sited -p sitectl)
  cp "$base_target/release/sited" "$base_target/release/sitectl" "$work/before/"
fi
cargo build --release --quiet --locked -p sited -p sitectl -p sited-bench
cp target/release/sited target/release/sitectl "$work/after/"
if cmp -s "$work/before/sited" "$work/after/sited"; then
  echo "warning: before and after are the same sited binary" >&2
fi
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "before: ${BEFORE_BIN:-$(git rev-parse --short "${BASE:-main}")}; after: $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (+ uncommitted changes)')"
echo "hugo: $(hugo version | cut -d' ' -f1-2)"
target/release/first-page "$runs" "before=$work/before" "after=$work/after"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
