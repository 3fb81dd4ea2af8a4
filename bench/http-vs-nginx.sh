#!/usr/bin/env bash
# Requests/s and latency of sited against nginx serving the same built site (the tldr
# corpus) on this machine, with wrk over keep-alive: a small page (~2 KB) and a large
# one (~200 KB), runs alternating between the servers. Prints raw figures, medians and
# the sited/nginx ratio as Markdown for BENCHMARKS.md.
#
# Usage: bench/http-vs-nginx.sh
#   RUNS=3 DURATION=10s CONNECTIONS=64 THREADS=2   wrk settings (defaults shown)
#   CORPUS=DIR     the content to build (default: ../shared/corpus/tldr/content)
#   CARGO_TARGET_DIR                               where the release binaries are
#
# Installs nginx and wrk with apt-get when missing. Everything runs on 127.0.0.1 in a
# temp dir (its own SITED_HOME, its own nginx prefix) that is removed at the end; the
# nginx and sited it starts are stopped by pid.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
RUNS="${RUNS:-3}"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
CORPUS="${CORPUS:-$ROOT/../shared/corpus/tldr/content}"

say() { printf '== %s\n' "$*" >&2; }

# ---- tools ----
missing=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    # Keep the package's init script from starting a system nginx on port 80.
    made_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        made_policy=1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    [ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

say "building release binaries"
(cd "$ROOT" && cargo build --release --quiet -p sited -p sitectl)
SITED="$TARGET/release/sited"
SITECTL="$TARGET/release/sitectl"

# ---- the site ----
WORK="$(mktemp -d /tmp/sited-bench-XXXXXX)"
NGINX_PID=""
cleanup() {
    [ -n "$NGINX_PID" ] && kill -QUIT "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null || true
    SITED_HOME="$WORK/home" "$SITECTL" daemon stop >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

say "copying the corpus to $WORK/site"
mkdir -p "$WORK/site"
cp -r "$CORPUS" "$WORK/site/content"
OUT="$WORK/out"
"$SITED" build "$WORK/site" --out "$OUT" >/dev/null

# The page whose size is closest to $1 bytes, as a URL path.
closest() {
    (cd "$OUT" && find . -name index.html -printf '%s %P\n') |
        awk -v want="$1" '{d = $1 - want; if (d < 0) d = -d; if (best == "" || d < bestd) {best = $2; bestd = d; size = $1}} END {print size, best}'
}
read -r small_size small_file < <(closest 2048)
read -r large_size large_file < <(closest 204800)
if [ "$large_size" -lt 150000 ] || [ "$large_size" -gt 260000 ]; then
    # No page near 200 KB: add one to the copy (both servers serve the same build).
    say "no page near 200 KB (closest: $large_size bytes); generating one"
    {
        printf '+++\ntitle = "Benchmark: a large page"\n+++\n\n'
        for i in $(seq 1 1400); do
            printf -- '- Item %d: `command --flag value` does one thing and does it **well**, see [the docs](https://example.org/%d).\n' "$i" "$i"
        done
    } >"$WORK/site/content/bench-large.md"
    "$SITED" build "$WORK/site" --out "$OUT" >/dev/null
    large_file="bench-large/index.html"
fi
# Sizes as finally built (a new page changes every page's navigation).
small_size=$(stat -c %s "$OUT/$small_file")
large_size=$(stat -c %s "$OUT/$large_file")
SMALL="/${small_file%index.html}"
LARGE="/${large_file%index.html}"
say "small page: $SMALL ($small_size bytes); large page: $LARGE ($large_size bytes)"
chmod -R a+rX "$WORK"

# ---- nginx, serving the built files from disk ----
free_port() {
    local port
    for port in $(seq 18080 18999); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    return 1
}
NGINX_PORT="$(free_port)"
mkdir -p "$WORK/nginx/logs" "$WORK/nginx/tmp"
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes auto;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    open_file_cache max=10000 inactive=60s;
    client_body_temp_path $WORK/nginx/tmp/body;
    proxy_temp_path $WORK/nginx/tmp/proxy;
    fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
    uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
    scgi_temp_path $WORK/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $OUT;
        index index.html;
    }
}
EOF
"$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
NGINX_PID=$!

# ---- sited, serving the same site from its in-memory build ----
export SITED_HOME="$WORK/home"
up_out="$("$SITECTL" up "$WORK/site" --port 0)"
SITED_PORT="$(sed -n 's|.*http://127.0.0.1:\([0-9]*\)/.*|\1|p' <<<"$up_out")"
[ -n "$SITED_PORT" ] || { echo "no port in: $up_out" >&2; exit 1; }

# Both must answer 200 with the same body size before anything is measured.
wait_ok() {
    local url="$1" deadline=$((SECONDS + 20))
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "$url")" = 200 ]; do
        [ $SECONDS -lt $deadline ] || { echo "$url does not answer 200" >&2; exit 1; }
        sleep 0.1
    done
}
for page in "$SMALL" "$LARGE"; do
    wait_ok "http://127.0.0.1:$NGINX_PORT$page"
    wait_ok "http://127.0.0.1:$SITED_PORT$page"
    n=$(curl -s "http://127.0.0.1:$NGINX_PORT$page" | wc -c)
    s=$(curl -s "http://127.0.0.1:$SITED_PORT$page" | wc -c)
    say "$page: nginx sends $n bytes, sited $s bytes"
    [ "$n" = "$s" ] || { echo "the servers send different bodies for $page" >&2; exit 1; }
done

# ---- measure ----
RESULTS="$WORK/results.tsv"
: >"$RESULTS"
to_ms() { # wrk latency (e.g. 812.00us, 1.20ms, 1.01s) → ms
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.3f", n }'
}
run_wrk() { # server port page label run
    local out rps p50 p90 p99
    out="$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "http://127.0.0.1:$2$3")"
    rps="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
    p50="$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")"
    p90="$(to_ms "$(awk '$1 == "90%" {print $2}' <<<"$out")")"
    p99="$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")"
    if grep -q "Non-2xx\|Socket errors" <<<"$out"; then
        say "warning: $1 $4 run $5: $(grep 'Non-2xx\|Socket errors' <<<"$out" | tr -s ' ')"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$4" "$1" "$5" "$rps" "$p50" "$p90" "$p99" >>"$RESULTS"
    say "$4 $1 run $5: $rps req/s, p50 $p50 ms, p90 $p90 ms, p99 $p99 ms"
}
for page in small large; do
    path=$SMALL
    [ $page = large ] && path=$LARGE
    say "warming up ($page)"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "http://127.0.0.1:$NGINX_PORT$path" >/dev/null
    wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "http://127.0.0.1:$SITED_PORT$path" >/dev/null
    for run in $(seq 1 "$RUNS"); do
        # Alternate which server goes first, so drift (thermal, neighbours) hits both.
        if [ $((run % 2)) = 1 ]; then order="nginx sited"; else order="sited nginx"; fi
        for server in $order; do
            port=$NGINX_PORT
            [ "$server" = sited ] && port=$SITED_PORT
            run_wrk "$server" "$port" "$path" "$page" "$run"
        done
    done
done

# ---- report ----
median() { sort -g | awk '{a[NR] = $1} END {if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo
echo "### $(date -u +%Y-%m-%d) — sited vs nginx, wrk -t$THREADS -c$CONNECTIONS -d$DURATION, keep-alive"
echo
echo "Machine: $(nproc) cores, $(free -h | awk '/^Mem:/ {print $2}') memory; $(uname -sr); nginx $("$NGINX" -v 2>&1 | sed 's|.*/||'); $("$SITED" --version)."
echo "Pages: small \`$SMALL\` ($small_size bytes), large \`$LARGE\` ($large_size bytes)."
echo
echo "| page | server | run | req/s | p50 ms | p90 ms | p99 ms |"
echo "| --- | --- | --- | ---: | ---: | ---: | ---: |"
awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7}' "$RESULTS"
echo
echo "| page | nginx median req/s | sited median req/s | sited / nginx | nginx median p99 ms | sited median p99 ms |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for page in small large; do
    n=$(awk -F'\t' -v p=$page '$1 == p && $2 == "nginx" {print $4}' "$RESULTS" | median)
    s=$(awk -F'\t' -v p=$page '$1 == p && $2 == "sited" {print $4}' "$RESULTS" | median)
    n99=$(awk -F'\t' -v p=$page '$1 == p && $2 == "nginx" {print $7}' "$RESULTS" | median)
    s99=$(awk -F'\t' -v p=$page '$1 == p && $2 == "sited" {print $7}' "$RESULTS" | median)
    ratio=$(awk -v s="$s" -v n="$n" 'BEGIN {printf "%.2f×", s / n}')
    echo "| $page | $n | $s | $ratio | $n99 | $s99 |"
done
