package fleet

// RetentionConfig is influxdb.retention: how long InfluxDB keeps each class
// of data. On InfluxDB 1.x the gateway creates or alters the retention
// policies and the rollup continuous queries at start; on 2.x it logs what
// to set up by hand.
//
//	influxdb:
//	  retention: {raw: 90d, rollup: 104w, forever: INF}
type RetentionConfig struct {
	// Manage (default true) lets the gateway keep the layout. Set it false
	// when an operator keeps the policies raw, rollup_1m and forever
	// himself, or when the bucket names a retention policy of its own.
	Manage *bool `yaml:"manage"`
	// Raw is how long raw readings are kept (default 90d), Rollup their
	// one-minute rollups (default 104w), Forever device events, violations,
	// coverage, cases and KPIs (default INF). InfluxQL durations.
	Raw     string `yaml:"raw"`
	Rollup  string `yaml:"rollup"`
	Forever string `yaml:"forever"`
}

// Managed reports whether the gateway keeps the retention layout.
func (r RetentionConfig) Managed() bool { return r.Manage == nil || *r.Manage }
