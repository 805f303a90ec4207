#!/usr/bin/env bash
# Media pipeline benchmarks for docs/BENCHMARKS.md ("Media pipeline" section).
#
#   bash benches/media.sh            # everything (about 10 minutes on 2 cores)
#   RUNS=3 SKIP_LONG=1 bash benches/media.sh
#   BENCH_MUSICD=target/release/musicd bash benches/media.sh   # skip building the daemon
#
# Builds release binaries, generates inputs with ffmpeg in a temp dir, and prints Markdown
# tables. Commands in one table are interleaved run by run (A B C A B C ...) so drift in
# machine load hits them alike; each cell is the median wall time of RUNS runs.
# Needs: ffmpeg (with libmp3lame, libopus), curl, python3, /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-5}
SKIP_LONG=${SKIP_LONG:-0}

# BENCH_MUSICD=/path/to/musicd uses an already built binary instead of building one.
if [ -z "${BENCH_MUSICD:-}" ]; then
    cargo build --release -p musicd --bin musicd >&2
fi
cargo build --release -p musicd-media --examples >&2
MUSICD=$(realpath "${BENCH_MUSICD:-$ROOT/target/release/musicd}")
export -n BENCH_MUSICD
PIPE=$ROOT/target/release/examples/transcode
FETCH=$ROOT/target/release/examples/fetch

W=$(mktemp -d "${TMPDIR:-/tmp}/musicd-bench.XXXXXX")
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$W"
}
trap cleanup EXIT
cd "$W"
# An empty config: defaults only, whatever config/musicd.toml says.
: > "$W/musicd.toml"
export MUSICD_CONFIG=$W/musicd.toml MUSICD_DATA_DIR=$W/data

echo "generating inputs in $W" >&2
# 5 minutes, 16-bit 44.1 kHz stereo: a tone over pink noise, so the encoders have real work.
ffmpeg -v error -y \
    -f lavfi -i "sine=frequency=440:sample_rate=44100:duration=300" \
    -f lavfi -i "anoisesrc=color=pink:amplitude=0.2:sample_rate=44100:duration=300:seed=1" \
    -filter_complex "[0][1]amix=inputs=2,aformat=sample_fmts=s16:channel_layouts=stereo,pan=stereo|c0=c0|c1=0.8*c0" \
    -metadata title=Bench -metadata artist=Tester -metadata album=Bench -c:a flac in.flac
ffmpeg -v error -y -i in.flac -c:a libmp3lame -b:a 320k in.mp3

now_ns() { date +%s%N; }

# time_cells N CMD...: runs each command (strings, run with bash -c) RUNS times, interleaved;
# before each run, `rm -rf lib out.*` so no run sees another's output. Prints medians (s).
time_cells() {
    local n=${#@} i r
    local -a cmds=("$@")
    local -A samples=()
    for ((r = 0; r < RUNS; r++)); do
        for ((i = 0; i < n; i++)); do
            rm -rf lib out.*
            local t0 t1
            t0=$(now_ns)
            bash -c "${cmds[$i]}" > /dev/null 2> "$W/err" || {
                echo "FAILED: ${cmds[$i]}" >&2
                cat "$W/err" >&2
                exit 1
            }
            t1=$(now_ns)
            samples[$i]+="$(((t1 - t0) / 1000000)) "
        done
    done
    for ((i = 0; i < n; i++)); do
        # shellcheck disable=SC2086
        printf '%s\n' ${samples[$i]} | sort -n | awk '{a[NR]=$1} END {printf "%.2f ", a[int((NR+1)/2)]/1000}'
    done
    echo
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

echo
echo "### One file on one thread ($RUNS runs each, median wall time)"
echo
echo "| row | \`musicd import --threads 1\` | pipeline, one thread | ffmpeg + ebur128 | bare ffmpeg | one thread ÷ ffmpeg + ebur128 | one thread ÷ bare ffmpeg |"
echo "|---|---|---|---|---|---|---|"
row() {
    local label=$1 input=$2 mflags=$3 pflags=$4 ffenc=$5 ext=$6
    # shellcheck disable=SC2206
    local -a t=($(time_cells \
        "$MUSICD import --threads 1 $mflags --library lib $input" \
        "$PIPE $input lib $pflags --single" \
        "ffmpeg -nostdin -hide_banner -threads 1 -i $input -af ebur128=peak=true $ffenc out.$ext" \
        "ffmpeg -nostdin -hide_banner -threads 1 -i $input $ffenc out.$ext"))
    echo "| $label | ${t[0]} s | ${t[1]} s | ${t[2]} s | ${t[3]} s | $(ratio "${t[1]}" "${t[2]}") | $(ratio "${t[1]}" "${t[3]}") |"
}
row "FLAC → MP3 V2" in.flac "--format mp3 --vbr 2" "mp3 --vbr 2" "-c:a libmp3lame -q:a 2" mp3
row "FLAC → Opus 128k" in.flac "--format opus --bitrate 128k" "opus --bitrate 128000" "-c:a libopus -b:a 128k" opus
row "FLAC → FLAC level 5" in.flac "--format flac --compression 5" "flac --compression 5" "-c:a flac -compression_level 5" flac
row "MP3 320k → Opus 128k" in.mp3 "--format opus --bitrate 128k" "opus --bitrate 128000" "-c:a libopus -b:a 128k" opus

echo
echo "### One file, default threads vs one thread (FLAC → MP3 V2, $(nproc) cores)"
echo
echo "| command | wall time | speed-up |"
echo "|---|---|---|"
# shellcheck disable=SC2206
t=($(time_cells \
    "$PIPE in.flac lib mp3 --vbr 2 --single" \
    "$PIPE in.flac lib mp3 --vbr 2" \
    "$MUSICD import --format mp3 --vbr 2 --library lib in.flac"))
echo "| pipeline, \`pipelined: false\` (one thread) | ${t[0]} s | 1.00 |"
echo "| pipeline, \`pipelined: true\` (default: decode ∥ encode) | ${t[1]} s | $(ratio "${t[0]}" "${t[1]}") |"
echo "| \`musicd import\` (default threads) | ${t[2]} s | $(ratio "${t[0]}" "${t[2]}") |"

if [ "$SKIP_LONG" != 1 ]; then
    echo
    echo "### Peak memory, one 3-hour file (FLAC 16/44.1 stereo → MP3 V2, default stages)"
    echo
    ffmpeg -v error -y -f lavfi -i "sine=frequency=440:sample_rate=44100:duration=10800" \
        -ac 2 -sample_fmt s16 -c:a flac long.flac
    rm -rf lib
    /usr/bin/time -v "$MUSICD" import --format mp3 --vbr 2 --library lib long.flac \
        > /dev/null 2> "$W/time.txt"
    rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$W/time.txt")
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$W/time.txt")
    echo "| input | wall time | peak RSS |"
    echo "|---|---|---|"
    echo "| $(du -m long.flac | cut -f1) MB FLAC, 3 h | $wall | $((rss_kb / 1024)) MB |"
    rm -rf lib long.flac
fi

echo
echo "### 1 GiB fetch from a loopback server"
echo
mkdir -p www staging
head -c $((1 << 30)) /dev/urandom > www/big.bin
cat > server.py <<'PY'
# Loopback HTTP server that sends files with sendfile(2), so it is not the bottleneck.
import http.server, os, socketserver, sys
class H(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
    def copyfile(self, src, dst):
        dst.flush()
        self.connection.sendfile(src)
os.chdir(sys.argv[2])
socketserver.TCPServer.allow_reuse_address = True
with socketserver.ThreadingTCPServer(("127.0.0.1", int(sys.argv[1])), H) as s:
    s.serve_forever()
PY
PORT=$((20000 + RANDOM % 20000))
python3 server.py "$PORT" www &
SERVER_PID=$!
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done
URL=http://127.0.0.1:$PORT/big.bin
# shellcheck disable=SC2206
t=($(time_cells \
    "$FETCH $URL staging" \
    "curl -sf -o out.curl $URL" \
    "curl -sf -o out.curl $URL && sync -f out.curl"))
mb() { awk -v s="$1" 'BEGIN {printf "%.0f", 1073741824 / s / 1e6}'; }
echo "| client | wall time | throughput | musicd ÷ client throughput |"
echo "|---|---|---|---|"
echo "| \`fetch\` (musicd_media::fetch, fsyncs the file) | ${t[0]} s | $(mb "${t[0]}") MB/s | 1.00 |"
echo "| curl | ${t[1]} s | $(mb "${t[1]}") MB/s | $(ratio "${t[1]}" "${t[0]}") |"
echo "| curl, then \`sync\` the file | ${t[2]} s | $(mb "${t[2]}") MB/s | $(ratio "${t[2]}" "${t[0]}") |"
