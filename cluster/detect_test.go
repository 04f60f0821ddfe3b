package cluster_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sanigate/sanigate/cluster"
	"github.com/sanigate/sanigate/internal/natstest"
	"github.com/sanigate/sanigate/internal/violationstest"
	"github.com/sanigate/sanigate/telemetry"
	"github.com/sanigate/sanigate/violations"
)

const (
	childEnv   = "SANIGATE_DETECTOR_CHILD" // id,urls,t0 (unix seconds)
	partitions = 4
	leaseTTL   = 3 * time.Second
)

// TestDetectorChild is the detector process of TestDetectionFailover: it runs
// only when that test starts this test binary with childEnv set, and prints
// each violation it raises as "RAISE type device resolved".
func TestDetectorChild(t *testing.T) {
	spec := os.Getenv(childEnv)
	if spec == "" {
		t.Skip("runs only as the child of TestDetectionFailover")
	}
	parts := strings.SplitN(spec, ",", 3)
	t0, _ := strconv.ParseInt(parts[2], 10, 64)
	cfg := violationstest.Demo(t)
	dc := violations.DefaultConfig()
	sink := printSink{}
	d, err := cluster.NewDetector(cluster.DetectorOptions{
		URLs: strings.Split(parts[1], " "), ID: parts[0],
		Stream:   cluster.StreamOptions{Name: "D", Partitions: partitions, Replicas: 3},
		LeaseTTL: leaseTTL, Lateness: dc.Lateness.D(),
		Now:  func() time.Time { return time.Unix(t0, 0) },
		Sink: sink,
		Engine: func(_ int, s violations.Sink) *violations.Engine {
			return violations.NewEngine(cfg, dc, s, violations.EngineOptions{Shards: 1})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := d.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

type printSink struct{}

var printMu sync.Mutex

func (printSink) Raise(_ context.Context, v violations.Violation) error {
	printMu.Lock()
	defer printMu.Unlock()
	fmt.Printf("RAISE %s %s %v\n", v.Type, v.Device, v.Resolved)
	return nil
}

// child is a detector process and what it printed.
type child struct {
	id     string
	cmd    *exec.Cmd
	mu     sync.Mutex
	raised []string
}

func startChild(t *testing.T, id string, nc *natstest.Cluster, t0 time.Time) *child {
	t.Helper()
	c := &child{id: id}
	c.cmd = exec.Command(os.Args[0], "-test.run=^TestDetectorChild$", "-test.v")
	c.cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%s,%d", childEnv, id, strings.Join(nc.URLList(), " "), t0.Unix()))
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "RAISE ") {
				c.mu.Lock()
				c.raised = append(c.raised, strings.TrimPrefix(line, "RAISE "))
				c.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { _ = c.cmd.Process.Kill(); _ = c.cmd.Wait() })
	return c
}

func (c *child) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.raised...)
}

// owners reads the lease bucket: partition -> owner id.
func owners(t *testing.T, js jetstream.JetStream) map[int]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, cluster.DefaultLeaseBucket)
	if err != nil {
		return nil
	}
	out := map[int]string{}
	for p := range partitions {
		e, err := kv.Get(ctx, "partition."+strconv.Itoa(p))
		if err == nil {
			out[p] = string(e.Value())
		}
	}
	return out
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDetectionFailover runs two detector processes on a three-node cluster:
// they share the partitions, one owner each; the owner of a bin's partition
// sees the first of two hot readings and is killed with SIGKILL; the other
// takes the partition over, rebuilds the bin's state from the stream and,
// with the second hot reading, raises the fire: once, in all.
func TestDetectionFailover(t *testing.T) {
	nc := natstest.Start(t, 3)
	_, js := nc.Connect(t)
	so := cluster.StreamOptions{Name: "D", Partitions: partitions, Replicas: 3}.WithDefaults()
	if _, err := cluster.EnsureStream(t.Context(), js, so); err != nil {
		t.Fatal(err)
	}
	natstest.WaitStream(t, js, "D")
	t0 := time.Now().Truncate(time.Second)
	a := startChild(t, "a", nc, t0)
	waitFor(t, 30*time.Second, "detector a to own every partition", func() bool {
		o := owners(t, js)
		return len(o) == partitions && count(o, "a") == partitions
	})
	b := startChild(t, "b", nc, t0)
	waitFor(t, 30*time.Second, "the partitions to be shared", func() bool {
		o := owners(t, js)
		return len(o) == partitions && count(o, "a") == partitions/2 && count(o, "b") == partitions/2
	})

	const dev = "bin-0001"
	p := cluster.Partition(dev, partitions)
	subject := cluster.Subject(so.SubjectPrefix, p)
	publish := func(from, to int) uint64 {
		var last uint64
		for i := from; i < to; i++ {
			r := telemetry.Reading{Device: dev, Kind: telemetry.KindBin, Time: t0.Add(time.Duration(i) * 5 * time.Minute)}
			for k, v := range map[string]float64{"fill_pct": 40, "temp_c": 15, "tilt_deg": 1, "battery_pct": 80, "contamination_pct": 5, "lat": 39.857, "lon": 116.311} {
				r.SetFloat(k, v)
			}
			if i == 20 || i == 21 {
				r.SetFloat("temp_c", 75)
			}
			last = natstest.Publish(t, js, subject, telemetry.AppendLine(nil, &r), dev+"-"+strconv.Itoa(i))
		}
		return last
	}
	acked := func(seq uint64) func() bool {
		return func() bool {
			c, err := js.Consumer(t.Context(), "D", "detect-"+strconv.Itoa(p))
			if err != nil {
				return false
			}
			info, err := c.Info(t.Context())
			return err == nil && info.AckFloor.Stream >= seq
		}
	}
	seq := publish(0, 21) // up to the first hot reading
	waitFor(t, 30*time.Second, "the owner to acknowledge the first part", acked(seq))
	owner := map[string]*child{"a": a, "b": b}[owners(t, js)[p]]
	other := map[string]*child{"a": b, "b": a}[owner.id]
	if len(owner.list())+len(other.list()) != 0 {
		t.Fatalf("raised before the second hot reading: %v %v", owner.list(), other.list())
	}
	killed := time.Now()
	_ = owner.cmd.Process.Signal(syscall.SIGKILL)
	_ = owner.cmd.Wait()
	waitFor(t, 30*time.Second, "the other detector to take the partition over", func() bool { return owners(t, js)[p] == other.id })
	failover := time.Since(killed)
	seq = publish(21, 41)
	waitFor(t, 30*time.Second, "the new owner to acknowledge the rest", acked(seq))
	waitFor(t, 30*time.Second, "the fire", func() bool { return len(other.list()) > 0 })
	time.Sleep(2 * time.Second) // anything raised twice would show by now
	fires := 0
	for _, l := range append(owner.list(), other.list()...) {
		if strings.HasPrefix(l, violations.BinFire+" "+dev+" false") {
			fires++
		}
	}
	if fires != 1 {
		t.Fatalf("the fire was raised %d times (killed owner %v, new owner %v), want once", fires, owner.list(), other.list())
	}
	t.Logf("partition %d moved from %s to %s %s after the SIGKILL (lease TTL %s); the fire was raised once, by %s",
		p, owner.id, other.id, failover.Round(10*time.Millisecond), leaseTTL, other.id)
}

func count(o map[int]string, id string) int {
	n := 0
	for _, v := range o {
		if v == id {
			n++
		}
	}
	return n
}
