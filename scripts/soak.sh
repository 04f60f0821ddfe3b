#!/usr/bin/env bash
# Soak: the real gateway with a real InfluxDB under steady QoS 1 load, printing
# the gateway's resident memory, Go heap in use and goroutines each minute
# (from /metrics), to show that memory stays flat.
#
#   make soak                                  200 devices, 5,000 msg/s, 30 minutes
#   DURATION=5m RATE=2000 make soak            shorter, slower
#   OUTAGE=5m RATE=2000 make soak              InfluxDB down for OUTAGE from minute 2
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICES=${DEVICES:-200}
RATE=${RATE:-5000}
DURATION=${DURATION:-30m}
OUTAGE=${OUTAGE:-}
EVERY=${EVERY:-60}
BASE=${SOAK_PORT_BASE:-19100}
INFLUX_PORT=$((BASE + 86)); MQTT_PORT=$((BASE + 883)); HTTP_PORT=$((BASE + 80))
W=$(mktemp -d)
. scripts/influxdb.sh
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

metric() { # metric NAME: sum of a metric from the gateway's /metrics
  curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" | awk -v n="$1" '$1 ~ "^"n"({|$)" { s += $2 } END { printf "%.0f\n", s }'
}
seconds() { # seconds DURATION (Go syntax: 90s, 5m, 1h)
  awk -v d="$1" 'BEGIN { n = d + 0; u = substr(d, length(d)); print (u == "h" ? n * 3600 : u == "m" ? n * 60 : n) }'
}

echo "== soak: $DEVICES devices, QoS 1, $RATE msg/s for $DURATION; $(nproc) cores; InfluxDB runs on this machine too"
influx_start "$W/influx" "$INFLUX_PORT" "$W/influxd.log"
pids+=("$INFLUX_PID")
bin/sanisim bench-config -devices "$DEVICES" -out "$W/soak.yaml" -influxdb-url "http://127.0.0.1:$INFLUX_PORT" \
  -mqtt-address "127.0.0.1:$MQTT_PORT" -http-address "127.0.0.1:$HTTP_PORT" -spool-dir "$W/spool"
bin/sanigate -config "$W/soak.yaml" -log-level warn ${PPROF:+-pprof} 2>"$W/sanigate.log" &
GW=$!; pids+=("$GW")
for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$HTTP_PORT/healthz" 2>/dev/null && break; sleep 0.1; done

bin/sanisim bench -broker "127.0.0.1:$MQTT_PORT" -devices "$DEVICES" -qos 1 -window 8 -rate "$RATE" \
  -duration "$DURATION" -time-offset 0s >"$W/load.txt" 2>&1 &
LOAD=$!; pids+=("$LOAD")
total=$(seconds "$DURATION")
outage_at=120; outage_end=$((outage_at + $( [ -n "$OUTAGE" ] && seconds "$OUTAGE" || echo 0 )))
printf '%6s %10s %12s %11s %12s %14s %12s\n' minute rss_mib heap_mib goroutines accepted points_written det_lag_mib
t0=$(date +%s); n=0; down=0
while kill -0 "$LOAD" 2>/dev/null; do
  sleep 1
  el=$(( $(date +%s) - t0 ))
  if [ -n "$OUTAGE" ] && [ "$down" = 0 ] && [ "$el" -ge "$outage_at" ] && [ "$el" -lt "$outage_end" ]; then
    kill "$INFLUX_PID"; wait "$INFLUX_PID" 2>/dev/null || true; down=1; echo "   (InfluxDB stopped)"
  fi
  if [ "$down" = 1 ] && [ "$el" -ge "$outage_end" ]; then
    influx_start "$W/influx" "$INFLUX_PORT" "$W/influxd.log"; pids+=("$INFLUX_PID"); down=2; echo "   (InfluxDB back)"
  fi
  if [ $((el / EVERY)) -gt "$n" ]; then
    n=$((el / EVERY))
    rss=$(awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$GW/status")
    heap=$(metric go_memstats_heap_inuse_bytes); gr=$(metric go_goroutines)
    acc=$(metric sanigate_messages_accepted_total); wr=$(metric sanigate_points_written_total)
    lag=$(curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" | awk '/^sanigate_spool_consumer_lag_bytes\{consumer="detectors"\}/ { printf "%.1f", $2 / 1048576 }')
    printf '%6d %10d %12.1f %11d %12d %14d %12s\n' "$n" "$rss" "$(awk -v h="$heap" 'BEGIN { print h / 1048576 }')" "$gr" "$acc" "$wr" "${lag:-0}"
  fi
  [ "$el" -gt $((total + 120)) ] && break
done
wait "$LOAD" 2>/dev/null || true
echo "load:  $(cat "$W/load.txt")"
echo "gateway peak RSS $(awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$GW/status") MiB; detector re-runs $(metric sanigate_violation_reruns_total), late readings $(metric sanigate_violation_late_readings_total)"
