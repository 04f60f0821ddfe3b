package cluster

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sanigate/sanigate/violations"
)

// Defaults for leases.
const (
	DefaultLeaseBucket = "SANIGATE_OWNERS"
	DefaultLeaseTTL    = 10 * time.Second
)

// leases keeps this detector's claims on partitions in a JetStream key-value
// bucket whose keys expire after the TTL: "partition.<p>" holds the id of its
// owner, "member.<id>" says a detector is alive. A claim is a Create (which
// fails while another owner's key lives), a renewal an Update at the
// revision last written (which fails once the key expired and someone else
// claimed it). So at most one detector holds a partition at a time, and a
// dead one's partitions are free again one TTL after its last renewal.
// Each detector takes at most its share (partitions / members, rounded up)
// and gives back what is beyond it, so the load spreads when one joins.
//
// Only the detector's lease goroutine uses a leases.
type leases struct {
	kv         jetstream.KeyValue
	id         string
	ttl        time.Duration
	partitions int
	held       map[int]heldLease
	// leaving are the partitions given back by the last step, with the
	// revision of their key: the key is deleted (handBack) only once the
	// work on them stopped, so that no two detectors work on one at once.
	leaving map[int]uint64
	// epoch is when the bucket was created: revisions start again in a
	// bucket made anew, so fencing scopes name the bucket's epoch.
	epoch int64
}

type heldLease struct {
	claimed uint64 // the revision of the claim (Create)
	rev     uint64
	renewed time.Time // when the claim or its last renewal was written
}

var keyUnsafe = regexp.MustCompile(`[^-_=a-zA-Z0-9]`)

// openLeases creates or updates the bucket and returns the claims of id.
func openLeases(ctx context.Context, js jetstream.JetStream, bucket, id string, ttl time.Duration, replicas, partitions int) (*leases, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: bucket, Description: "sanigate partition owners", TTL: ttl, History: 1,
		Replicas: replicas, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: lease bucket %s: %w", bucket, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster: lease bucket %s: %w", bucket, err)
	}
	var epoch int64
	if bs, ok := st.(*jetstream.KeyValueBucketStatus); ok {
		epoch = bs.StreamInfo().Created.UnixNano()
	}
	return &leases{kv: kv, id: keyUnsafe.ReplaceAllString(id, "_"), ttl: ttl, partitions: partitions,
		held: map[int]heldLease{}, leaving: map[int]uint64{}, epoch: epoch}, nil
}

func partitionKey(p int) string { return "partition." + strconv.Itoa(p) }

// fence is the fencing token of the lease held on p: its scope names the
// stream, the partition and the bucket's epoch, its token the revision of
// the claim, greater for every later owner.
func (l *leases) fence(stream string, p int) violations.Fence {
	return violations.Fence{Scope: fmt.Sprintf("%s/%d@%d", stream, p, l.epoch), Token: l.held[p].claimed}
}

// valid reports whether the lease on p is surely still this detector's:
// renewed less than two thirds of the TTL ago, so that it stops working on
// a partition before anyone else may claim it.
func (l *leases) valid(p int) bool {
	h, ok := l.held[p]
	return ok && time.Since(h.renewed) < l.ttl*2/3
}

// step renews what is held, claims free partitions up to this detector's
// share and gives back what is beyond it. It returns what was gained and lost.
func (l *leases) step(ctx context.Context) (gained, lost []int, err error) {
	if _, err := l.kv.Put(ctx, "member."+l.id, []byte(time.Now().UTC().Format(time.RFC3339Nano))); err != nil {
		return nil, l.expire(), fmt.Errorf("cluster: announce detector: %w", err)
	}
	for _, p := range l.sorted() {
		h := l.held[p]
		now := time.Now()
		rev, err := l.kv.Update(ctx, partitionKey(p), []byte(l.id), h.rev)
		if err != nil {
			if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
				delete(l.held, p)
				lost = append(lost, p)
			}
			continue // a failed renewal expires by itself (see valid)
		}
		l.held[p] = heldLease{claimed: h.claimed, rev: rev, renewed: now}
	}
	lost = append(lost, l.expire()...)
	share, err := l.share(ctx)
	if err != nil {
		return nil, lost, err
	}
	for held := l.sorted(); len(held) > share; held = held[:len(held)-1] {
		p := held[len(held)-1]
		l.leaving[p] = l.held[p].rev
		delete(l.held, p)
		lost = append(lost, p)
	}
	for p := 0; p < l.partitions && len(l.held) < share; p++ {
		if _, ok := l.held[p]; ok {
			continue
		}
		now := time.Now()
		rev, err := l.kv.Create(ctx, partitionKey(p), []byte(l.id))
		if err != nil {
			continue // owned by another, or NATS did not answer: try again next step
		}
		l.held[p] = heldLease{claimed: rev, rev: rev, renewed: now}
		gained = append(gained, p)
	}
	return gained, lost, nil
}

// handBack deletes the keys of the partitions the last step gave back, once
// their work stopped, so that another detector may claim them at once.
func (l *leases) handBack(ctx context.Context) {
	for p, rev := range l.leaving {
		_ = l.kv.Delete(ctx, partitionKey(p), jetstream.LastRevision(rev))
		delete(l.leaving, p)
	}
}

// expire drops the leases not renewed in time.
func (l *leases) expire() []int {
	var lost []int
	for _, p := range l.sorted() {
		if !l.valid(p) {
			delete(l.held, p)
			lost = append(lost, p)
		}
	}
	return lost
}

// share is how many partitions this detector should hold.
func (l *leases) share(ctx context.Context) (int, error) {
	lister, err := l.kv.ListKeysFiltered(ctx, "member.>")
	if err != nil {
		return 0, fmt.Errorf("cluster: list detectors: %w", err)
	}
	members := 0
	for range lister.Keys() {
		members++
	}
	members = max(members, 1)
	return (l.partitions + members - 1) / members, nil
}

// release gives every lease back (at a clean stop), so others take over at once.
func (l *leases) release(ctx context.Context) {
	l.handBack(ctx)
	for p, h := range l.held {
		_ = l.kv.Delete(ctx, partitionKey(p), jetstream.LastRevision(h.rev))
	}
	_ = l.kv.Delete(ctx, "member."+l.id)
	l.held = map[int]heldLease{}
}

func (l *leases) sorted() []int {
	ps := make([]int, 0, len(l.held))
	for p := range l.held {
		ps = append(ps, p)
	}
	sort.Ints(ps)
	return ps
}
