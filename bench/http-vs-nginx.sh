#!/usr/bin/env bash
# Requests/s and latency of sited against nginx serving the same built site (the tldr
# corpus) on this machine, with wrk over keep-alive: a small page (~2 KB) and a large
# one (~200 KB), runs alternating between the servers. Then the tail at fixed request
# rates (bench/src/bin/fixed-rate.rs, wrk2's method: latency counted from when each
# request was due), p50/p90/p99/p99.9/max. Prints raw figures, medians and the
# sited/nginx ratios as Markdown for BENCHMARKS.md.
#
# Usage: bench/http-vs-nginx.sh
#   RUNS=3 DURATION=10s CONNECTIONS=64 THREADS=2   wrk settings (defaults shown)
#   TAIL_RUNS=3 TAIL_SECONDS=10 TAIL_CONNECTIONS=32
#   TAIL_RATES_SMALL="5000 20000" TAIL_RATES_LARGE="1000 4000"   requests/s
#   SKIP_WRK=1     only the fixed-rate tail
#   CORPUS=DIR     the content to build (default: ../shared/corpus/tldr/content)
#   CARGO_TARGET_DIR                               where the release binaries are
#   SITED_DIR=DIR  the sited and sitectl measured (default: the release build), e.g. a
#                  saved older build for a before/after in the same conditions
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
TAIL_RUNS="${TAIL_RUNS:-3}"
TAIL_SECONDS="${TAIL_SECONDS:-10}"
TAIL_CONNECTIONS="${TAIL_CONNECTIONS:-32}"
TAIL_RATES_SMALL="${TAIL_RATES_SMALL:-5000 20000}"
TAIL_RATES_LARGE="${TAIL_RATES_LARGE:-1000 4000}"

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
(cd "$ROOT" && cargo build --release --quiet -p sited -p sitectl && cargo build --release --quiet -p sited-bench --bin fixed-rate)
SITED="${SITED_DIR:-$TARGET/release}/sited"
SITECTL="${SITED_DIR:-$TARGET/release}/sitectl"
FIXED_RATE="$TARGET/release/fixed-rate"

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
# ---- sited, serving the same site from its in-memory build ----
# (Started first: a dev server adds its live-reload script to every page it serves, so
# nginx is given the very bytes sited sends for the measured pages.)
export SITED_HOME="$WORK/home"
up_out="$("$SITECTL" up "$WORK/site" --port 0)"
SITED_PORT="$(sed -n 's|.*http://127.0.0.1:\([0-9]*\)/.*|\1|p' <<<"$up_out")"
[ -n "$SITED_PORT" ] || { echo "no port in: $up_out" >&2; exit 1; }
SITED_PID="$(cat "$SITED_HOME/run/sited.lock")"

for page in "$SMALL" "$LARGE"; do
    curl -sf "http://127.0.0.1:$SITED_PORT$page" -o "$OUT${page}index.html.tmp"
    mv "$OUT${page}index.html.tmp" "$OUT${page}index.html"
done

# In its own session, as sited's daemon is: with the kernel's autogroup scheduling, a
# server sharing wrk's session is scheduled hand in hand with it, one in another session
# is not, and that alone moved results by more than 2x on a busy machine.
setsid "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
NGINX_PID=$!

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
# CPU time (user + system, all threads) of a server's processes, in clock ticks.
cpu_ticks() {
    local pids total=0 pid u st
    if [ "$1" = nginx ]; then pids="$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')"; else pids="$SITED_PID"; fi
    for pid in $pids; do
        read -r u st < <(awk '{print $14, $15}' "/proc/$pid/stat")
        total=$((total + u + st))
    done
    echo "$total"
}
TICKS="$(getconf CLK_TCK)"
run_wrk() { # server port page label run
    local out rps p50 p90 p99 before after requests cpu load
    before="$(cpu_ticks "$1")"
    out="$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "http://127.0.0.1:$2$3")"
    after="$(cpu_ticks "$1")"
    load="$(cut -d' ' -f1 /proc/loadavg)"
    rps="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
    requests="$(awk '/requests in/ {print $1}' <<<"$out")"
    cpu="$(awk -v a="$after" -v b="$before" -v n="$requests" -v hz="$TICKS" 'BEGIN {printf "%.1f", (a - b) * 1e6 / hz / n}')"
    p50="$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")"
    p90="$(to_ms "$(awk '$1 == "90%" {print $2}' <<<"$out")")"
    p99="$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")"
    if grep -q "Non-2xx\|Socket errors" <<<"$out"; then
        say "warning: $1 $4 run $5: $(grep 'Non-2xx\|Socket errors' <<<"$out" | tr -s ' ')"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$4" "$1" "$5" "$rps" "$p50" "$p90" "$p99" "$cpu" "$load" >>"$RESULTS"
    say "$4 $1 run $5: $rps req/s, p50 $p50 ms, p90 $p90 ms, p99 $p99 ms, $cpu µs CPU/request, load $load"
}
for page in small large; do
    [ -n "${SKIP_WRK:-}" ] && break
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

# ---- the tail at fixed rates ----
TAIL="$WORK/tail.tsv"
: >"$TAIL"
for page in small large; do
    path=$SMALL
    rates=$TAIL_RATES_SMALL
    if [ $page = large ]; then path=$LARGE; rates=$TAIL_RATES_LARGE; fi
    for rate in $rates; do
        for run in $(seq 1 "$TAIL_RUNS"); do
            if [ $((run % 2)) = 1 ]; then order="nginx sited"; else order="sited nginx"; fi
            for server in $order; do
                port=$NGINX_PORT
                [ "$server" = sited ] && port=$SITED_PORT
                line="$("$FIXED_RATE" "http://127.0.0.1:$port$path" "$rate" "$TAIL_SECONDS" "$TAIL_CONNECTIONS")"
                load="$(cut -d' ' -f1 /proc/loadavg)"
                printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$page" "$rate" "$server" "$run" "$line" "$load" >>"$TAIL"
                say "tail $page $rate/s $server run $run: $(tr '\t' ' ' <<<"$line") load $load"
            done
        done
    done
done

# ---- report ----
median() { sort -g | awk '{a[NR] = $1} END {if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
if [ -z "${SKIP_WRK:-}" ]; then
echo
echo "### $(date -u +%Y-%m-%d) — sited vs nginx, wrk -t$THREADS -c$CONNECTIONS -d$DURATION, keep-alive"
echo
echo "Machine: $(nproc) cores, $(free -h | awk '/^Mem:/ {print $2}') memory; $(uname -sr); nginx $("$NGINX" -v 2>&1 | sed 's|.*/||'); $("$SITED" --version)."
echo "Pages: small \`$SMALL\` ($small_size bytes), large \`$LARGE\` ($large_size bytes)."
echo
echo "| page | server | run | req/s | p50 ms | p90 ms | p99 ms | CPU µs/req | load (1 min) |"
echo "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9}' "$RESULTS"
echo
echo "| page | server | median req/s | median p50 ms | median p90 ms | median p99 ms | median CPU µs/req |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
col() { awk -F'\t' -v p="$1" -v s="$2" -v c="$3" '$1 == p && $2 == s {print $c}' "$RESULTS" | median; }
for page in small large; do
    for server in nginx sited; do
        echo "| $page | $server | $(col $page $server 4) | $(col $page $server 5) | $(col $page $server 6) | $(col $page $server 7) | $(col $page $server 8) |"
    done
done
echo
echo "| page | sited / nginx, median req/s |"
echo "| --- | ---: |"
for page in small large; do
    awk -v s="$(col $page sited 4)" -v n="$(col $page nginx 4)" -v p=$page 'BEGIN {printf "| %s | %.2f× |\n", p, s / n}'
done

fi
echo
echo "### $(date -u +%Y-%m-%d) — the tail at fixed rates: bench/src/bin/fixed-rate, $TAIL_CONNECTIONS connections, ${TAIL_SECONDS} s per run"
echo
echo "Latency in ms from when each request was due (wrk2's method). sent/ok/errors are requests; rate is the achieved rate."
echo
echo "| page | rate/s | server | run | sent | ok | errors | achieved | p50 | p90 | p99 | p99.9 | max | load |"
echo "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14}' "$TAIL"
echo
echo "| page | rate/s | server | median p50 | median p90 | median p99 | median p99.9 | median max |"
echo "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |"
tcol() { awk -F'\t' -v p="$1" -v r="$2" -v s="$3" -v c="$4" '$1 == p && $2 == r && $3 == s {print $c}' "$TAIL" | median; }
for page in small large; do
    rates=$TAIL_RATES_SMALL
    [ $page = large ] && rates=$TAIL_RATES_LARGE
    for rate in $rates; do
        for server in nginx sited; do
            echo "| $page | $rate | $server | $(tcol $page $rate $server 9) | $(tcol $page $rate $server 10) | $(tcol $page $rate $server 11) | $(tcol $page $rate $server 12) | $(tcol $page $rate $server 13) |"
        done
    done
done
echo
echo "| page | rate/s | sited / nginx, median p99 | median p99.9 |"
echo "| --- | ---: | ---: | ---: |"
for page in small large; do
    rates=$TAIL_RATES_SMALL
    [ $page = large ] && rates=$TAIL_RATES_LARGE
    for rate in $rates; do
        awk -v s="$(tcol $page $rate sited 11)" -v n="$(tcol $page $rate nginx 11)" -v s9="$(tcol $page $rate sited 12)" -v n9="$(tcol $page $rate nginx 12)" -v p=$page -v r=$rate 'BEGIN {printf "| %s | %s | %.2f× | %.2f× |\n", p, r, s / n, s9 / n9}'
    done
done
