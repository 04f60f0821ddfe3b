package main

import (
	"bytes"
	"github.com/sanigate/sanigate/fleet"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A configuration with mistakes makes the program exit non-zero, listing each.
func TestBadConfigExitsWithEveryProblem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sanigate.yaml")
	os.WriteFile(path, []byte("mqtt:\n  adress: x\ndevices:\n  - id: a\n    kind: lorry\n    password_hash: plain\n"), 0o600)
	var out, errb bytes.Buffer
	code := run([]string{"-config", path, "-check"}, strings.NewReader(""), &out, &errb)
	if code == 0 {
		t.Fatalf("exit code 0, want non-zero; stderr:\n%s", errb.String())
	}
	for _, want := range []string{":2: mqtt.adress", ":5: devices[0].kind", ":6: devices[0].password_hash", "3 configuration problem(s)"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb.String())
		}
	}
}

func TestHelpDocumentsEveryFlag(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"-help"}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	for _, f := range []string{"-config", "-check", "-mqtt-address", "-http-address", "-influxdb-url", "-influxdb-bucket", "-spool-dir", "-log-level", "-log-format", "hash-password"} {
		if !strings.Contains(errb.String(), f) {
			t.Errorf("help lacks %s", f)
		}
	}
}

func TestHashPassword(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"hash-password", "-cost", "4"}, strings.NewReader("s3cret\n"), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.HasPrefix(out.String(), "$2a$04$") {
		t.Errorf("got %q, want a bcrypt hash", out.String())
	}
}

func TestHashPasswordGenerate(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"hash-password", "-generate"}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || len(lines[0]) != 22 || !strings.HasPrefix(lines[1], fleet.SecretPrefix) {
		t.Fatalf("got %q, want a 22-character secret and its hash", out.String())
	}
	if err := fleet.VerifyPassword(lines[1], lines[0]); err != nil {
		t.Errorf("printed hash does not verify the printed secret: %v", err)
	}
}
