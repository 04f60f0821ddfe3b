// Package dashboards holds sanigate's Grafana dashboards as code: typed
// panels and InfluxQL or PromQL queries, generated into dashboards/json by
// `go run ./dashboards/gen` (make dashboards), with the provisioning files
// that point a Grafana at the InfluxDB and Prometheus data sources they use.
//
// Every InfluxQL query is checked by the package's tests against a real
// InfluxDB 1.8 loaded with a simulated day of the demo city, after Grafana's
// macros and template variables are filled in the way Grafana fills them.
package dashboards
