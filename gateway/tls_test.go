package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/internal/certgen"
	"github.com/sanigate/sanigate/internal/testenv"
)

// pki is a throw-away CA with a server certificate and device certificates.
type pki struct {
	dir                   string
	ca                    *certgen.CA
	serverCert, serverKey string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	ca, err := certgen.NewCA(dir, "city-ca")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Server(dir, "gateway")
	if err != nil {
		t.Fatal(err)
	}
	return &pki{dir: dir, ca: ca, serverCert: cert, serverKey: key}
}

func (p *pki) client(t *testing.T, name, cn string, sans ...string) (string, string) {
	t.Helper()
	cert, key, err := p.ca.Client(p.dir, name, cn, sans...)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// withTLS turns on MQTT over TLS with client certificates, and HTTPS.
func (p *pki) withTLS(cfg *fleet.Config) {
	cfg.MQTT.TLSAddress = "127.0.0.1:0"
	cfg.MQTT.TLSCertFile, cfg.MQTT.TLSKeyFile, cfg.MQTT.ClientCAFile = p.serverCert, p.serverKey, p.ca.CertFile
	cfg.HTTP.TLSAddress = "127.0.0.1:0"
	cfg.HTTP.TLSCertFile, cfg.HTTP.TLSKeyFile = p.serverCert, p.serverKey
}

func (p *pki) roots(t *testing.T) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(p.ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return pool
}

func mosquitto(t *testing.T, name string) string {
	t.Helper()
	path, ok := testenv.Tool("MOSQUITTO_PUB", name)
	if !ok {
		testenv.Missing(t, name, "install Debian's mosquitto-clients (make tools)")
	}
	return path
}

// runTool runs a client program with a bounded time and returns its output.
func runTool(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(out), err
}

// Devices reach the gateway over TLS with a third-party client: by password
// after verifying the server, or by a client certificate naming the device
// and no password. A certificate for another device, a certificate from
// another CA, and TLS below 1.2 are refused.
func TestMQTTOverTLSWithMosquitto(t *testing.T) {
	pub, sub := mosquitto(t, "mosquitto_pub"), mosquitto(t, "mosquitto_sub")
	p := newPKI(t)
	h := newHarness(t, p.withTLS)
	_, port, _ := net.SplitHostPort(h.g.MQTTTLSAddr())
	base := []string{"-h", "127.0.0.1", "-p", port, "--cafile", p.ca.CertFile, "-q", "1"}
	reading := func(v int) string {
		return fmt.Sprintf(`{"ts":%q,"fill_pct":%d}`, time.Now().Add(-time.Duration(v)*time.Second).UTC().Format(time.RFC3339Nano), v)
	}

	// Password over TLS.
	if out, err := runTool(t, pub, append(base, "-i", "bin-1-tls", "-u", "bin-1", "-P", "pw-bin-1",
		"-t", topic("bin-1", "telemetry"), "-m", reading(11))...); err != nil {
		t.Fatalf("mosquitto_pub with password over TLS: %v\n%s", err, out)
	}
	// Client certificate, no username or password.
	cert1, key1 := p.client(t, "bin-1", "bin-1")
	if out, err := runTool(t, pub, append(base, "-i", "bin-1-mtls", "--cert", cert1, "--key", key1,
		"-t", topic("bin-1", "telemetry"), "-m", reading(12))...); err != nil {
		t.Fatalf("mosquitto_pub with a client certificate: %v\n%s", err, out)
	}
	// A certificate naming the device in a DNS SAN only.
	cert2, key2 := p.client(t, "bin-2", "field-unit-7", "bin-2")
	if out, err := runTool(t, pub, append(base, "-i", "bin-2", "-u", "bin-2", "--cert", cert2, "--key", key2,
		"-t", topic("bin-2", "telemetry"), "-m", reading(13))...); err != nil {
		t.Fatalf("mosquitto_pub with a SAN certificate: %v\n%s", err, out)
	}
	testenv.Eventually(t, 15*time.Second, "three readings over TLS", func() bool { return h.influx.Count(t, "bin", "fill_pct", "") == 3 })

	// bin-2's certificate does not log in as bin-1, even with bin-1's password.
	if out, err := runTool(t, pub, append(base, "-i", "bin-1", "-u", "bin-1", "-P", "pw-bin-1", "--cert", cert2, "--key", key2,
		"-t", topic("bin-1", "telemetry"), "-m", reading(14))...); err == nil {
		t.Errorf("bin-2's certificate logged in as bin-1:\n%s", out)
	}
	// A certificate from another CA fails the handshake.
	rogue, err := certgen.NewCA(t.TempDir(), "rogue")
	if err != nil {
		t.Fatal(err)
	}
	rc, rk, err := rogue.Client(t.TempDir(), "bin-1", "bin-1")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := runTool(t, pub, append(base, "-i", "bin-1", "--cert", rc, "--key", rk,
		"-t", topic("bin-1", "telemetry"), "-m", reading(15))...); err == nil {
		t.Errorf("a certificate from another CA was accepted:\n%s", out)
	}

	// A device subscribes over mTLS and gets its command.
	got := make(chan string, 1)
	go func() {
		out, _ := runTool(t, sub, append(base, "-i", "bin-1-sub", "--cert", cert1, "--key", key1,
			"-t", topic("bin-1", "cmd"), "-C", "1", "-W", "15")...)
		got <- out
	}()
	var out string
	for i := 0; out == "" && i < 40; i++ {
		// Repeated until the subscription is in place; -C 1 ends it after one.
		if err := h.g.Broker().Publish(topic("bin-1", "cmd"), []byte(`{"cmd":"empty"}`), false, 1); err != nil {
			t.Fatal(err)
		}
		select {
		case out = <-got:
		case <-time.After(500 * time.Millisecond):
		}
	}
	if !strings.Contains(out, `{"cmd":"empty"}`) {
		t.Errorf("mosquitto_sub over mTLS: got %q", out)
	}

	// TLS 1.1 is refused.
	_, err = tls.Dial("tcp", h.g.MQTTTLSAddr(), &tls.Config{RootCAs: p.roots(t), MaxVersion: tls.VersionTLS11, ServerName: "localhost"})
	if err == nil {
		t.Error("TLS 1.1 handshake succeeded")
	}
	if h.influx.Count(t, "bin", "fill_pct", "") != 3 {
		t.Error("a refused client's reading was stored")
	}
}

// HTTPS serves the API and health endpoints with TLS 1.2 or later, and a
// rotated certificate is served without a restart.
func TestHTTPSAndCertificateRotation(t *testing.T) {
	p := newPKI(t)
	h := newHarness(t, p.withTLS)
	serial := func() string {
		conn, err := tls.Dial("tcp", h.g.HTTPSAddr(), &tls.Config{RootCAs: p.roots(t), ServerName: "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.roots(t)}}, Timeout: 10 * time.Second}
	resp, err := client.Get("https://" + h.g.HTTPSAddr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Fatalf("https healthz: %d %+v", resp.StatusCode, resp.TLS)
	}
	before := serial()
	// Rotate: a new certificate written over the same files.
	if _, _, err := p.ca.Server(p.dir, "gateway"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the rotated certificate to be served", func() bool { return serial() != before })
	mqttConn, err := tls.Dial("tcp", h.g.MQTTTLSAddr(), &tls.Config{RootCAs: p.roots(t), ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer mqttConn.Close()
	if got := mqttConn.ConnectionState().PeerCertificates[0].SerialNumber.String(); got == before {
		t.Error("the MQTT TLS listener still serves the old certificate")
	}
}
