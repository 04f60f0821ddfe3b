package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sanigate user add stores console users in the case store of the configuration.
func TestUserAdd(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sanigate.yaml")
	cfg := `devices:
  - {id: bin-1, kind: bin, category: other, password_hash: "$2a$04$ghQWz8ib4vWIkpR8r7ddG.Z5L5bnzzeC0q5XhxvEWZ8ymfaFGnYXu"}
cases:
  store: {driver: sqlite, path: cases.db}
  units:
    - {id: city-office}
    - {id: greenclean, contractor: greenclean}
  dispatch: {default_unit: city-office}
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	user := func(stdin string, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(append([]string{"user"}, args...), strings.NewReader(stdin), &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, out, errs := user("wang-password-1\n", "add", "-config", path, "-name", "wang", "-role", "city", "-admin"); code != 0 || !strings.Contains(out, "user wang added") {
		t.Fatalf("add: %d %q %q", code, out, errs)
	}
	if code, _, errs := user("wang-password-1\n", "add", "-config", path, "-name", "wang", "-role", "city"); code != 1 || !strings.Contains(errs, "exists") {
		t.Errorf("second add: %d %q", code, errs)
	}
	if code, _, _ := user("wang-password-1\n", "add", "-config", path, "-name", "wang", "-role", "city", "-existing-ok"); code != 0 {
		t.Errorf("second add with -existing-ok: %d", code)
	}
	if code, _, errs := user("short\n", "add", "-config", path, "-name", "li", "-role", "unit", "-unit", "greenclean"); code != 1 || !strings.Contains(errs, "at least 10") {
		t.Errorf("short password: %d %q", code, errs)
	}
	if code, _, errs := user("li-password-12\n", "add", "-config", path, "-name", "li", "-role", "unit", "-unit", "nobody"); code != 1 || !strings.Contains(errs, "unknown unit") {
		t.Errorf("unknown unit: %d %q", code, errs)
	}
	user("li-password-12\n", "add", "-config", path, "-name", "li", "-role", "unit", "-unit", "greenclean")
	code, out, _ := user("", "list", "-config", path)
	if code != 0 || out != "li\tunit\tgreenclean\tadmin=false\nwang\tcity\t\tadmin=true\n" {
		t.Errorf("list: %d %q", code, out)
	}
	if code, _, _ := user("", "remove"); code != 2 {
		t.Errorf("unknown subcommand: %d", code)
	}
}
