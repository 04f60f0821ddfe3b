// Package natstest starts real nats-server processes (installed by
// `make tools` into .tools/bin) with JetStream for tests: one node, or a
// cluster of three on free loopback ports, each with its own temporary store,
// stopped at cleanup. A node can be killed with SIGKILL and started again on
// the same ports and store, as a crash and a restart would.
package natstest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sanigate/sanigate/internal/testenv"
)

// Cluster is a set of running nats-server nodes.
type Cluster struct {
	Nodes []*Node
}

// Node is one nats-server process.
type Node struct {
	Name    string
	URL     string // client URL, nats://127.0.0.1:port
	monitor string // http://127.0.0.1:port
	bin     string
	conf    string
	logFile string
	mu      sync.Mutex
	proc    *testenv.Proc
}

// Start runs n nodes (1, or 3 or more for a replicated cluster) and waits
// until JetStream answers on every one of them. They are stopped at cleanup.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	bin, ok := testenv.Tool("SANIGATE_NATS_SERVER", "nats-server")
	if !ok {
		testenv.Missing(t, "nats-server (v2.15)", "run `make tools`, or set SANIGATE_NATS_SERVER")
	}
	// A free port may be taken by another program between the moment it is
	// picked and the moment a node binds it: try again with new ports.
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var c *Cluster
		c, err = start(t, bin, n)
		if err == nil {
			t.Cleanup(c.Stop)
			return c
		}
		c.Stop()
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	t.Fatal(err)
	return nil
}

func start(t testing.TB, bin string, n int) (*Cluster, error) {
	dir := t.TempDir()
	type ports struct{ client, cluster, monitor int }
	ps := make([]ports, n)
	for i := range ps {
		ps[i] = ports{testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)}
	}
	c := &Cluster{}
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		ndir := filepath.Join(dir, name)
		if err := os.MkdirAll(ndir, 0o755); err != nil {
			return c, err
		}
		conf := fmt.Sprintf("server_name: %s\nlisten: 127.0.0.1:%d\nhttp: 127.0.0.1:%d\n"+
			"jetstream {\n  store_dir: %q\n  max_memory_store: 64MB\n  max_file_store: 2GB\n}\n",
			name, ps[i].client, ps[i].monitor, filepath.Join(ndir, "js"))
		if n > 1 {
			var routes []string
			for j := range n {
				if j != i {
					routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ps[j].cluster))
				}
			}
			conf += fmt.Sprintf("cluster {\n  name: sanigate\n  listen: 127.0.0.1:%d\n  routes: [%s]\n}\n",
				ps[i].cluster, strings.Join(routes, ", "))
		}
		path := filepath.Join(ndir, "nats.conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			return c, err
		}
		c.Nodes = append(c.Nodes, &Node{
			Name: name, URL: fmt.Sprintf("nats://127.0.0.1:%d", ps[i].client),
			monitor: fmt.Sprintf("http://127.0.0.1:%d", ps[i].monitor),
			bin:     bin, conf: path, logFile: filepath.Join(ndir, "nats.log"),
		})
	}
	for _, nd := range c.Nodes {
		if err := nd.spawn(); err != nil {
			return c, err
		}
	}
	for _, nd := range c.Nodes {
		if err := nd.waitReady(60 * time.Second); err != nil {
			return c, err
		}
	}
	return c, c.waitJetStream(60 * time.Second)
}

// URLs is the comma-separated list of client URLs, as nats.Connect takes it.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		urls[i] = n.URL
	}
	return strings.Join(urls, ",")
}

// URLList is the client URLs one by one.
func (c *Cluster) URLList() []string { return strings.Split(c.URLs(), ",") }

// Stop stops every node.
func (c *Cluster) Stop() {
	for _, n := range c.Nodes {
		n.Stop()
	}
}

// Connect returns a client connection to the cluster, closed at cleanup.
func (c *Cluster) Connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatalf("connect to nats: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// waitJetStream waits until the JetStream API answers through the cluster
// (in a cluster, once a meta leader is elected).
func (c *Cluster) waitJetStream(limit time.Duration) error {
	nc, err := nats.Connect(c.URLs())
	if err != nil {
		return fmt.Errorf("natstest: connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := js.AccountInfo(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("natstest: JetStream did not answer within %s: %w", limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// spawn starts the node's process without waiting for it.
func (n *Node) spawn() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc != nil {
		return nil
	}
	p, err := testenv.StartProc(n.logFile, n.bin, "-c", n.conf)
	if err != nil {
		return fmt.Errorf("natstest: %s: %w", n.Name, err)
	}
	n.proc = p
	return nil
}

// waitReady waits until the node's /healthz says its JetStream is current.
func (n *Node) waitReady(limit time.Duration) error {
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p == nil {
		return fmt.Errorf("natstest: %s is not running", n.Name)
	}
	err := p.WaitHTTP(n.monitor+"/healthz", http.StatusOK, limit)
	if errors.Is(err, testenv.ErrExited) {
		n.mu.Lock()
		if n.proc == p {
			n.proc = nil // gone: the next spawn starts it afresh
		}
		n.mu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("natstest: %s: %w", n.Name, err)
	}
	return nil
}

// Kill stops the node with SIGKILL, as a crash would, and waits for it to exit.
func (n *Node) Kill() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc == nil {
		return
	}
	n.proc.Kill()
	n.proc = nil
}

// Restart starts a stopped node again on its ports and store, and waits
// until it is healthy.
func (n *Node) Restart() error {
	var err error
	for try := 0; try < 3; try++ {
		if err = n.spawn(); err != nil {
			return err
		}
		if err = n.waitReady(60 * time.Second); !errors.Is(err, testenv.ErrExited) {
			return err
		}
		// It died at start: its port may still be held for a moment by
		// the killed process's connections, or by another test. Try again.
		time.Sleep(time.Second)
	}
	return err
}

// Stop stops the node gracefully (SIGTERM), killing it after a while.
func (n *Node) Stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc == nil {
		return
	}
	n.proc.Stop(10 * time.Second)
	n.proc = nil
}

// LogTail is the last k bytes of the node's log, for a failing test's output.
func (n *Node) LogTail(k int) string { return testenv.FileTail(n.logFile, k) }

// WaitStream waits until the stream called name has a leader and all its
// replicas are current, so that publishes to it are answered.
func WaitStream(t testing.TB, js jetstream.JetStream, name string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s, err := js.Stream(ctx, name)
		if err == nil {
			var info *jetstream.StreamInfo
			info, err = s.Info(ctx)
			if err == nil && streamCurrent(info) {
				cancel()
				return
			}
		}
		cancel()
		if err != nil {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("natstest: stream %s has no current leader and replicas within 60s (%s)", name, last)
}

func streamCurrent(info *jetstream.StreamInfo) bool {
	if info.Cluster == nil {
		return true
	}
	if info.Cluster.Leader == "" || len(info.Cluster.Replicas) < info.Config.Replicas-1 {
		return false
	}
	for _, r := range info.Cluster.Replicas {
		if !r.Current || r.Offline {
			return false
		}
	}
	return true
}

// Message is one stored message of a stream.
type Message struct {
	Seq     uint64
	Stored  time.Time // when the stream stored it
	Subject string
	Header  nats.Header
	Data    []byte
}

// Messages reads every message of the stream, in sequence order.
func Messages(t testing.TB, js jetstream.JetStream, stream string) []Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("natstest: stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("natstest: stream %s: %v", stream, err)
	}
	want := info.State.Msgs
	var out []Message
	if want == 0 {
		return nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("natstest: ordered consumer on %s: %v", stream, err)
	}
	fails := 0
	for uint64(len(out)) < want {
		batch, err := c.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			// A loaded or recovering cluster may not answer at once.
			if fails++; fails > 20 || ctx.Err() != nil {
				t.Fatalf("natstest: fetch from %s: %v", stream, err)
			}
			time.Sleep(250 * time.Millisecond)
			continue
		}
		n := 0
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, Message{Seq: md.Sequence.Stream, Stored: md.Timestamp, Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
			n++
		}
		if err := batch.Error(); err != nil {
			if fails++; fails > 20 || ctx.Err() != nil {
				t.Fatalf("natstest: fetch from %s: %v", stream, err)
			}
			time.Sleep(250 * time.Millisecond)
		}
		if n == 0 && ctx.Err() != nil {
			t.Fatalf("natstest: read %d of %d messages of %s", len(out), want, stream)
		}
	}
	return out
}

// Publish stores data on subject and returns its stream sequence. A publish
// made while a stream's replicas elect a leader may get no answer at all, so
// each try waits a few seconds and the tries are bounded (about two minutes
// in all). id is the message ID: a try whose answer was lost but whose
// message was stored is not stored twice.
func Publish(t testing.TB, js jetstream.JetStream, subject string, data []byte, id string) uint64 {
	t.Helper()
	var err error
	for try := 0; try < 40; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		var ack *jetstream.PubAck
		ack, err = js.Publish(ctx, subject, data, jetstream.WithMsgID(id))
		cancel()
		if err == nil {
			return ack.Sequence
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("natstest: publish %s to %s: %v", id, subject, err)
	return 0
}
