package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sanigate/sanigate/cases"
	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/violations"
)

const backupConfig = `spool:
  dir: spool
cases:
  store: {driver: sqlite, path: cases.db}
  units: [{id: office, name: City office, webhook_url: "http://127.0.0.1:9/hook", secret_file: office.secret}]
  dispatch: {default_unit: office}
devices: []
`

// openCases opens the case service of the configuration at path.
func openCases(t *testing.T, path string) *cases.Service {
	t.Helper()
	cfg, err := fleet.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cc := cases.FromConfig(cfg)
	svc, err := cases.Open(context.Background(), cc, cases.Deps{Dir: filepath.Dir(path)})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func caseSummaries(t *testing.T, svc *cases.Service) []string {
	t.Helper()
	page, err := svc.List(context.Background(), cases.System, cases.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range page.Cases {
		out = append(out, c.Summary)
	}
	return out
}

func TestBackupAndRestoreRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sanigate.yaml")
	os.WriteFile(path, []byte(backupConfig), 0o600)
	os.WriteFile(filepath.Join(dir, "office.secret"), []byte("s3cret\n"), 0o600)
	os.MkdirAll(filepath.Join(dir, "places"), 0o750)
	os.WriteFile(filepath.Join(dir, "places", "districts.geojson"), []byte(`{"type":"FeatureCollection","features":[]}`), 0o600)
	os.MkdirAll(filepath.Join(dir, "spool"), 0o750)
	os.WriteFile(filepath.Join(dir, "spool", "00000000000000000000.seg"), []byte("spool bytes"), 0o600)

	svc := openCases(t, path)
	now := time.Now()
	for i, dev := range []string{"bin-1", "bin-2"} {
		v := violations.Violation{Key: "ovf/" + dev, Type: violations.BinOverflow, Severity: violations.Major, Device: dev,
			Kind: "bin", Start: now.Add(-time.Hour), End: now, Summary: "full for an hour #" + string(rune('1'+i))}
		if err := svc.Raise(context.Background(), v); err != nil {
			t.Fatal(err)
		}
	}
	want := caseSummaries(t, svc)

	// Backed up while the store is open, as with a running gateway.
	archive := filepath.Join(t.TempDir(), "b.tar.gz")
	var out, errb bytes.Buffer
	if code := run([]string{"backup", "-config", path, "-out", archive}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("backup: exit %d: %s", code, errb.String())
	}
	svc.Close()
	if fi, err := os.Stat(archive); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("archive: %v, %v; want mode 0600 (it holds secrets)", fi, err)
	}
	t.Log(strings.TrimSpace(out.String()))

	// The machine is lost: a new folder gets the configuration and the store.
	fresh := t.TempDir()
	out.Reset()
	errb.Reset()
	if code := run([]string{"restore", "-in", archive, "-config-out", fresh}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("restore: exit %d: %s", code, errb.String())
	}
	for _, f := range []string{"sanigate.yaml", "office.secret", "places/districts.geojson"} {
		a, _ := os.ReadFile(filepath.Join(dir, f))
		b, err := os.ReadFile(filepath.Join(fresh, f))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s: restored %q (%v), want %q", f, b, err, a)
		}
	}
	for _, f := range []string{"spool", "cases.db-wal"} {
		if _, err := os.Stat(filepath.Join(fresh, f)); err == nil {
			t.Errorf("%s was backed up: the spool is a buffer, the store goes through its own backup", f)
		}
	}
	restored := openCases(t, filepath.Join(fresh, "sanigate.yaml"))
	got := caseSummaries(t, restored)
	restored.Close()
	if strings.Join(got, "|") != strings.Join(want, "|") || len(got) != 2 {
		t.Fatalf("restored cases %q, want %q", got, want)
	}

	// Again over the restored store: refused without -force.
	errb.Reset()
	if code := run([]string{"restore", "-in", archive, "-config", filepath.Join(fresh, "sanigate.yaml")}, strings.NewReader(""), &out, &errb); code == 0 ||
		!strings.Contains(errb.String(), "already holds data") {
		t.Errorf("restore over a store with cases: exit %d, %s; want a refusal", code, errb.String())
	}
	if code := run([]string{"restore", "-in", archive, "-config", filepath.Join(fresh, "sanigate.yaml"), "-force"}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Errorf("restore -force: exit %d: %s", code, errb.String())
	}
}

func TestRestoreRefusesAHostileArchive(t *testing.T) {
	archive := filepath.Join(t.TempDir(), "evil.tar.gz")
	m := manifest{Format: 1, ConfigFile: "sanigate.yaml"}
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "x"), []byte("x"), 0o600)
	if err := writeArchive(archive, m, t.TempDir(), src); err != nil {
		t.Fatal(err)
	}
	// A manifest naming a file outside the folder.
	m.Config = []string{"../../etc/passwd"}
	os.MkdirAll(filepath.Join(src, "sub"), 0o700)
	if err := restoreConfig(m, src, t.TempDir(), true); err == nil || !strings.Contains(err.Error(), "leaves the folder") {
		t.Errorf("restoreConfig with ../: %v, want a refusal", err)
	}
	// An entry that climbs out of the folder it is unpacked into.
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	tw.WriteHeader(&tar.Header{Name: "../escaped", Mode: 0o600, Size: 1, Typeflag: tar.TypeReg})
	tw.Write([]byte("x"))
	tw.Close()
	gz.Close()
	os.WriteFile(archive, buf.Bytes(), 0o600)
	into := filepath.Join(t.TempDir(), "in")
	os.Mkdir(into, 0o700)
	if _, err := extract(archive, into); err == nil || !strings.Contains(err.Error(), "leaves") {
		t.Errorf("extract ../escaped: %v, want a refusal", err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(into), "escaped")); err == nil {
		t.Error("an entry was written outside the folder")
	}
	var out, errb bytes.Buffer
	os.WriteFile(archive, []byte("not gzip"), 0o600)
	if code := run([]string{"restore", "-in", archive, "-config-out", t.TempDir()}, strings.NewReader(""), &out, &errb); code == 0 ||
		!strings.Contains(errb.String(), "not a backup archive") {
		t.Errorf("garbage archive: exit %d, %s", code, errb.String())
	}
}
