package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sanigate/sanigate/cases"
	"github.com/sanigate/sanigate/internal/testenv"
	"github.com/sanigate/sanigate/simulators"
)

const (
	tokOffice = "office-token"
	tokNorth  = "north-token"
	tokSouth  = "south-token"
	tokCrew   = "crew-token"
)

func commandHarness(t *testing.T) *harness {
	t.Helper()
	sections := fmt.Sprintf(`cases:
  units:
    - {id: city-office, name: City office}
    - {id: greenclean, name: GreenClean, contractor: greenclean}
  dispatch: {default_unit: city-office}
  tokens:
    - {name: office, role: city, token_hash: %q}
    - {name: north-desk, role: district, district: north, token_hash: %q}
    - {name: south-desk, role: district, district: south, token_hash: %q}
    - {name: crew, role: unit, unit: greenclean, token_hash: %q}
`, cases.HashToken(tokOffice), cases.HashToken(tokNorth), cases.HashToken(tokSouth), cases.HashToken(tokCrew))
	return newHarnessYAML(t, "", sections)
}

type apiErr struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

func (h *harness) sendCommand(token, device string, body any) (int, cases.Command, apiErr) {
	h.t.Helper()
	var raw json.RawMessage
	code := testenv.CallAPI(h.t, "http://"+h.g.HTTPAddr(), token, "POST", "/api/v1/devices/"+device+"/commands", body, &raw)
	var c cases.Command
	var e apiErr
	if code == http.StatusAccepted {
		_ = json.Unmarshal(raw, &c)
	} else {
		_ = json.Unmarshal(raw, &e)
	}
	return code, c, e
}

func (h *harness) listCommands(token, device string) (int, []cases.Command) {
	h.t.Helper()
	var out struct {
		Commands []cases.Command `json:"commands"`
	}
	code := testenv.CallAPI(h.t, "http://"+h.g.HTTPAddr(), token, "GET", "/api/v1/devices/"+device+"/commands", nil, &out)
	return code, out.Commands
}

// waitCommand polls the list until command id reaches want (bounded).
func (h *harness) waitCommand(device string, id int64, want cases.CommandState) cases.Command {
	h.t.Helper()
	var last cases.Command
	for i := 0; i < 400; i++ {
		_, cs := h.listCommands(tokOffice, device)
		for _, c := range cs {
			if c.ID == id {
				last = c
			}
		}
		if last.State == want {
			return last
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.t.Fatalf("command %d of %s: state %q, want %q", id, device, last.State, want)
	return last
}

// persistentDevice connects id with a persistent session (clean session
// off) and subscribes to its cmd topic with QoS 1; messages go to got.
func (h *harness) persistentDevice(id string, got chan []byte, subscribe bool) pahomqtt.Client {
	h.t.Helper()
	opts := pahomqtt.NewClientOptions().AddBroker("tcp://" + h.g.MQTTAddr()).
		SetClientID(id + "-persistent").SetUsername(id).SetPassword("pw-" + id).
		SetCleanSession(false).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).
		SetDefaultPublishHandler(func(_ pahomqtt.Client, m pahomqtt.Message) { got <- m.Payload() })
	c := pahomqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		h.t.Fatalf("connect %s: %v", id, tok.Error())
	}
	if subscribe {
		tok := c.Subscribe(topic(id, "cmd"), 1, nil)
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			h.t.Fatalf("subscribe %s: %v", id, tok.Error())
		}
	}
	return c
}

func ackFor(id int64, status string) string {
	return fmt.Sprintf(`{"command_id":%d,"status":%q}`, id, status)
}

// A command goes queued -> delivered (the device's PUBACK) -> acknowledged
// (its answer on cmd/ack); another device cannot answer it; the answer is
// not a reading.
func TestCommandQueuedDeliveredAcknowledged(t *testing.T) {
	h := commandHarness(t)
	got := make(chan []byte, 4)
	dev := h.persistentDevice("bin-1", got, true)
	t.Cleanup(func() { dev.Disconnect(100) })
	code, c, e := h.sendCommand(tokOffice, "bin-1", map[string]any{"type": "set_interval", "params": map[string]any{"seconds": 7}})
	// The answer shows the state when it was read back: queued, or already
	// delivered when the device's PUBACK was quicker.
	if code != http.StatusAccepted || (c.State != cases.CommandQueued && c.State != cases.CommandDelivered) || c.ID <= 0 {
		t.Fatalf("send: %d %+v %+v", code, c, e)
	}
	var msg cases.CommandMessage
	select {
	case b := <-got:
		if err := json.Unmarshal(b, &msg); err != nil || msg.CommandID != c.ID || msg.Type != "set_interval" || string(msg.Params) != `{"seconds":7}` {
			t.Fatalf("device got %s (%v)", b, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the device got no command")
	}
	d := h.waitCommand("bin-1", c.ID, cases.CommandDelivered)
	if d.Delivered == nil || d.Finished != nil {
		t.Fatalf("delivered command: %+v", d)
	}

	// bin-2 answers bin-1's command: refused, nothing changes.
	other := h.mustConnect("bin-2")
	publish(t, other, topic("bin-2", "cmd/ack"), 1, ackFor(c.ID, "failed"))
	if n := h.metric("sanigate_device_command_acks_refused_total", nil); n != 1 {
		t.Fatalf("refused acks: %v, want 1", n)
	}
	// Nor may it publish on bin-1's ack topic: the ACL refuses it.
	other.Publish(topic("bin-1", "cmd/ack"), 1, false, ackFor(c.ID, "ok")).WaitTimeout(2 * time.Second)
	for i := 0; i < 200 && h.metric("sanigate_mqtt_acl_denied_total", nil) < 1; i++ {
		time.Sleep(25 * time.Millisecond)
	}
	if n := h.metric("sanigate_mqtt_acl_denied_total", nil); n < 1 {
		t.Fatalf("ACL refusals: %v, want >= 1", n)
	}
	if _, cs := h.listCommands(tokOffice, "bin-1"); len(cs) != 1 || cs[0].State != cases.CommandDelivered {
		t.Fatalf("after foreign acks: %+v", cs)
	}

	publish(t, dev, topic("bin-1", "cmd/ack"), 1, ackFor(c.ID, "ok"))
	a := h.waitCommand("bin-1", c.ID, cases.CommandAcknowledged)
	if a.Finished == nil || a.Delivered == nil {
		t.Fatalf("acknowledged command: %+v", a)
	}
	if _, ok := h.g.Pipeline().Last("bin-1"); ok {
		t.Error("a command answer became a reading of bin-1")
	}
}

// The simulated device of sanisim answers commands and takes the new
// reporting interval.
func TestSimulatorAnswersCommands(t *testing.T) {
	h := commandHarness(t)
	resp := simulators.NewResponder("truck-1", nil)
	c := h.mustConnect("truck-1")
	if tok := resp.Subscribe(c); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	code, cmd, e := h.sendCommand(tokNorth, "truck-1", map[string]any{"type": "set_interval", "params": map[string]any{"seconds": 9}})
	if code != http.StatusAccepted {
		t.Fatalf("north desk sends to its own device: %d %+v", code, e)
	}
	h.waitCommand("truck-1", cmd.ID, cases.CommandAcknowledged)
	select {
	case d := <-resp.Interval:
		if d != 9*time.Second {
			t.Fatalf("interval %s, want 9s", d)
		}
	default:
		t.Fatal("the simulator did not take the new interval")
	}
	_, cmd2, _ := h.sendCommand(tokOffice, "truck-1", map[string]any{"type": "reset_counter", "params": map[string]any{"counter": "trips"}})
	h.waitCommand("truck-1", cmd2.ID, cases.CommandAcknowledged)
}

// A device away with a persistent session gets the command when it comes
// back; a device that never comes back lets the command expire.
func TestCommandPersistentSessionAndExpiry(t *testing.T) {
	h := commandHarness(t)
	got := make(chan []byte, 4)
	dev := h.persistentDevice("sweeper-1", got, true)
	dev.Disconnect(100)
	code, c, e := h.sendCommand(tokOffice, "sweeper-1", map[string]any{"type": "open_lid"})
	if code != http.StatusAccepted {
		t.Fatalf("send: %d %+v", code, e)
	}
	if _, cs := h.listCommands(tokOffice, "sweeper-1"); len(cs) != 1 || cs[0].State != cases.CommandQueued {
		t.Fatalf("while away: %+v", cs)
	}
	dev = h.persistentDevice("sweeper-1", got, false)
	t.Cleanup(func() { dev.Disconnect(100) })
	select {
	case b := <-got:
		var msg cases.CommandMessage
		if err := json.Unmarshal(b, &msg); err != nil || msg.CommandID != c.ID {
			t.Fatalf("device got %s (%v)", b, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the reconnected device got no command")
	}
	h.waitCommand("sweeper-1", c.ID, cases.CommandDelivered)

	// toilet-1 never connects: its command expires at the deadline.
	code, off, e := h.sendCommand(tokOffice, "toilet-1", map[string]any{"type": "open_lid", "ttl_seconds": 1})
	if code != http.StatusAccepted {
		t.Fatalf("send: %d %+v", code, e)
	}
	x := h.waitCommand("toilet-1", off.ID, cases.CommandExpired)
	if x.Delivered != nil || x.Finished == nil || x.Finished.Before(x.Deadline) {
		t.Fatalf("expired command: %+v", x)
	}
}

// Who may send, and bad parameters refused with a message naming them.
func TestCommandAccessAndValidation(t *testing.T) {
	h := commandHarness(t)
	ok := map[string]any{"type": "open_lid"}
	if code, _, _ := h.sendCommand(tokCrew, "bin-1", ok); code != http.StatusForbidden {
		t.Errorf("unit token sends: %d, want 403", code)
	}
	if code, _ := h.listCommands(tokCrew, "bin-1"); code != http.StatusForbidden {
		t.Errorf("unit token lists: %d, want 403", code)
	}
	if code, _, _ := h.sendCommand(tokSouth, "bin-1", ok); code != http.StatusNotFound {
		t.Errorf("south desk sends to a north device: %d, want 404", code)
	}
	if code, _, _ := h.sendCommand(tokOffice, "no-such-device", ok); code != http.StatusNotFound {
		t.Errorf("unknown device: %d, want 404", code)
	}
	if code, _, _ := h.sendCommand("", "bin-1", ok); code != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", code)
	}
	sha := strings.Repeat("0f", 32)
	for _, bad := range []struct {
		body any
		want string
	}{
		{map[string]any{"type": "set_interval", "params": map[string]any{"seconds": 0}}, "params.seconds"},
		{map[string]any{"type": "set_interval", "params": map[string]any{"seconds": 60, "extra": 1}}, "unknown field"},
		{map[string]any{"type": "fetch_firmware", "params": map[string]any{"url": "http://fw.example.org/a.img", "sha256": sha}}, "https"},
		{map[string]any{"type": "fetch_firmware", "params": map[string]any{"url": "https://fw.example.org/a.img"}}, "sha256"},
		{map[string]any{"type": "reset_counter", "params": map[string]any{"counter": "x'; --"}}, "params.counter"},
		{map[string]any{"type": "self_destruct"}, "not a command"},
		{map[string]any{"type": "open_lid", "ttl_seconds": 0.5}, "body"},
		{map[string]any{"type": "open_lid", "bogus": true}, "unknown field"},
	} {
		code, _, e := h.sendCommand(tokOffice, "bin-1", bad.body)
		if code != http.StatusBadRequest || e.Code != "bad_request" || !strings.Contains(e.Error, bad.want) {
			t.Errorf("%v: %d %q, want 400 naming %q", bad.body, code, e.Error, bad.want)
		}
	}
	if _, cs := h.listCommands(tokOffice, "bin-1"); len(cs) != 0 {
		t.Errorf("refused commands were stored: %+v", cs)
	}
	code, c, e := h.sendCommand(tokNorth, "bin-1", map[string]any{"type": "fetch_firmware",
		"params": map[string]any{"url": "https://fw.example.org/bin-2.1.img", "sha256": sha, "version": "2.1"}})
	if code != http.StatusAccepted || c.RequestedBy != "north-desk" {
		t.Fatalf("north desk, firmware: %d %+v %+v", code, c, e)
	}
}
