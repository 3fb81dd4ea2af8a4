#!/usr/bin/env bash
# One-shot build of the tldr corpus (7,425 pages): `sited build` against `hugo`, on the
# same copy (with `{{<` and `{{%` escaped, which Hugo would read as shortcodes), the same
# work (every page, section listings, home, 404 and sitemap; no feeds: the pages have no
# dates; no taxonomies), alternating runs. Prints median wall time, CPU time and peak RSS
# for both and the ratios. Usage: bench/build-vs-hugo.sh [RUNS] (default 5).
# Both render the same minimal templates: Hugo its `layouts/`, sited its `templates/`
# (the same HTML, written in each one's language). `theme` is sited on the same content
# with its default theme instead (navigation, breadcrumbs, pager, table of contents: more
# work per page than Hugo is given), as this script measured before 2026-12-03.
# `BASELINE=PATH` adds another sited binary (an earlier build, "before") to each run.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
if ! command -v hugo >/dev/null; then
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends hugo
fi
cargo build --release --quiet -p sited
# On tmpfs when there is one: this machine's disk gets slower with every thousand files
# created and deleted (both tools' system time grows run after run), which would measure
# the disk's history, not the tools. Both tools get the same place either way.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
  work=$(mktemp -d -p /dev/shm)
else
  work=$(mktemp -d)
fi
trap 'rm -rf "$work"' EXIT
site="$work/site"
mkdir -p "$site/layouts/_default"
cp -r ../shared/corpus/tldr/content "$site/content"
find "$site/content" -name '*.md' -exec sed -i -e 's/{{</{ {</g' -e 's/{{%/{ {%/g' {} +
# Both tools get the same absolute base URL (sited warns without one).
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
# sited's default theme, for the `theme` row: the same content, no templates of its own.
theme_site="$work/theme-site"
mkdir -p "$theme_site"
cp -r "$site/content" "$site/site.toml" "$theme_site/"
# The same pages in sited's templates: page, section and home listings, 404.
mkdir -p "$site/templates"
cat > "$site/templates/page.html" <<'HTML'
<!doctype html><html><head><title>{{ page.title }}</title></head><body><h1>{{ page.title }}</h1>{{ page.content|safe }}</body></html>
HTML
cat > "$site/templates/section.html" <<'HTML'
<!doctype html><html><head><title>{{ section.title }}</title></head><body><h1>{{ section.title }}</h1><ul>{% for p in section.pages %}<li><a href="{{ p.url }}">{{ p.title }}</a></li>{% endfor %}</ul></body></html>
HTML
cp "$site/templates/section.html" "$site/templates/index.html"
cp "$site/layouts/404.html" "$site/templates/404.html"

echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "hugo: $(hugo version | cut -d' ' -f1-2); sited: $(target/release/sited --version)"
echo "pages: $(find "$site/content" -name '*.md' | wc -l); working in $work"
results="$work/results"
: > "$results"
tools=(sited hugo theme)
[ -n "${BASELINE:-}" ] && tools+=(baseline)
for run in $(seq 1 "$runs"); do
  for tool in "${tools[@]}"; do
    out="$work/out-$tool"
    rm -rf "$out"
    case $tool in
      sited) cmd=(target/release/sited build "$site" --out "$out") ;;
      theme) cmd=(target/release/sited build "$theme_site" --out "$out") ;;
      baseline) cmd=("$BASELINE" build "$site" --out "$out") ;;
      hugo) cmd=(hugo --quiet --source "$site" --destination "$out") ;;
    esac
    # Wall time to the millisecond (`time`'s own is in hundredths, too coarse for a
    # 0.2 s build); CPU and peak RSS from `time`.
    started=$(date +%s%N)
    /usr/bin/time -f "%U %S %M" -o "$work/time" "${cmd[@]}" > /dev/null
    ended=$(date +%s%N)
    wall=$(awk -v ns=$((ended - started)) 'BEGIN { printf "%.3f", ns / 1e9 }')
    echo "$tool $wall $(cat "$work/time") $run" >> "$results"
    html=$(find "$out" -name '*.html' | wc -l)
    echo "run $run $tool: $wall $(cat "$work/time") ($html html files)"
  done
done
python3 - "$results" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
med = {}
for tool in ("sited", "theme", "baseline", "hugo"):
    mine = [r for r in rows if r[0] == tool]
    if not mine:
        continue
    wall = statistics.median(float(r[1]) for r in mine)
    cpu = statistics.median(float(r[2]) + float(r[3]) for r in mine)
    rss = statistics.median(int(r[4]) for r in mine) / 1024
    med[tool] = (wall, cpu, rss)
    print(f"{tool:5}: median wall {wall:.3f} s, cpu {cpu:.2f} s, peak RSS {rss:.0f} MiB (n={len(mine)})")
# Each run's wall time against Hugo's in the same run (the machine's pace drifts between
# runs; a pair shares it), and the median of those ratios beside the ratio of medians.
hugo_walls = {r[5]: float(r[1]) for r in rows if r[0] == "hugo"}
def paired(tool):
    ratios = sorted(float(r[1]) / hugo_walls[r[5]] for r in rows if r[0] == tool)
    return statistics.median(ratios), ratios
s, h = med["sited"], med["hugo"]
print(f"sited/hugo: wall {s[0]/h[0]:.3f}, cpu {s[1]/h[1]:.2f}, RSS {s[2]/h[2]:.2f} (target: wall and RSS <= 0.25)")
for tool in ("sited", "theme", "baseline"):
    if tool in med:
        median, ratios = paired(tool)
        if tool != "sited":
            b = med[tool]
            print(f"{tool}/hugo: wall {b[0]/h[0]:.3f}, cpu {b[1]/h[1]:.2f}, RSS {b[2]/h[2]:.2f}")
        print(f"{tool}/hugo run by run: median {median:.3f} ({' '.join(f'{r:.3f}' for r in ratios)})")
PY
