package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sanigate/sanigate/cases"
	"github.com/sanigate/sanigate/fleet"
)

// sanigate device manages the device registry in the configuration's case
// store: the file's devices are in it, an added device's secret verifies
// against the stored hash, a rotation keeps the old one for its grace, a
// disabled device is listed as such.
func TestDeviceCommand(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sanigate.yaml")
	_, h, err := fleet.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	cfg := `devices:
  - {id: bin-1, kind: bin, category: other, password_hash: "` + h + `"}
cases:
  store: {driver: sqlite, path: cases.db}
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	device := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(append([]string{"device"}, args...), strings.NewReader(""), &out, &errb)
		return code, out.String(), errb.String()
	}
	code, secret, errs := device("add", "-config", path, "-id", "truck-9", "-kind", "truck", "-category", "kitchen", "-capacity-kg", "8000")
	secret = strings.TrimSpace(secret)
	if code != 0 || len(secret) != 22 || !strings.Contains(errs, "shown this once") {
		t.Fatalf("add: %d %q %q", code, secret, errs)
	}
	if code, _, errs := device("add", "-config", path, "-id", "truck-9", "-kind", "truck", "-category", "kitchen", "-capacity-kg", "8000"); code != 1 || !strings.Contains(errs, "already registered") {
		t.Errorf("second add: %d %q", code, errs)
	}
	if code, _, errs := device("add", "-config", path, "-id", "truck-10", "-kind", "truck"); code != 1 ||
		!strings.Contains(errs, "device.category") || !strings.Contains(errs, "device.capacity_kg") {
		t.Errorf("invalid add: %d %q, want every problem", code, errs)
	}
	code, rotated, errs := device("rotate", "-config", path, "-id", "truck-9", "-grace", "1h")
	rotated = strings.TrimSpace(rotated)
	if code != 0 || rotated == secret || !strings.Contains(errs, "old one logs in until") {
		t.Fatalf("rotate: %d %q %q", code, rotated, errs)
	}
	if code, out, _ := device("disable", "-config", path, "-id", "bin-1"); code != 0 || out != "device bin-1 disabled\n" {
		t.Errorf("disable: %d %q", code, out)
	}
	if code, _, errs := device("disable", "-config", path, "-id", "nope"); code != 1 || !strings.Contains(errs, "no device") {
		t.Errorf("disable unknown: %d %q", code, errs)
	}
	code, out, _ := device("list", "-config", path)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || lines[0] != "bin-1\tbin\tdisabled\tregistry" ||
		!strings.HasPrefix(lines[1], "truck-9\ttruck\tenabled\tregistry\told secret until ") {
		t.Fatalf("list: %d %q", code, out)
	}
	if strings.Contains(out, "$hmac") || strings.Contains(out, secret) {
		t.Fatalf("list shows a secret or a hash: %q", out)
	}
	// What the gateway will read: the new secret, and the old for its grace.
	loaded, err := fleet.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := cases.Open(t.Context(), cases.FromConfig(loaded), cases.Deps{Publisher: noPublisher{}, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	d, err := svc.RegisteredDevice(t.Context(), "truck-9")
	if err != nil || fleet.VerifyPassword(d.PasswordHash, rotated) != nil || fleet.VerifyPassword(d.PreviousPasswordHash, secret) != nil {
		t.Fatalf("stored truck-9 %+v, %v: want the rotated secret and the old one for its grace", d, err)
	}
	svc.Close()
	if code, _, _ := device("frobnicate", "-config", path); code != 2 {
		t.Errorf("unknown subcommand: %d", code)
	}
	if code, _, errs := device("remove", "-config", path); code != 2 || !strings.Contains(errs, "needs -id") {
		t.Errorf("remove without -id: %d %q", code, errs)
	}
	if code, out, _ := device("remove", "-config", path, "-id", "truck-9"); code != 0 || out != "device truck-9 removed\n" {
		t.Errorf("remove truck-9: %d %q", code, out)
	}
	if code, out, _ := device("remove", "-config", path, "-id", "bin-1"); code != 0 || out != "device bin-1 handed back to the file\n" {
		t.Errorf("remove bin-1: %d %q", code, out)
	}
	if code, out, _ := device("list", "-config", path); code != 0 || out != "bin-1\tbin\tenabled\tconfig\n" {
		t.Errorf("list after removals: %d %q", code, out)
	}
}
