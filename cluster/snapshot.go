package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for partition snapshots.
const (
	DefaultSnapshotBucket = "SANIGATE_SNAPSHOTS"
	DefaultSnapshotEvery  = time.Minute
)

// snapshots keeps, per partition, the last snapshot of its engine's state
// (violations.Engine.Snapshot, the state log's encoding) with the stream
// sequence it reflects, as the object "partition-<p>" of a JetStream object
// store (a snapshot may outgrow a key-value entry). The owner saves one
// every SnapshotEvery while it works, and one when it hands the partition
// back cleanly; a new owner restores it and reads again only the messages
// after that sequence, up to the floor, instead of the last Replay of the
// partition.
type snapshots struct {
	obj jetstream.ObjectStore
}

func openSnapshots(ctx context.Context, js jetstream.JetStream, bucket string, replicas int) (*snapshots, error) {
	obj, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: bucket, Description: "sanigate partition detector snapshots", Replicas: replicas,
		Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: snapshot bucket %s: %w", bucket, err)
	}
	return &snapshots{obj: obj}, nil
}

func snapshotName(p int) string { return "partition-" + strconv.Itoa(p) }

// errNoSnapshot: the partition has none yet.
var errNoSnapshot = errors.New("no snapshot")

// load reads partition p's last snapshot.
func (s *snapshots) load(ctx context.Context, p int) ([]byte, error) {
	b, err := s.obj.GetBytes(ctx, snapshotName(p))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, errNoSnapshot
	}
	return b, err
}

// save replaces partition p's snapshot; seq is kept beside it for a reader.
func (s *snapshots) save(ctx context.Context, p int, snap []byte, seq uint64) error {
	_, err := s.obj.Put(ctx, jetstream.ObjectMeta{Name: snapshotName(p),
		Metadata: map[string]string{"seq": strconv.FormatUint(seq, 10)}}, bytes.NewReader(snap))
	return err
}

// snapshotMetrics count what the owners did with snapshots.
type snapshotMetrics struct {
	saved    prometheus.Counter
	restores *prometheus.CounterVec
	rebuilt  prometheus.Counter
}

func newSnapshotMetrics() *snapshotMetrics {
	return &snapshotMetrics{
		saved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sanigate_cluster_snapshots_saved_total", Help: "Partition snapshots this detector stored in JetStream.",
		}),
		restores: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sanigate_cluster_snapshot_restores_total",
			Help: "Partitions taken over, by how their state was rebuilt: restored from the snapshot, or by the time-based replay because it was absent or unreadable.",
		}, []string{"result"}),
		rebuilt: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sanigate_cluster_rebuild_messages_total", Help: "Stream messages read again to rebuild detector state on taking partitions over.",
		}),
	}
}

func (m *snapshotMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.saved, m.restores, m.rebuilt}
}
