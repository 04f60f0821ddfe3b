package broker

import (
	"runtime"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// ackWriteTimeout bounds one write of acknowledgements to a client. A write
// blocks only when the client has left its socket's whole send buffer of
// PUBACKs unread (thousands, where an honest client has at most its receive
// maximum in flight); such a client is disconnected after this long, since
// while its write blocks, the other clients of its shard wait.
const ackWriteTimeout = time.Second

// ackers sends PUBACKs once the gateway has made each message durable. mochi
// would acknowledge a QoS 1 publish as soon as its hook returned, so the hook
// would have to block the client's read loop for a whole group commit per
// message; instead the hook returns at once (mochi sends nothing) and an
// acker answers later. Acknowledgements leave in the order the publishes
// arrived ([MQTT-4.6.0-2]), and those of a client that are ready together
// leave in one write. A few shard goroutines serve every connection: an idle
// connection costs no goroutine here.
type ackers struct {
	b      *Broker
	shards []*ackShard
	next   uint32
	mu     sync.Mutex
	once   sync.Once
	stop   chan struct{}
}

// ackShard is one sending goroutine and the clients with answers ready.
type ackShard struct {
	mu    sync.Mutex
	ready []*acker
	wake  chan struct{}
}

// acker is one client's queue of publishes waiting for their verdict.
type acker struct {
	cl    *mqtt.Client
	v5    bool
	shard *ackShard

	mu     sync.Mutex
	queue  []ackSlot // publishes not answered yet, in arrival order
	head   uint64    // sequence number of queue[0]
	queued bool      // in its shard's ready list
}

// ackSlot is one QoS 1 publish waiting for its verdict.
type ackSlot struct {
	id    uint16
	ready bool
	err   error
}

func newAckers(b *Broker) *ackers {
	n := max(8, 4*runtime.GOMAXPROCS(0))
	as := &ackers{b: b, stop: make(chan struct{})}
	for range n {
		as.shards = append(as.shards, &ackShard{wake: make(chan struct{}, 1)})
	}
	return as
}

// start runs the shard goroutines; close stops them.
func (as *ackers) start() {
	as.once.Do(func() {
		for _, s := range as.shards {
			go as.run(s)
		}
	})
}

func (as *ackers) close() {
	as.mu.Lock()
	defer as.mu.Unlock()
	select {
	case <-as.stop:
	default:
		close(as.stop)
	}
}

// add gives a client its acker, on the next shard in turn.
func (as *ackers) add(cl *mqtt.Client) *acker {
	as.mu.Lock()
	s := as.shards[as.next%uint32(len(as.shards))]
	as.next++
	as.mu.Unlock()
	return &acker{cl: cl, v5: cl.Properties.ProtocolVersion == 5, shard: s}
}

// reserve takes the next place in the acknowledgement order and returns its
// sequence number.
func (a *acker) reserve(id uint16) uint64 {
	a.mu.Lock()
	seq := a.head + uint64(len(a.queue))
	a.queue = append(a.queue, ackSlot{id: id})
	a.mu.Unlock()
	return seq
}

// doneFunc is the completion a Handler calls for the publish at seq.
func (a *acker) doneFunc(seq uint64) func(error) {
	return func(err error) { a.complete(seq, err) }
}

// complete records the verdict of the publish at seq (the first verdict
// counts) and, when the head of the client's queue may now be answered,
// hands the client to its shard. It never blocks.
func (a *acker) complete(seq uint64, err error) {
	a.mu.Lock()
	if i := seq - a.head; seq >= a.head && i < uint64(len(a.queue)) && !a.queue[i].ready {
		a.queue[i].ready, a.queue[i].err = true, err
	}
	push := !a.queued && len(a.queue) > 0 && a.queue[0].ready
	if push {
		a.queued = true
	}
	a.mu.Unlock()
	if !push {
		return
	}
	sh := a.shard
	sh.mu.Lock()
	sh.ready = append(sh.ready, a)
	sh.mu.Unlock()
	select {
	case sh.wake <- struct{}{}:
	default:
	}
}

func (as *ackers) run(s *ackShard) {
	buf := make([]byte, 0, 256)
	var batch []*acker
	for {
		select {
		case <-as.stop:
			return
		case <-s.wake:
		}
		s.mu.Lock()
		batch, s.ready = s.ready, batch[:0]
		s.mu.Unlock()
		for i, a := range batch {
			buf = as.flush(a, buf[:0])
			batch[i] = nil
		}
	}
}

// flush sends the answers at the head of a's queue that are ready.
func (as *ackers) flush(a *acker, buf []byte) []byte {
	a.mu.Lock()
	a.queued = false
	k := 0
	for ; k < len(a.queue) && a.queue[k].ready; k++ {
		ack := pubackFor(a.queue[k].err, a.v5)
		if !ack.send {
			continue
		}
		if ack.reason != "" {
			as.b.metrics.negativeAcks.WithLabelValues(ack.reason).Inc()
		}
		buf = appendPuback(buf, a.queue[k].id, ack)
	}
	a.queue = append(a.queue[:0], a.queue[k:]...)
	a.head += uint64(k)
	a.mu.Unlock()
	if len(buf) == 0 {
		return buf
	}
	if err := a.write(buf); err != nil {
		as.b.log.Debug("mqtt: cannot send acknowledgements; closing the connection", "device", string(a.cl.Properties.Username), "error", err)
		a.cl.Stop(err)
	}
	return buf
}

// write sends raw PUBACK packets under the client's lock, which mochi also
// holds for its own writes, so packets never interleave.
func (a *acker) write(buf []byte) error {
	if a.cl.Closed() {
		return mqtt.ErrConnectionClosed
	}
	a.cl.Lock()
	defer a.cl.Unlock()
	conn := a.cl.Net.Conn
	if conn == nil {
		return mqtt.ErrConnectionClosed
	}
	if dc, ok := conn.(*deviceConn); ok {
		return dc.writeBounded(buf, ackWriteTimeout)
	}
	_ = conn.SetWriteDeadline(time.Now().Add(ackWriteTimeout))
	_, err := conn.Write(buf)
	_ = conn.SetWriteDeadline(time.Time{})
	return err
}
