package fleet

// ClusterConfig is the cluster section: the NATS JetStream cluster that
// gateways and detectors share in cluster mode. With no NATS URL the gateway
// runs alone, which is the default. Zero values take the defaults given here
// (applied by the gateway).
type ClusterConfig struct {
	// NATS lists the URLs of the NATS servers (nats://host:4222); any of a
	// cluster's nodes will do, and more than one lets a gateway start while
	// one is down.
	NATS []string `yaml:"nats"`
	// Stream is the JetStream stream readings are forwarded to
	// (default SANIGATE_READINGS).
	Stream string `yaml:"stream"`
	// Replicas is how many NATS nodes hold each reading (default 3 when
	// three or more URLs are listed, else 1).
	Replicas int `yaml:"replicas"`
	// Partitions is how many partitions devices are spread over, by a hash
	// of their id (default 16). It is fixed for the life of the stream.
	Partitions int `yaml:"partitions"`
	// Retention is how long the stream keeps readings (default 24h); the
	// detectors' replay and any backlog must fit in it.
	Retention Duration `yaml:"retention"`
	// MaxBytes bounds the stream's size on each node; the oldest readings
	// go first (default 0: no bound but Retention).
	MaxBytes int64 `yaml:"max_bytes"`
	// DuplicateWindow is how long the stream remembers message ids to drop a
	// reading sent twice (default 2m).
	DuplicateWindow Duration `yaml:"duplicate_window"`
	// Window is how many readings may await the stream's acknowledgement at
	// once (default 1024).
	Window int `yaml:"window"`
	// AckTimeout is how long a reading may wait for its acknowledgement
	// before it is sent again (default 5s).
	AckTimeout Duration `yaml:"ack_timeout"`
	// LeaseTTL is how long a detector's claim on a partition lives without
	// renewal: a dead detector's partitions move after about this long
	// (default 10s).
	LeaseTTL Duration `yaml:"lease_ttl"`
	// Replay is how much of a partition a detector taking it over reads
	// again to rebuild detector state (default 1h).
	Replay Duration `yaml:"replay"`
	// SnapshotEvery is how often a detector saves the state of each
	// partition it owns to JetStream (default 1m), so that a new owner
	// reads again only what came after the snapshot.
	SnapshotEvery Duration `yaml:"snapshot_every"`
	// DetectorID names this process among the detectors (default: host
	// name and process id).
	DetectorID string `yaml:"detector_id"`
}
