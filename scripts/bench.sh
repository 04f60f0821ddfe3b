#!/usr/bin/env bash
# Gateway benchmark. Prints, at the end, the table of figures:
#   - bytes and goroutines per idle MQTT connection (IDLE_DEVICES connections);
#   - time for all of them to reconnect after a gateway restart, with
#     generated device secrets ($hmac-sha256$ hashes);
#   - gateway CPU per message at RATE msg/s of QoS 1 and at saturation, every
#     message stored in InfluxDB; the gateway's peak RSS in those runs.
# Then (unless BACKLOG=0) a backlog drain, and the same load against Debian's
# mosquitto as a broker-only reference (unless MOSQUITTO=0).
#
#   make bench                          defaults below
#   DURATION=10s BACKLOG=0 make bench   shorter
#   BACKLOG=600 LIVE_RATE=1000 make bench   ten-minute backlog at 1000 msg/s
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICES=${DEVICES:-200}
DURATION=${DURATION:-20s}
WINDOW=${WINDOW:-8}
RATE=${RATE:-10000}             # messages per second of the moderate-load run
IDLE_DEVICES=${IDLE_DEVICES:-15000}
IDLE_SETTLE=${IDLE_SETTLE:-3}   # seconds idle before measuring (130: past the runtime's 2-minute forced GC, which
                                # collects what connecting left; stacks do not shrink, garbage grows meanwhile)
BACKLOG=${BACKLOG:-60}          # seconds of outage to build a backlog; 0 skips
LIVE_RATE=${LIVE_RATE:-1000}    # live messages per second during and after the outage
MOSQUITTO=${MOSQUITTO:-1}
SECRETS=${SECRETS:-generated}   # generated: $hmac-sha256$ device secrets; bcrypt4: bcrypt cost 4 of "pw-" + id
GATEWAY=${GATEWAY:-bin/sanigate} # another build to compare with
FIGURES=${FIGURES:-}            # if set, a file the figures are written to as NAME=value lines
BASE=${BENCH_PORT_BASE:-19000}
INFLUX_PORT=$((BASE + 86)); MQTT_PORT=$((BASE + 883)); HTTP_PORT=$((BASE + 80)); MOSQ_PORT=$((BASE + 884))
W=$(mktemp -d)
. scripts/influxdb.sh
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
# The gateway and the idle clients each hold one descriptor per connection.
ulimit -n "$(ulimit -Hn)"

metric() { # metric NAME [LABEL_FILTER]: sum of a metric from the gateway's /metrics
  curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" | awk -v n="$1" -v f="${2:-}" '
    $1 ~ "^"n"({|$)" && index($1, f) { s += $2 } END { printf "%.6f\n", s }'
}
proc_cpu() { awk '{ printf "%.2f\n", ($14 + $15) / 100 }' "/proc/$1/stat"; }
proc_rss_mb() { awk '/VmHWM/ { printf "%.0f\n", $2 / 1024 }' "/proc/$1/status"; }
proc_rss_kb() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }

start_influx() {
  influx_start "$W/influx" "$INFLUX_PORT" "$W/influxd.log"
  pids+=("$INFLUX_PID")
}
start_gateway() { # config
  "$GATEWAY" -config "$1" -log-level warn 2>>"$W/sanigate.log" &
  GW=$!; pids+=("$GW")
  for _ in $(seq 1 300); do curl -fsS -o /dev/null "http://127.0.0.1:$HTTP_PORT/healthz" 2>/dev/null && break; sleep 0.1; done
}
stop_gateway() { kill -TERM "$GW" 2>/dev/null || true; wait "$GW" 2>/dev/null || true; }
wait_line() { # file pattern seconds: wait until file has a line matching pattern
  local i
  for i in $(seq 1 $(($3 * 10))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}
secrets() { [ -s "$1" ] && echo "-secrets=$1" || echo "-secrets="; } # the flag for sanisim, none in bcrypt4 mode
config() { # devices out spool-dir
  local sec=(-secrets "$2.secrets")
  if [ "$SECRETS" = bcrypt4 ]; then sec=(); : > "$2.secrets"; fi
  bin/sanisim bench-config -devices "$1" -out "$2" "${sec[@]}" -influxdb-url "http://127.0.0.1:$INFLUX_PORT" \
    -mqtt-address "127.0.0.1:$MQTT_PORT" -http-address "127.0.0.1:$HTTP_PORT" -spool-dir "$3"
}

echo "== machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); InfluxDB runs on it too"
start_influx

STORM="-"; IDLE_RSS="-"; IDLE_HEAP="-"; IDLE_STACK="-"; IDLE_GOR="-"
if [ "$IDLE_DEVICES" != 0 ]; then
echo "== $IDLE_DEVICES idle connections ($SECRETS secrets), then a gateway restart: all reconnect at once"
config "$IDLE_DEVICES" "$W/idle.yaml" "$W/idle-spool"
start_gateway "$W/idle.yaml"
sleep 2
g0=$(metric go_goroutines); h0=$(metric go_memstats_heap_inuse_bytes); s0=$(metric go_memstats_stack_inuse_bytes); r0=$(proc_rss_kb "$GW")
bin/sanisim idle -broker "127.0.0.1:$MQTT_PORT" -devices "$IDLE_DEVICES" "$(secrets "$W/idle.yaml.secrets")" -duration 30m >"$W/idle.txt" 2>"$W/idle.err" &
IDLE=$!; pids+=("$IDLE")
if ! wait_line "$W/idle.txt" '^connected=' 600; then echo "idle devices did not all connect:"; cat "$W/idle.err"; exit 1; fi
sleep 3
echo "           $(cat "$W/idle.txt"); $(metric go_memstats_heap_inuse_bytes | awk '{ printf "%.0f", $1/1048576 }') MiB heap in use, $(metric go_memstats_stack_inuse_bytes | awk '{ printf "%.0f", $1/1048576 }') MiB of stacks just after; measuring after ${IDLE_SETTLE}s idle"
sleep "$IDLE_SETTLE"
g1=$(metric go_goroutines); h1=$(metric go_memstats_heap_inuse_bytes); s1=$(metric go_memstats_stack_inuse_bytes); r1=$(proc_rss_kb "$GW")
n=$(metric sanigate_devices_connected | cut -d. -f1)
echo "           $(cat "$W/idle.txt"); gateway counts $n connected"
IDLE_GOR=$(awk -v a="$g0" -v b="$g1" -v n="$IDLE_DEVICES" 'BEGIN { printf "%.2f", (b-a)/n }')
IDLE_HEAP=$(awk -v a="$h0" -v b="$h1" -v n="$IDLE_DEVICES" 'BEGIN { printf "%.1f", (b-a)/n/1024 }')
IDLE_STACK=$(awk -v a="$s0" -v b="$s1" -v n="$IDLE_DEVICES" 'BEGIN { printf "%.1f", (b-a)/n/1024 }')
IDLE_RSS=$(awk -v a="$r0" -v b="$r1" -v n="$IDLE_DEVICES" 'BEGIN { printf "%.1f", (b-a)/n }')
echo "           per idle connection: $IDLE_RSS KiB RSS, $IDLE_HEAP KiB heap in use, $IDLE_STACK KiB of stacks, $IDLE_GOR goroutines (gateway RSS $((r1 / 1024)) MiB, $(printf %.0f "$g1") goroutines)"
t0=$(date +%s.%N); stop_gateway; t1=$(date +%s.%N)
start_gateway "$W/idle.yaml"; t2=$(date +%s.%N)
echo "           gateway stopped in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b-a }') s, started (healthz answers) in $(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.1f", b-a }') s"
if wait_line "$W/idle.txt" '^reconnected=' 600; then
  LOST=$(sed -nE 's/^reconnected=[0-9]+ seconds=([0-9.]+).*/\1/p' "$W/idle.txt" | head -1)
  AT=$(sed -nE 's/^reconnected=.* at=([0-9.]+)/\1/p' "$W/idle.txt" | head -1)
  STORM=$(awk -v a="$t1" -v b="$AT" 'BEGIN { printf "%.1f", b-a }')
  echo "           all $IDLE_DEVICES reconnected $STORM s after the new gateway process started ($LOST s after the first connection was lost); gateway CPU since its start $(metric process_cpu_seconds_total) s"
else
  STORM="(not all within 600 s)"; echo "           not all reconnected within 600 s"
fi
kill "$IDLE" 2>/dev/null || true; wait "$IDLE" 2>/dev/null || true
stop_gateway
fi

config "$DEVICES" "$W/bench.yaml" "$W/spool"
start_gateway "$W/bench.yaml"

run_gateway() { # qos offset [rate]: sets US_PER_MSG and RATE_OUT
  local cpu0 fs0 a0 out cpu1 fs1 a1 secs
  cpu0=$(metric process_cpu_seconds_total); fs0=$(metric sanigate_spool_fsyncs_total); a0=$(metric sanigate_messages_accepted_total)
  out=$(bin/sanisim bench -broker "127.0.0.1:$MQTT_PORT" "$(secrets "$W/bench.yaml.secrets")" -devices "$DEVICES" -qos "$1" -window "$WINDOW" -rate "${3:-0}" -duration "$DURATION" -time-offset "$2")
  sleep 1
  cpu1=$(metric process_cpu_seconds_total); fs1=$(metric sanigate_spool_fsyncs_total); a1=$(metric sanigate_messages_accepted_total)
  echo "gateway:   $out"
  secs=$(echo "$out" | sed -E 's/.*elapsed=([0-9.]+)s.*/\1/')
  read -r US_PER_MSG RATE_OUT < <(awk -v c0="$cpu0" -v c1="$cpu1" -v a0="$a0" -v a1="$a1" -v s="$secs" 'BEGIN { n = a1 - a0; printf "%.1f %.0f\n", (c1-c0)/n*1e6, n/s }')
  awk -v c0="$cpu0" -v c1="$cpu1" -v a0="$a0" -v a1="$a1" -v f0="$fs0" -v f1="$fs1" -v s="$secs" 'BEGIN {
    n = a1 - a0
    printf "           accepted into the spool %.0f = %.0f/s; gateway CPU %.1f s = %.1f us/message; fsyncs %.0f/s, %.1f messages per fsync\n",
      n, n/s, c1-c0, (c1-c0)/n*1e6, (f1-f0)/s, (f1>f0 ? n/(f1-f0) : 0) }'
}

# Readings are stamped when sent, as by devices with synchronized clocks
# (-time-offset 0): each run's are newer than the last run's. Readings from
# hours back would be late data, judged again from InfluxDB, which is the
# read-back's benchmark (go test ./gateway -bench Readback), not this one.
echo "== QoS 1 at $RATE msg/s through the gateway into InfluxDB ($DEVICES devices, window $WINDOW, $DURATION)"
run_gateway 1 0 "$RATE"
MOD_US=$US_PER_MSG; MOD_RATE=$RATE_OUT
echo "== QoS 1 at saturation through the gateway into InfluxDB ($DEVICES devices, window $WINDOW, $DURATION)"
run_gateway 1 0
SAT_US=$US_PER_MSG; SAT_RATE=$RATE_OUT
PEAK_QOS1=$(proc_rss_mb "$GW")
echo "           gateway peak RSS so far (the two QoS 1 runs): $PEAK_QOS1 MiB"
echo "== QoS 0 through the gateway into InfluxDB (QoS 0 the client sends faster than anyone reads is lost in TCP buffers at close: count what was accepted)"
run_gateway 0 0
sleep 3
PEAK=$(proc_rss_mb "$GW")
echo "           points written to InfluxDB so far: $(metric sanigate_points_written_total | cut -d. -f1); gateway peak RSS $PEAK MiB"

if [ -n "$FIGURES" ]; then
  printf 'MOD_US=%s\nMOD_RATE=%s\nSAT_US=%s\nSAT_RATE=%s\nPEAK=%s\nPEAK_QOS1=%s\n' "$MOD_US" "$MOD_RATE" "$SAT_US" "$SAT_RATE" "$PEAK" "$PEAK_QOS1" >"$FIGURES"
fi
echo
echo "| figure (this run) | measured | goal |"
echo "|---|---|---|"
echo "| memory per idle MQTT connection ($IDLE_DEVICES idle devices) | $IDLE_RSS KiB RSS ($IDLE_HEAP KiB heap, $IDLE_STACK KiB stacks), $IDLE_GOR goroutines | <= 16 KB, <= 2 goroutines |"
echo "| $IDLE_DEVICES devices reconnecting after a restart ($SECRETS secrets), from the new process's start | $STORM s | <= 60 s |"
echo "| gateway CPU per message, $DEVICES devices, QoS 1 at $RATE msg/s offered ($MOD_RATE/s stored) | $MOD_US us | <= 30 us |"
echo "| same at saturation ($SAT_RATE msg/s accepted, all stored) | $SAT_US us | <= 20 us |"
echo "| gateway peak RSS in the QoS 1 runs (after the QoS 0 flood too) | $PEAK_QOS1 MiB ($PEAK MiB) | <= 256 MiB |"
echo

if [ "$BACKLOG" = 0 ]; then LOAD_DONE=1; fi
if [ "${LOAD_DONE:-0}" = 0 ]; then
echo "== backlog: InfluxDB down for ${BACKLOG}s under ${LIVE_RATE} msg/s live QoS 1 load, then back while live load continues"
kill "$INFLUX_PID"; wait "$INFLUX_PID" 2>/dev/null || true
LIVE_SECS=$((BACKLOG + 600))
bin/sanisim bench -broker "127.0.0.1:$MQTT_PORT" "$(secrets "$W/bench.yaml.secrets")" -devices 50 -qos 1 -rate "$LIVE_RATE" -duration "${LIVE_SECS}s" -time-offset 0 >"$W/live.txt" &
LIVE=$!
sleep "$BACKLOG"
lag=$(metric sanigate_spool_consumer_lag_bytes 'consumer="influxdb"')
w0=$(metric sanigate_points_written_total)
start_influx
t0=$(date +%s.%N)
while :; do
  sleep 1
  l=$(metric sanigate_spool_consumer_lag_bytes 'consumer="influxdb"')
  age=$(metric sanigate_spool_oldest_unsent_age_seconds 'consumer="influxdb"')
  if awk -v a="$age" 'BEGIN { exit !(a < 3) }'; then break; fi
  if awk -v t0="$t0" -v now="$(date +%s.%N)" 'BEGIN { exit !(now - t0 > 600) }'; then echo "           (gave up after 600 s)"; break; fi
done
t1=$(date +%s.%N); w1=$(metric sanigate_points_written_total)
awk -v t0="$t0" -v t1="$t1" -v w0="$w0" -v w1="$w1" -v live="$LIVE_RATE" -v lag="$lag" 'BEGIN {
  d = t1 - t0; r = (w1 - w0) / d
  printf "           backlog of %.0f MiB drained in %.1f s while live load went on: %.0f points/s written = %.1f x the live rate\n", lag/1048576, d, r, r/live }'
kill "$LIVE" 2>/dev/null || true; wait "$LIVE" 2>/dev/null || true
fi
[ "$MOSQUITTO" = 0 ] && exit 0

echo "== reference: Debian's mosquitto, broker only (no storage), same load"
scripts/install-packages.sh mosquitto >/dev/null
cat > "$W/mosquitto.conf" <<CONF
listener $MOSQ_PORT 127.0.0.1
allow_anonymous true
persistence false
max_inflight_messages 0
max_queued_messages 100000
CONF
/usr/sbin/mosquitto -c "$W/mosquitto.conf" >"$W/mosquitto.log" 2>&1 &
MQ=$!; pids+=("$MQ")
sleep 1
for q in 1 0; do
  c0=$(proc_cpu "$MQ")
  out=$(bin/sanisim bench -broker "127.0.0.1:$MOSQ_PORT" -devices "$DEVICES" -qos "$q" -window "$WINDOW" -duration "$DURATION")
  c1=$(proc_cpu "$MQ")
  echo "mosquitto: $out"
  echo "           mosquitto CPU $(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.1f", b-a}') s; peak RSS $(proc_rss_mb "$MQ") MiB"
done
