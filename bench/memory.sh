#!/usr/bin/env bash
# Memory and threads of the daemon per site (issue 17 item 3): three copies of the tldr
# corpus up at once in one daemon, VmRSS and threads after `up`, after every page of the
# three was fetched once (keep-alive), after a one-page edit's rebuild, and CPU time over
# IDLE seconds of idleness; then a fresh daemon with SITES small sites (one page each):
# threads and VmRSS, so the thread count is seen not to grow with the number of sites.
#
# Usage: bench/memory.sh
#   SITES=50 IDLE=5 CORPUS=DIR (default ../shared/corpus/tldr/content)
#   SKIP_BUILD=1   use the release binaries already in $CARGO_TARGET_DIR (or target/)
#   Any environment (e.g. MALLOC_ARENA_MAX=2) reaches the daemon: sitectl starts it.
#
# Everything runs in a temp dir with its own SITED_HOME, removed at the end; the daemon
# is stopped with `sitectl daemon stop`.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
SITES="${SITES:-50}"
IDLE="${IDLE:-5}"
CORPUS="${CORPUS:-$ROOT/../shared/corpus/tldr/content}"

say() { printf '== %s\n' "$*" >&2; }

if [ -z "${SKIP_BUILD:-}" ]; then
    say "building release binaries"
    (cd "$ROOT" && cargo build --release --quiet -p sited -p sitectl)
fi
SITECTL="$TARGET/release/sitectl"

WORK="$(mktemp -d /tmp/sited-memory-XXXXXX)"
cleanup() {
    SITED_HOME="$WORK/home" "$SITECTL" daemon stop >/dev/null 2>&1 || true
    SITED_HOME="$WORK/home50" "$SITECTL" daemon stop >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

status() { # pid → "VmRSS KiB, threads"
    awk '/^VmRSS:/ {rss = $2} /^Threads:/ {t = $2} END {printf "VmRSS %d KiB, %d threads", rss, t}' "/proc/$1/status"
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "env: MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-unset}"

# ---- three tldr sites ----
export SITED_HOME="$WORK/home"
ports=()
for i in 1 2 3; do
    mkdir -p "$WORK/tldr$i"
    cp -r "$CORPUS" "$WORK/tldr$i/content"
done
for i in 1 2 3; do
    out="$("$SITECTL" up "$WORK/tldr$i" --port 0)"
    ports+=("$(sed -n 's|.*http://127.0.0.1:\([0-9]*\)/.*|\1|p' <<<"$out")")
done
PID="$(cat "$SITED_HOME/run/sited.lock")"
sleep 1
echo "3 tldr sites, after up: $(status "$PID")"

# Every page of every site once, over one keep-alive connection per site.
fetch_all() {
    python3 - "$WORK" "${ports[@]}" <<'EOF'
import http.client, os, sys
work, ports = sys.argv[1], sys.argv[2:]
total = pages = 0
for i, port in enumerate(ports, 1):
    content = os.path.join(work, f"tldr{i}", "content")
    conn = http.client.HTTPConnection("127.0.0.1", int(port))
    for dirpath, _, files in os.walk(content):
        for f in files:
            if not f.endswith(".md"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f[:-3]), content)
            url = "/" if rel == "index" else "/" + rel.replace(os.sep, "/") + "/"
            if url.endswith("/_index/"):
                url = url[: -len("_index/")]
            conn.request("GET", url)
            r = conn.getresponse()
            total += len(r.read())
            pages += r.status == 200
print(f"fetched {pages} pages with 200, {total} bytes", file=sys.stderr)
EOF
}
fetch_all
echo "3 tldr sites, after every page was served once: $(status "$PID")"

# A one-page edit in each site, then wait for its rebuild to be served.
for i in 1 2 3; do
    echo "memory-bench-edit" >>"$WORK/tldr$i/content/common/tar.md"
done
for i in 1 2 3; do
    deadline=$((SECONDS + 30))
    until curl -s "http://127.0.0.1:${ports[$((i - 1))]}/common/tar/" | grep -q memory-bench-edit; do
        [ $SECONDS -lt $deadline ] || { echo "edit of site $i not served" >&2; exit 1; }
        sleep 0.1
    done
done
echo "3 tldr sites, after a one-page edit in each: $(status "$PID")"

before="$(ticks "$PID")"
sleep "$IDLE"
after="$(ticks "$PID")"
echo "3 tldr sites, CPU over ${IDLE}s idle: $(((after - before) * 1000 / $(getconf CLK_TCK))) ms"
"$SITECTL" daemon stop >/dev/null

# ---- many small sites ----
export SITED_HOME="$WORK/home50"
for i in $(seq 1 "$SITES"); do
    mkdir -p "$WORK/small$i/content"
    printf '+++\ntitle = "Site %d"\n+++\n\nHello from site %d.\n' "$i" "$i" >"$WORK/small$i/content/index.md"
done
"$SITECTL" up "$WORK/small1" --port 0 >/dev/null
PID="$(cat "$SITED_HOME/run/sited.lock")"
sleep 1
echo "1 small site: $(status "$PID")"
for i in $(seq 2 "$SITES"); do
    "$SITECTL" up "$WORK/small$i" --port 0 >/dev/null
done
sleep 1
echo "$SITES small sites: $(status "$PID")"
before="$(ticks "$PID")"
sleep "$IDLE"
after="$(ticks "$PID")"
echo "$SITES small sites, CPU over ${IDLE}s idle: $(((after - before) * 1000 / $(getconf CLK_TCK))) ms"
