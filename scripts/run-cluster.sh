#!/usr/bin/env bash
# Cluster mode on one machine: three nats-server nodes (JetStream, replicas
# 3), InfluxDB, two gateways and the simulated demo fleet. Gateway 1 runs
# every role (edge, detect, writer, api); gateway 2 runs edge and writer, and
# its readings reach gateway 1's detector through the stream. Ctrl-C stops
# all. Data lives under .run/cluster/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUN="$ROOT/.run/cluster"
INFLUX_PORT=${INFLUX_PORT:-8086}
INFLUX_URL="http://127.0.0.1:${INFLUX_PORT}"
# The simulated devices connect here: gateway 1 by default, or a TCP load
# balancer in front of both gateways (README, "A load balancer in front").
SIM_BROKER=${SIM_BROKER:-127.0.0.1:1883}
mkdir -p "$RUN/logs" "$RUN/influxdb"
. scripts/influxdb.sh

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo ">> stopping"
  for ((i=${#pids[@]}-1; i>=0; i--)); do
    kill -TERM "${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" 2>/dev/null || true
  done
  echo ">> stopped; data kept in .run/cluster/ (make clean removes it)"
  exit 0
}
trap cleanup INT TERM EXIT

echo ">> starting three nats-server nodes (client ports 4222-4224, monitoring 8222-8224)"
URLS=nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224
for i in 1 2 3; do
  mkdir -p "$RUN/nats-$i"
  routes=""
  for j in 1 2 3; do
    [ "$j" = "$i" ] || routes="$routes nats-route://127.0.0.1:$((6221 + j))"
  done
  cat > "$RUN/nats-$i/nats.conf" <<CONF
server_name: n$i
listen: 127.0.0.1:$((4221 + i))
http: 127.0.0.1:$((8221 + i))
jetstream { store_dir: "$RUN/nats-$i/js", max_file_store: 4GB }
cluster { name: sanigate, listen: 127.0.0.1:$((6221 + i)), routes: [$(echo $routes | sed 's/ /, /g')] }
CONF
  .tools/bin/nats-server -c "$RUN/nats-$i/nats.conf" 2>"$RUN/logs/nats-$i.log" &
  pids+=($!)
done
for i in 1 2 3; do
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$((8221 + i))/healthz" 2>/dev/null && break
    sleep 0.1
  done
done

echo ">> starting InfluxDB on $INFLUX_URL"
influx_start "$RUN/influxdb" "$INFLUX_PORT" "$RUN/logs/influxd.log" warn
pids+=("$INFLUX_PID")

# Gateway 2 keeps its own case file (the case store is shared through
# PostgreSQL in production, cases.store, and only gateway 1 detects here) and
# polls no Modbus device: each is polled by one gateway, or its readings
# would be taken twice.
sed -e '/^modbus:/,/^cases:/{/^cases:/!d}' -e "s#^\(  [a-z_]*: \)\([a-z_]*\.geojson\)#\1$ROOT/examples/demo/\2#" \
    -e "s#path: ../../.run/cases.db#path: $RUN/gw2-cases.db#" examples/demo/sanigate.yaml > "$RUN/gw2.yaml"

echo ">> starting gateway 1 (mqtt 127.0.0.1:1883, http 127.0.0.1:8080; roles edge,detect,writer,api)"
bin/sanigate -config examples/demo/sanigate.yaml -mqtt-address 127.0.0.1:1883 -http-address 127.0.0.1:8080 \
  -influxdb-url "$INFLUX_URL" -spool-dir "$RUN/gw1-spool" -nats "$URLS" -roles edge,detect,writer,api 2>"$RUN/logs/gw1.log" &
pids+=($!)
echo ">> starting gateway 2 (mqtt 127.0.0.1:1884, http 127.0.0.1:8081; roles edge,writer)"
bin/sanigate -config "$RUN/gw2.yaml" -mqtt-address 127.0.0.1:1884 -http-address 127.0.0.1:8081 \
  -influxdb-url "$INFLUX_URL" -spool-dir "$RUN/gw2-spool" -nats "$URLS" -roles edge,writer 2>"$RUN/logs/gw2.log" &
pids+=($!)
for port in 8080 8081; do
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null && break
    sleep 0.1
  done
done

echo ">> starting the simulated fleet on $SIM_BROKER, playing today's scenario live (.run/cluster/scenario-truth.json)"
bin/sanisim run -broker "$SIM_BROKER" -scenario -truth "$RUN/scenario-truth.json" 2>"$RUN/logs/sanisim.log" &
pids+=($!)

cat <<MSG

sanigate is running in cluster mode.
  NATS            $URLS   (monitoring http://127.0.0.1:8222/jsz?streams=1)
  gateway 1       mqtt://127.0.0.1:1883   http://127.0.0.1:8080/metrics  /healthz  /readyz  /api/v1
  gateway 2       mqtt://127.0.0.1:1884   http://127.0.0.1:8081/metrics  /healthz  /readyz
                  (devices may report to either; gateway 2's readings are detected by gateway 1)
  forwarding      curl -s http://127.0.0.1:8080/metrics | grep sanigate_cluster_
  InfluxDB        $INFLUX_URL   database "sanigate"
  cases API       curl -s -H 'Authorization: Bearer demo-city-office-token' http://127.0.0.1:8080/api/v1/cases
  logs            .run/cluster/logs/

Press Ctrl-C to stop.
MSG
# Unlike make run, a component that exits (a gateway or a NATS node killed
# to watch the others take over) does not stop the rest.
live=("${pids[@]}")
while [ ${#live[@]} -gt 0 ]; do
  gone=
  wait -n -p gone "${live[@]}" || true
  echo ">> process $gone exited (see .run/cluster/logs/); the others go on, Ctrl-C stops all"
  rest=()
  for p in "${live[@]}"; do [ "$p" = "$gone" ] || rest+=("$p"); done
  live=("${rest[@]}")
done
