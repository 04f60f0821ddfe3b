#!/usr/bin/env bash
# Starts InfluxDB, the gateway and the simulated demo fleet, prints where to
# look, and stops everything on Ctrl-C. Data lives under .run/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUN="$ROOT/.run"
MQTT_ADDR=${SANIGATE_MQTT_ADDRESS:-127.0.0.1:1883}
HTTP_ADDR=${SANIGATE_HTTP_ADDRESS:-127.0.0.1:8080}
MQTTS_ADDR=${MQTTS_ADDRESS:-127.0.0.1:8883}
HTTPS_ADDR=${HTTPS_ADDRESS:-127.0.0.1:8443}
TLS="$RUN/tls"
INFLUX_PORT=${INFLUX_PORT:-8086}
INFLUX_URL="http://127.0.0.1:${INFLUX_PORT}"
mkdir -p "$RUN/influxdb" "$RUN/logs"
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
  echo ">> stopped; data kept in .run/ (make clean removes it)"
  exit 0
}
trap cleanup INT TERM EXIT

echo ">> starting InfluxDB on $INFLUX_URL"
influx_start "$RUN/influxdb" "$INFLUX_PORT" "$RUN/logs/influxd.log" warn
pids+=("$INFLUX_PID")

echo ">> generating throw-away TLS certificates in $TLS"
bin/sanisim gen-certs -dir "$TLS" -devices bin-0001 >/dev/null
echo ">> adding the console's demo users (one per role; kept in .run/cases.db)"
DEMO_USERS=(
  "dispatcher:city::-admin:demo-dispatcher"
  "north-bureau:district:north::demo-north-bureau"
  "north-crew:unit:enforcement-north::demo-north-crew"
  "greenclean:unit:greenclean::demo-greenclean"
)
for u in "${DEMO_USERS[@]}"; do
  IFS=: read -r name role scope admin pass <<<"$u"
  args=(-config examples/demo/sanigate.yaml -name "$name" -role "$role" -existing-ok)
  case "$role" in
    district) args+=(-district "$scope") ;;
    unit) args+=(-unit "$scope") ;;
  esac
  [ -n "$admin" ] && args+=("$admin")
  echo "$pass" | bin/sanigate user add "${args[@]}" >/dev/null
done

echo ">> starting the gateway"
bin/sanigate -config examples/demo/sanigate.yaml -mqtt-address "$MQTT_ADDR" -http-address "$HTTP_ADDR" \
  -tls-cert "$TLS/gateway.pem" -tls-key "$TLS/gateway-key.pem" -client-ca "$TLS/ca.pem" \
  -mqtt-tls-address "$MQTTS_ADDR" -https-address "$HTTPS_ADDR" \
  -influxdb-url "$INFLUX_URL" -spool-dir "$RUN/spool" 2>"$RUN/logs/sanigate.log" &
pids+=($!)
for _ in $(seq 1 100); do
  if curl -fsS -o /dev/null "http://$HTTP_ADDR/healthz" 2>/dev/null; then break; fi
  sleep 0.1
done

echo ">> starting the simulated fleet (238 MQTT devices, 5 Modbus simulators), playing a scenario day moved so that"
echo "   its first illegal dump ended minutes ago: the first case is filed within a minute, the rest follows live"
echo "   (violations of every type are injected at known times, listed in .run/scenario-truth.json)"
bin/sanisim run -broker "$MQTT_ADDR" -scenario -truth "$RUN/scenario-truth.json" 2>"$RUN/logs/sanisim.log" &
pids+=($!)

cat <<MSG

sanigate is running with the demo city.
  MQTT broker     mqtt://$MQTT_ADDR   (devices: username = id, password = demo-<id>)
  MQTT over TLS   mqtts://$MQTTS_ADDR  e.g. mosquitto_pub -h 127.0.0.1 -p ${MQTTS_ADDR##*:} --cafile $TLS/ca.pem \\
                    --cert $TLS/bin-0001.pem --key $TLS/bin-0001-key.pem \\
                    -i bin-0001-cli -t sanigate/v1/devices/bin-0001/status -m online
  HTTPS, wss      https://$HTTPS_ADDR   wss://$HTTPS_ADDR/mqtt   (CA: $TLS/ca.pem)
  metrics         http://$HTTP_ADDR/metrics
  health          http://$HTTP_ADDR/healthz   http://$HTTP_ADDR/readyz
  InfluxDB        $INFLUX_URL   database "sanigate"
                  try: curl -sG $INFLUX_URL/query --data-urlencode db=sanigate --data-urlencode 'q=SELECT count(*) FROM bin'
  console         http://$HTTP_ADDR/   log in as (user / password):
                    dispatcher   / demo-dispatcher     city office, every case, may add users
                    north-bureau / demo-north-bureau   Beiyuan (north) district
                    north-crew   / demo-north-crew     north enforcement bureau (a unit)
                    greenclean   / demo-greenclean     Greenclean sanitation (a contractor unit)
  cases API       curl -s -H 'Authorization: Bearer demo-city-office-token' http://$HTTP_ADDR/api/v1/cases
                  (also /api/v1/devices, /api/v1/kpis; cases are kept in .run/cases.db)
  Grafana         dashboards/README.md: point Grafana's provisioning at dashboards/provisioning
  logs            .run/logs/

Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}" || true
echo ">> a component exited; see .run/logs/"
