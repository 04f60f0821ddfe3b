package natstest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sanigate/sanigate/internal/natstest"
)

// TestClusterSurvivesOneNode checks the helper gives a real three-node
// cluster: a stream with three replicas keeps taking writes with one node
// killed, and the node comes back.
func TestClusterSurvivesOneNode(t *testing.T) {
	c := natstest.Start(t, 3)
	_, js := c.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	natstest.WaitStream(t, js, "T")
	sent := 0
	publish := func(n int) {
		for i := range n {
			natstest.Publish(t, js, "t.x", []byte{byte(i)}, fmt.Sprintf("m-%d", sent))
			sent++
		}
	}
	publish(10)
	c.Nodes[0].Kill()
	publish(10)
	if err := c.Nodes[0].Restart(); err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := info.State.Msgs, uint64(20); got != want {
		t.Fatalf("stream holds %d messages, want %d", got, want)
	}
	if got := info.Config.Replicas; got != 3 {
		t.Fatalf("replicas %d, want 3", got)
	}
}
