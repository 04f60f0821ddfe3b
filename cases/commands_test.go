package cases

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// sentMessages records what the service publishes.
type sentMessages struct {
	mu   sync.Mutex
	msgs []struct {
		topic   string
		payload []byte
		qos     byte
	}
}

func (p *sentMessages) Publish(topic string, payload []byte, retain bool, qos byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.msgs = append(p.msgs, struct {
		topic   string
		payload []byte
		qos     byte
	}{topic, append([]byte(nil), payload...), qos})
	return nil
}

func (p *sentMessages) last(t *testing.T) (string, []byte, byte) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.msgs) == 0 {
		t.Fatal("nothing published")
	}
	m := p.msgs[len(p.msgs)-1]
	return m.topic, m.payload, m.qos
}

func commandState(t *testing.T, e *env, id int64) Command {
	t.Helper()
	c, err := e.svc.command(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A command's states in the store, on SQLite and PostgreSQL: queued,
// delivered, acknowledged only by its own device; another one expires.
func TestCommandLifecycleInTheStore(t *testing.T) {
	eachStore(t, func(t *testing.T, st StoreConfig) {
		ctx := context.Background()
		pub := &sentMessages{}
		e := newEnv(t, testConfig(st, "http://127.0.0.1:1/x"), Deps{Devices: testDevices, Publisher: pub})
		city := Actor{Name: "city-desk", Role: RoleCity}
		c, err := e.svc.SendCommand(ctx, city, "truck-07", CommandRequest{Type: CmdSetInterval, Params: json.RawMessage(`{"seconds":30}`)})
		if err != nil {
			t.Fatal(err)
		}
		if c.State != CommandQueued || c.ID <= 0 || !c.Deadline.Equal(c.Created.Add(defaultCmdTTL)) {
			t.Fatalf("new command: %+v", c)
		}
		topic, payload, qos := pub.last(t)
		var m CommandMessage
		if err := json.Unmarshal(payload, &m); err != nil || topic != "sanigate/v1/devices/truck-07/cmd" || qos != 1 || m.CommandID != c.ID || m.Type != CmdSetInterval {
			t.Fatalf("published %s qos %d: %s (%v)", topic, qos, payload, err)
		}
		// The PUBACK of another device's session changes nothing.
		if err := e.svc.CommandDelivered(ctx, "toilet-01", payload); err != nil {
			t.Fatal(err)
		}
		if got := commandState(t, e, c.ID); got.State != CommandQueued {
			t.Fatalf("after a foreign PUBACK: %s", got.State)
		}
		e.clock.Advance(time.Second)
		if err := e.svc.CommandDelivered(ctx, "truck-07", payload); err != nil {
			t.Fatal(err)
		}
		if got := commandState(t, e, c.ID); got.State != CommandDelivered || got.Delivered == nil {
			t.Fatalf("after the PUBACK: %+v", got)
		}
		ack := []byte(`{"command_id":` + jsonInt(c.ID) + `,"status":"ok"}`)
		if err := e.svc.HandleCommandAck(ctx, "toilet-01", ack); !errors.Is(err, ErrBadRequest) {
			t.Fatalf("another device's ack: %v, want ErrBadRequest", err)
		}
		if got := commandState(t, e, c.ID); got.State != CommandDelivered {
			t.Fatalf("after a foreign ack: %s", got.State)
		}
		for _, bad := range []string{`{"command_id":1}`, `{"command_id":1,"status":"ok","x":1}`, `not json`, `{"command_id":1,"status":"ok"}{}`} {
			if err := e.svc.HandleCommandAck(ctx, "truck-07", []byte(bad)); !errors.Is(err, ErrBadRequest) {
				t.Errorf("ack %s: %v, want ErrBadRequest", bad, err)
			}
		}
		if err := e.svc.HandleCommandAck(ctx, "truck-07", ack); err != nil {
			t.Fatal(err)
		}
		got := commandState(t, e, c.ID)
		if got.State != CommandAcknowledged || got.Finished == nil {
			t.Fatalf("after the ack: %+v", got)
		}
		if err := e.svc.HandleCommandAck(ctx, "truck-07", ack); !errors.Is(err, ErrBadRequest) {
			t.Fatalf("a second ack: %v, want ErrBadRequest", err)
		}

		// Never delivered: expires at its deadline, and a late ack is refused.
		c2, err := e.svc.SendCommand(ctx, city, "toilet-01", CommandRequest{Type: CmdOpenLid, TTLSeconds: 60})
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(59 * time.Second)
		if n, err := e.svc.ExpireCommands(ctx); err != nil || n != 0 {
			t.Fatalf("before the deadline: %d expired (%v)", n, err)
		}
		e.clock.Advance(2 * time.Second)
		if n, err := e.svc.ExpireCommands(ctx); err != nil || n != 1 {
			t.Fatalf("after the deadline: %d expired (%v)", n, err)
		}
		if got := commandState(t, e, c2.ID); got.State != CommandExpired {
			t.Fatalf("offline device's command: %s", got.State)
		}
		if err := e.svc.HandleCommandAck(ctx, "toilet-01", []byte(`{"command_id":`+jsonInt(c2.ID)+`,"status":"ok"}`)); !errors.Is(err, ErrBadRequest) {
			t.Fatalf("late ack: %v", err)
		}
		// A failure answer with a long, partly invalid detail is stored, cut
		// on a rune boundary (PostgreSQL refuses invalid UTF-8).
		c3, err := e.svc.SendCommand(ctx, city, "truck-07", CommandRequest{Type: CmdResetCounter, Params: json.RawMessage(`{"counter":"trips"}`)})
		if err != nil {
			t.Fatal(err)
		}
		detail := strings.Repeat("垃", 300) + "\xff"
		failAck, _ := json.Marshal(map[string]any{"command_id": c3.ID, "status": "failed", "detail": detail})
		if err := e.svc.HandleCommandAck(ctx, "truck-07", failAck); err != nil {
			t.Fatal(err)
		}
		if got := commandState(t, e, c3.ID); got.State != CommandFailed || len(got.Detail) > maxAckDetailLen+3 || !strings.HasPrefix(got.Detail, "垃垃") {
			t.Fatalf("failed command: %s %q", got.State, got.Detail)
		}
		list, err := e.svc.Commands(ctx, city, "toilet-01", 10)
		if err != nil || len(list) != 1 || list[0].ID != c2.ID || list[0].State != CommandExpired {
			t.Fatalf("list: %+v (%v)", list, err)
		}
	})
}

func jsonInt(v int64) string { b, _ := json.Marshal(v); return string(b) }

// Every command's parameters are checked; the message names the problem.
func TestCommandValidation(t *testing.T) {
	good := strings.Repeat("ab", 32)
	cases := []struct {
		req  CommandRequest
		want string // "" = valid
	}{
		{CommandRequest{Type: CmdSetInterval, Params: json.RawMessage(`{"seconds":60}`)}, ""},
		{CommandRequest{Type: CmdSetInterval, Params: json.RawMessage(`{"seconds":0}`)}, "params.seconds"},
		{CommandRequest{Type: CmdSetInterval, Params: json.RawMessage(`{"seconds":86401}`)}, "params.seconds"},
		{CommandRequest{Type: CmdSetInterval, Params: json.RawMessage(`{"seconds":"60"}`)}, "params"},
		{CommandRequest{Type: CmdSetInterval, Params: json.RawMessage(`{"seconds":60,"seconds":1}`)}, "twice"},
		{CommandRequest{Type: CmdSetInterval, Params: json.RawMessage(`{"secs":60}`)}, "unknown field"},
		{CommandRequest{Type: CmdOpenLid}, ""},
		{CommandRequest{Type: CmdOpenLid, Params: json.RawMessage(`{"seconds":601}`)}, "params.seconds"},
		{CommandRequest{Type: CmdResetCounter, Params: json.RawMessage(`{"counter":"uses"}`)}, ""},
		{CommandRequest{Type: CmdResetCounter, Params: json.RawMessage(`{"counter":"Uses; DROP"}`)}, "params.counter"},
		{CommandRequest{Type: CmdResetCounter}, "params.counter"},
		{CommandRequest{Type: CmdFetchFirmware, Params: json.RawMessage(`{"url":"https://fw.example.org/bin-2.1.img","sha256":"` + good + `","version":"2.1"}`)}, ""},
		{CommandRequest{Type: CmdFetchFirmware, Params: json.RawMessage(`{"url":"http://fw.example.org/x.img","sha256":"` + good + `"}`)}, "https"},
		{CommandRequest{Type: CmdFetchFirmware, Params: json.RawMessage(`{"url":"https://user:pw@fw.example.org/x.img","sha256":"` + good + `"}`)}, "no user"},
		{CommandRequest{Type: CmdFetchFirmware, Params: json.RawMessage(`{"url":"https:///x.img","sha256":"` + good + `"}`)}, "host"},
		{CommandRequest{Type: CmdFetchFirmware, Params: json.RawMessage(`{"url":"file:///etc/passwd","sha256":"` + good + `"}`)}, "https"},
		{CommandRequest{Type: CmdFetchFirmware, Params: json.RawMessage(`{"url":"https://fw.example.org/x.img","sha256":"abc"}`)}, "sha256"},
		{CommandRequest{Type: CmdFetchFirmware, Params: json.RawMessage(`{"url":"https://fw.example.org/x.img","sha256":"` + good + `","version":"../../x"}`)}, "version"},
		{CommandRequest{Type: "reboot"}, "not a command"},
		{CommandRequest{}, "type is required"},
		{CommandRequest{Type: CmdOpenLid, TTLSeconds: -5}, "ttl_seconds"},
		{CommandRequest{Type: CmdOpenLid, TTLSeconds: 8 * 24 * 3600}, "ttl_seconds"},
	}
	for _, c := range cases {
		_, _, err := c.req.validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s %s: %v", c.req.Type, c.req.Params, err)
		case c.want != "" && (err == nil || !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s %s: got %v, want a bad request naming %q", c.req.Type, c.req.Params, err, c.want)
		}
	}
}

func TestTruncateKeepsUTF8(t *testing.T) {
	s := truncate(strings.Repeat("垃", 10), 5) // 3 bytes a rune: cut after the first
	if s != "垃..." {
		t.Fatalf("got %q", s)
	}
}
