#!/usr/bin/env bash
# Builds into an existing output on the ext4 disk (issue 17 item 1): `sited build`
# against `hugo` on the same copy of the tldr corpus (7,425 pages, the setup of
# build-vs-hugo.sh), with `cp -r` of sited's output tree as the file system's floor.
# Three cases, runs alternating between the tools: a fresh output (the folder removed
# first), a rebuild with nothing changed, and a rebuild after one page changed. Prints
# raw wall times, medians and ratios against Hugo. Usage: bench/build-in-place.sh [RUNS]
# (default 5). `ATOMIC=1` adds sited's `--atomic` (whole-tree swap) beside them;
# `FORCE=1` adds sited's `--force` (every page rendered, nothing kept from the last
# build); `BASELINE=PATH` adds another sited binary (an earlier build, "before").
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
cargo build --release --quiet -p sited
# On the disk on purpose (not tmpfs): what is measured is how each tool meets it.
work=$(mktemp -d -p "${TMPDIR:-/tmp}")
trap 'rm -rf "$work"' EXIT
site="$work/site"
mkdir -p "$site/layouts/_default"
cp -r ../shared/corpus/tldr/content "$site/content"
find "$site/content" -name '*.md' -exec sed -i -e 's/{{</{ {</g' -e 's/{{%/{ {%/g' {} +
printf 'base_url = "http://127.0.0.1/"\n' > "$site/site.toml"
cat > "$site/hugo.toml" <<'TOML'
baseURL = "http://127.0.0.1/"
title = "tldr"
disableKinds = ["taxonomy", "term", "RSS"]
TOML
cat > "$site/layouts/_default/single.html" <<'HTML'
<!doctype html><html><head><title>{{ .Title }}</title></head><body><h1>{{ .Title }}</h1>{{ .Content }}</body></html>
HTML
cat > "$site/layouts/_default/list.html" <<'HTML'
<!doctype html><html><head><title>{{ .Title }}</title></head><body><h1>{{ .Title }}</h1><ul>{{ range .Pages }}<li><a href="{{ .RelPermalink }}">{{ .Title }}</a></li>{{ end }}</ul></body></html>
HTML
cat > "$site/layouts/404.html" <<'HTML'
<!doctype html><html><body>Not found</body></html>
HTML
page=$(find "$site/content" -name 'tar.md' | head -1)

echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg), $(df -T "$work" | awk 'NR==2{print $2}') at $work"
echo "hugo: $(hugo version | cut -d' ' -f1-2); sited: $(target/release/sited --version)"
echo "pages: $(find "$site/content" -name '*.md' | wc -l); edited page: ${page#"$site/"}"
results="$work/results"
: > "$results"
timed() { # timed TOOL CASE COMMAND...
  local tool=$1 case=$2
  shift 2
  /usr/bin/time -f "%e" -o "$work/time" "$@" > /dev/null 2>&1
  echo "$tool $case $(cat "$work/time")" | tee -a "$results"
}
tools=(sited hugo)
[ "${ATOMIC:-0}" = 1 ] && tools+=(sited-atomic)
[ "${FORCE:-0}" = 1 ] && tools+=(sited-force)
[ -n "${BASELINE:-}" ] && tools+=(baseline)
for run in $(seq 1 "$runs"); do
  echo "run $run"
  for tool in "${tools[@]}"; do
    out="$work/out-$tool"
    case $tool in
      sited) cmd=(target/release/sited build "$site" --out "$out") ;;
      sited-atomic) cmd=(target/release/sited build "$site" --out "$out" --atomic) ;;
      sited-force) cmd=(target/release/sited build "$site" --out "$out" --force) ;;
      baseline) cmd=("$BASELINE" build "$site" --out "$out") ;;
      hugo) cmd=(hugo --quiet --source "$site" --destination "$out") ;;
    esac
    rm -rf "$out"
    sync
    timed "$tool" fresh "${cmd[@]}"
    timed "$tool" unchanged "${cmd[@]}"
    printf '\nEdited in run %s by %s.\n' "$run" "$tool" >> "$page"
    timed "$tool" one-page "${cmd[@]}"
  done
  rm -rf "$work/cp"
  sync
  timed cp fresh cp -r "$work/out-sited" "$work/cp"
done
python3 - "$results" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
med = {}
for tool, case, wall in rows:
    med.setdefault((tool, case), []).append(float(wall))
for case in ("fresh", "unchanged", "one-page"):
    hugo = statistics.median(med[("hugo", case)])
    for tool in ("sited", "sited-atomic", "sited-force", "baseline", "hugo", "cp"):
        if (tool, case) not in med:
            continue
        m = statistics.median(med[(tool, case)])
        raw = " ".join(f"{w:.2f}" for w in med[(tool, case)])
        print(f"{case:9} {tool:12} median {m:6.2f} s  ({m / hugo:.2f}x hugo)  raw: {raw}")
PY
