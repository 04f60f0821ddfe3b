package spool

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A cursor left empty or zero-filled by a power loss is repaired at Open, as a
// torn tail is: its consumer reads again from the oldest record, and
// Recovery says so. A leftover temporary file is removed.
func TestTornCursorRecovered(t *testing.T) {
	for _, tc := range []struct {
		name string
		data string
	}{{"empty", ""}, {"zero-filled", "\x00\x00\x00\x00"}, {"blank line", "\n"}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, _ := open(t, dir, Options{})
			for i := 0; i < 10; i++ {
				s.Append(rec(i), true)
			}
			c, _ := s.Consumer("w")
			got := drain(t, c, true)
			if len(got) != 10 {
				t.Fatalf("read %d records, want 10", len(got))
			}
			s.Close()
			path := filepath.Join(dir, cursorPrefix+"w")
			if err := os.WriteFile(path, []byte(tc.data), 0o640); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path+".tmp", []byte("12"), 0o640); err != nil {
				t.Fatal(err)
			}
			s2, recov := open(t, dir, Options{})
			if len(recov.TornCursors) != 1 || recov.TornCursors[0] != "w" {
				t.Errorf("torn cursors: got %v, want [w]", recov.TornCursors)
			}
			if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
				t.Errorf("temporary cursor file left: %v", err)
			}
			c2, err := s2.Consumer("w")
			if err != nil {
				t.Fatal(err)
			}
			if got := drain(t, c2, true); len(got) != 10 {
				t.Errorf("after repair read %d records, want all 10 again", len(got))
			}
		})
	}
}

// A cursor holding something that is not an offset is not guessed at: the
// error names the file and says what to do.
func TestGarbageCursorNamesFileAndRemedy(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir, Options{})
	s.Append(rec(1), true)
	s.Close()
	path := filepath.Join(dir, cursorPrefix+"influxdb")
	if err := os.WriteFile(path, []byte("garbage\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	s2, recov := open(t, dir, Options{})
	if len(recov.TornCursors) != 0 {
		t.Errorf("garbage taken for a torn cursor: %v", recov.TornCursors)
	}
	_, err := s2.Consumer("influxdb")
	if err == nil {
		t.Fatal("a garbage cursor was accepted")
	}
	for _, want := range []string{path, `"garbage"`, "remove it"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// Commit leaves the cursor complete on disk, with no temporary file.
func TestCommitWritesCursorDurably(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir, Options{})
	s.Append(rec(1), true)
	c, _ := s.Consumer("w")
	drain(t, c, true)
	path := filepath.Join(dir, cursorPrefix+"w")
	off, err := readCursor(path)
	if err != nil || off != c.Committed() || off == 0 {
		t.Errorf("cursor on disk: %d, %v; committed %d", off, err, c.Committed())
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left: %v", err)
	}
}
