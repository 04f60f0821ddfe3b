// Package packaging holds what installs sanigate rather than what runs: the
// hardened systemd unit and its system user, the Containerfile and a compose
// example beside InfluxDB and Grafana. Its tests check these files.
package packaging
