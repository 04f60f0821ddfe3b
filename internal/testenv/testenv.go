// Package testenv finds the real components tests need (InfluxDB, mosquitto,
// PostgreSQL) and decides what a missing one means: a skip on a developer's
// machine, a failure under CI (CI=true).
package testenv

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// CI reports whether the tests run under continuous integration, where a
// missing component fails the run instead of skipping.
func CI() bool {
	v, _ := strconv.ParseBool(os.Getenv("CI"))
	return v
}

// Missing skips the test, or fails it under CI, saying how to install what is missing.
func Missing(t testing.TB, what, howto string) {
	t.Helper()
	if CI() {
		t.Fatalf("%s not found (CI=true, so this is a failure): %s", what, howto)
	}
	t.Skipf("%s not found: %s", what, howto)
}

// RepoRoot returns the folder holding go.mod, found upwards from the working directory.
func RepoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Tool finds a program: the environment variable env if set, the project's
// .tools/bin, then PATH.
func Tool(env, name string) (string, bool) {
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
	}
	if root := RepoRoot(); root != "" {
		p := filepath.Join(root, ".tools", "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	return "", false
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := LoopbackPort()
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	return p
}

// LoopbackPort is FreePort for code without a testing.TB (a server shared
// by a package's tests).
func LoopbackPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// SmallDisk mounts a tmpfs of size bytes for the test and unmounts it at
// cleanup, so a test can fill a disk. It needs root (as CI has).
func SmallDisk(t testing.TB, size int64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.FormatInt(size, 10), "tmpfs", dir).CombinedOutput()
	if err != nil {
		Missing(t, "a small filesystem to fill", "run the tests as root, so they can mount a tmpfs ("+strings.TrimSpace(string(out))+")")
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// Eventually polls cond every 10ms until it holds, and fails the test after
// limit. The bound only keeps a broken test from hanging: no assertion may
// depend on how fast anything happens.
func Eventually(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// CallAPI sends a JSON request to base+path with a bearer token (none when
// empty), decodes the answer into out (when not nil and not empty), and
// returns the status code.
func CallAPI(t testing.TB, base, token, method, path string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return resp.StatusCode
}
