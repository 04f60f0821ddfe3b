package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultStateBucket is the key-value bucket holding, per partition, the
// stream sequence its detection has handed on (floor.<p>).
const DefaultStateBucket = "SANIGATE_PARTITIONS"

// progress keeps each partition's floor, the stream sequence up to which
// its owners handed on what the readings raised, in a key-value bucket
// without expiry. The partition's durable consumer holds the same point as
// its acknowledgement floor; a new owner replaces that consumer (deleting
// it, then creating one that starts after the floor), and writes the floor
// here first, so that an owner dying between the delete and the create,
// or a create that times out, does not send the next owner back to the
// stream's beginning, raising everything again.
type progress struct {
	kv jetstream.KeyValue
}

func openProgress(ctx context.Context, js jetstream.JetStream, bucket string, replicas int) (*progress, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: bucket, Description: "sanigate partition detection progress and snapshots", History: 1,
		Replicas: replicas, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: state bucket %s: %w", bucket, err)
	}
	return &progress{kv: kv}, nil
}

func floorKey(p int) string { return "floor." + strconv.Itoa(p) }

// floor is the partition's last written floor (0: none).
func (pr *progress) floor(ctx context.Context, p int) (uint64, error) {
	e, err := pr.kv.Get(ctx, floorKey(p))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(string(e.Value()), 10, 64)
}

// setFloor writes the partition's floor.
func (pr *progress) setFloor(ctx context.Context, p int, seq uint64) error {
	_, err := pr.kv.Put(ctx, floorKey(p), []byte(strconv.FormatUint(seq, 10)))
	return err
}
