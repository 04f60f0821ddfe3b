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
			// A stream just created, or whose leader was just killed, may
			// answer nothing until its replicas elect a leader: a publish
			// then waits for an answer that never comes. Each try has its
			// own short wait, and the tries are bounded; the message ID
			// keeps a try whose answer was lost from storing twice.
			var err error
			for try := 0; try < 40; try++ {
				pctx, pcancel := context.WithTimeout(context.Background(), 3*time.Second)
				_, err = js.Publish(pctx, "t.x", []byte{byte(i)}, jetstream.WithMsgID(fmt.Sprintf("m-%d", sent)))
				pcancel()
				if err == nil {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if err != nil {
				for k, nd := range c.Nodes {
					t.Logf("node %d log:\n%s", k, nd.LogTail(4000))
				}
				t.Fatalf("publish %d: %v", i, err)
			}
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
