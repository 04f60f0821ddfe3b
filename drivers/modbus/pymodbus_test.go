package modbus_test

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sanigate/sanigate/drivers/modbus"
	"github.com/sanigate/sanigate/internal/testenv"
)

// pymodbusPython finds a Python with pymodbus: Debian's python3-pymodbus
// installs it for the system interpreter.
func pymodbusPython(t *testing.T) string {
	t.Helper()
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if err := exec.Command(py, "-c", "import pymodbus.server").Run(); err == nil {
			return py
		}
	}
	testenv.Missing(t, "pymodbus (Debian's python3-pymodbus)", "run `make tools` (it installs python3-pymodbus with apt-get)")
	return ""
}

// The driver reads a third-party Modbus stack correctly over Modbus TCP and
// over RTU framing on TCP, for every word and byte order.
func TestAgainstPymodbus(t *testing.T) {
	py := pymodbusPython(t)
	for _, tc := range []struct{ name, framing, transport string }{
		{"tcp", "tcp", "tcp"},
		{"rtu over tcp", "rtu", "rtu_over_tcp"},
		{"rtu over a serial line", "serial", "rtu"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			port := fmt.Sprint(testenv.FreePort(t))
			addr := "127.0.0.1:" + port
			extra := ""
			if tc.framing == "serial" {
				// A null-modem cable: two pseudo-terminals joined by socat;
				// pymodbus serves on one end, the driver polls the other.
				dir := t.TempDir()
				server, client := dir+"/server-tty", dir+"/gateway-tty"
				sc := exec.CommandContext(ctx, socatPath(t), "pty,raw,echo=0,link="+server, "pty,raw,echo=0,link="+client)
				if err := sc.Start(); err != nil {
					t.Fatal(err)
				}
				defer func() { cancel(); _ = sc.Wait() }()
				for i := 0; i < 100; i++ {
					if _, err := os.Stat(client); err == nil {
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
				port, addr = server, client
				extra = "\n    baud_rate: 19200\n    data_bits: 8\n    parity: N\n    stop_bits: 1"
			}
			cmd := exec.CommandContext(ctx, py, "testdata/pymodbus_server.py", port, tc.framing)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cancel(); _ = cmd.Wait() }()
			line, _ := bufio.NewReader(out).ReadString('\n')
			if strings.TrimSpace(line) != "ready" {
				t.Fatalf("pymodbus server: %q %s", line, stderr.String())
			}
			for i := 0; tc.framing != "serial" && i < 100; i++ { // wait until it listens
				if c, err := net.Dial("tcp", addr); err == nil {
					c.Close()
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			cfg := parse(t, fmt.Sprintf(`
devices:
  - id: toilet-py
    kind: toilet
    transport: %s
    address: %q
    unit_id: 7%s
    poll_interval: 300ms
    timeout: 250ms
    registers:
      - {field: nh3_mgm3,        function: input,   address: 0,   type: FLOAT32-IEEE, byte_order: ABCD}
      - {field: h2s_mgm3,        function: input,   address: 2,   type: FLOAT32-IEEE, byte_order: CDAB}
      - {field: temp_c,          function: input,   address: 4,   type: INT16, scale: 0.1}
      - {field: humidity_pct,    function: input,   address: 5,   type: UINT16, scale: 0.1}
      - {field: people_in,       function: holding, address: 100, type: UINT32, byte_order: CDAB}
      - {field: water_l,         function: holding, address: 102, type: FLOAT64-IEEE, byte_order: ABCD}
      - {field: stalls_occupied, function: holding, address: 110, type: UINT16}
      - {field: fault_code,      function: holding, address: 120, type: INT32, byte_order: DCBA}
      - {field: paper_pct,       function: holding, address: 130, type: UINT32, byte_order: BADC}
`, tc.transport, addr, extra))
			col := &collector{}
			p, err := modbus.NewPoller(cfg, col, modbus.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			go p.Run(ctx)
			deadline := time.Now().Add(15 * time.Second)
			for len(col.readings("toilet-py")) == 0 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			rs := col.readings("toilet-py")
			if len(rs) == 0 {
				t.Fatalf("no reading from pymodbus; server log:\n%s", stderr.String())
			}
			want := map[string]float64{"nh3_mgm3": 0.75, "h2s_mgm3": 0.005, "temp_c": -5.2, "humidity_pct": 65.5,
				"people_in": 123456, "water_l": 12345.5, "stalls_occupied": 3, "fault_code": 513, "paper_pct": 44}
			for name, w := range want {
				got, ok := rs[0].Num(name)
				if !ok {
					t.Errorf("%s: missing", name)
					continue
				}
				if math.Abs(got-w) > 1e-6*math.Max(1, math.Abs(w)) {
					t.Errorf("%s: got %v, want %v", name, got, w)
				}
			}
		})
	}
}

func socatPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("socat")
	if err != nil {
		testenv.Missing(t, "socat (to join two pseudo-terminals into a serial line)", "run `make tools` (it installs socat with apt-get)")
	}
	return p
}
