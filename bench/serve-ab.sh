#!/usr/bin/env bash
# Serving speed of two sited builds side by side: both daemons up at once (each in its
# own SITED_HOME) on the same site, `wrk` runs alternating between them (the order
# flips run by run), requests/s and the daemon's CPU time per request (utime + stime
# from /proc) for each run, then the medians. For changes to the serving path, where
# the machine's drift between two separate runs of bench/http-vs-nginx.sh is larger
# than the change.
#
# Usage: BEFORE_DIR=DIR bench/serve-ab.sh [RUNS]
#   BEFORE_DIR   a directory with the older sited and sitectl (required)
#   AFTER_DIR    the newer (default: this tree's release build, built first)
#   URL_PATH     what to ask for (default: /bench-large/, a generated ~220 KB page)
#   DURATION=5s CONNECTIONS=64 THREADS=2   wrk settings
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUNS="${1:-6}"
BEFORE_DIR="${BEFORE_DIR:?set BEFORE_DIR to a directory holding the older sited and sitectl}"
if [ -z "${AFTER_DIR:-}" ]; then
    (cd "$ROOT" && cargo build --release --quiet -p sited -p sitectl)
    AFTER_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/release"
fi
URL_PATH="${URL_PATH:-/bench-large/}"
DURATION="${DURATION:-5s}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }

WORK="$(mktemp -d /tmp/sited-serve-ab-XXXXXX)"
cleanup() {
    for v in before after; do
        dir_var="${v^^}_DIR"
        SITED_HOME="$WORK/home-$v" "${!dir_var}/sitectl" daemon stop >/dev/null 2>&1 || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

# examples/blog and one large page (the same generator as bench/http-vs-nginx.sh).
cp -r "$ROOT/examples/blog" "$WORK/site"
{
    printf '+++\ntitle = "Benchmark: a large page"\n+++\n\n'
    for i in $(seq 1 1400); do
        printf -- '- Item %d: `command --flag value` does one thing and does it **well**, see [the docs](https://example.org/%d).\n' "$i" "$i"
    done
} >"$WORK/site/content/bench-large.md"

declare -A PORT PID
for v in before after; do
    dir_var="${v^^}_DIR"
    dir="${!dir_var}"
    home="$WORK/home-$v"
    mkdir -p "$home"
    out="$(SITED_HOME="$home" "$dir/sitectl" up "$WORK/site" --port 0)"
    PORT[$v]="$(grep -o '127.0.0.1:[0-9]*' <<<"$out" | head -1 | cut -d: -f2)"
    PID[$v]="$(cat "$home/run/sited.lock")"
    size="$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "http://127.0.0.1:${PORT[$v]}$URL_PATH")"
    echo "== $v: $dir/sited pid ${PID[$v]} port ${PORT[$v]}, $URL_PATH: $size" >&2
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks_per_s="$(getconf CLK_TCK)"
declare -A RPS CPU
echo "| run | build | req/s | CPU µs/request |"
echo "| --- | --- | ---: | ---: |"
for run in $(seq 1 "$RUNS"); do
    order="before after"
    [ $((run % 2)) = 0 ] && order="after before"
    for v in $order; do
        c0="$(cpu_ticks "${PID[$v]}")"
        result="$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" "http://127.0.0.1:${PORT[$v]}$URL_PATH")"
        c1="$(cpu_ticks "${PID[$v]}")"
        rps="$(awk '/Requests\/sec/ {print $2}' <<<"$result")"
        requests="$(awk '/requests in/ {print $1}' <<<"$result")"
        cpu="$(awk -v d=$((c1 - c0)) -v n="$requests" -v hz="$ticks_per_s" 'BEGIN {printf "%.1f", d * 1e6 / hz / n}')"
        echo "| $run | $v | $rps | $cpu |"
        RPS[$v]+="$rps "
        CPU[$v]+="$cpu "
    done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo
echo "| build | median req/s | median CPU µs/request |"
echo "| --- | ---: | ---: |"
for v in before after; do
    echo "| $v | $(median <<<"${RPS[$v]}") | $(median <<<"${CPU[$v]}") |"
done
