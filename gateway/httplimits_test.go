package gateway

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sanigate/sanigate/fleet"
)

// shortHTTPTimeouts makes the HTTP server's timeouts short enough to watch.
func shortHTTPTimeouts(cfg *fleet.Config) {
	cfg.HTTP.ReadTimeout = fleet.Duration(time.Second)
	cfg.HTTP.IdleTimeout = fleet.Duration(time.Second)
	cfg.HTTP.WriteTimeout = fleet.Duration(5 * time.Second)
	cfg.HTTP.MaxBodyBytes = 4096
}

// closedWithin reports whether the server closes conn before limit passes,
// reading (and discarding) whatever it sends meanwhile. feed, if set, is
// called between reads to trickle bytes to the server.
func closedWithin(t *testing.T, conn net.Conn, limit time.Duration, feed func() error) bool {
	t.Helper()
	deadline := time.Now().Add(limit)
	buf := make([]byte, 4096)
	for time.Now().Before(deadline) {
		_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, err := conn.Read(buf)
		var ne net.Error
		switch {
		case err == nil:
		case errors.As(err, &ne) && ne.Timeout():
			if feed != nil && feed() != nil {
				return true // the server has gone away
			}
		default:
			return true // EOF or reset
		}
	}
	return false
}

// A body sent a byte at a time no longer holds a connection for ever: the
// read timeout covers the whole request.
func TestHTTPSlowBodyCut(t *testing.T) {
	h := newHarness(t, shortHTTPTimeouts)
	conn, err := net.Dial("tcp", h.g.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/v1/cases HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
	feed := func() error { _, err := conn.Write([]byte(" ")); return err }
	if !closedWithin(t, conn, 15*time.Second, feed) {
		t.Fatal("a slow body held the connection open for 15s with a 1s read timeout")
	}
}

// An idle keep-alive connection is closed after the idle timeout.
func TestHTTPIdleKeepAliveClosed(t *testing.T) {
	h := newHarness(t, shortHTTPTimeouts)
	conn, err := net.Dial("tcp", h.g.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("healthz: %d, close %v", resp.StatusCode, resp.Close)
	}
	if !closedWithin(t, conn, 15*time.Second, nil) {
		t.Fatal("an idle keep-alive connection stayed open for 15s with a 1s idle timeout")
	}
}

// A body over the limit is refused on every route, before any handler
// reads past the limit.
func TestHTTPBodyLimit(t *testing.T) {
	h := newHarness(t, shortHTTPTimeouts)
	big := `{"comment":"` + strings.Repeat("x", 8000) + `"}`
	for _, path := range []string{"/api/v1/cases/1/comment", "/healthz"} {
		resp, err := http.Post("http://"+h.g.HTTPAddr()+path, "application/json", strings.NewReader(big))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("%s with an 8 kB body: got %d %s, want 413", path, resp.StatusCode, body)
		}
	}
}
