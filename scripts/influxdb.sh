# Sourced by the run and bench scripts: starts InfluxDB from .tools/bin.
#   influx_start DATA_DIR HTTP_PORT LOG_FILE [LOG_LEVEL]
# writes DATA_DIR/influxdb.conf, starts influxd in the background (its pid in
# INFLUX_PID), waits until it answers /ping and creates the sanigate database.
influx_start() {
  local dir=$1 port=$2 log=$3 level=${4:-error}
  mkdir -p "$dir"
  cat > "$dir/influxdb.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:$((port + 2))"
[meta]
  dir = "$dir/meta"
[data]
  dir = "$dir/data"
  wal-dir = "$dir/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:$port"
  log-enabled = false
[logging]
  level = "$level"
[monitor]
  store-enabled = false
CONF
  .tools/bin/influxd -config "$dir/influxdb.conf" >>"$log" 2>&1 &
  INFLUX_PID=$!
  for _ in $(seq 1 300); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/ping" 2>/dev/null && break
    sleep 0.1
  done
  curl -fsS -XPOST "http://127.0.0.1:$port/query" --data-urlencode "q=CREATE DATABASE sanigate" >/dev/null
}
