package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFormatVersionIsRecordedAndChecked(t *testing.T) {
	t.Run("new spool", func(t *testing.T) {
		dir := t.TempDir()
		s, _, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		b, err := os.ReadFile(filepath.Join(dir, formatFile))
		if err != nil || string(b) != fmt.Sprintf("sanigate-spool %d\n", FormatVersion) {
			t.Fatalf("FORMAT: %q, %v; want \"sanigate-spool %d\"", b, err, FormatVersion)
		}
	})
	t.Run("spool from before the marker keeps its records", func(t *testing.T) {
		dir := t.TempDir()
		s, _, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Append([]byte("kept"), true); err != nil {
			t.Fatal(err)
		}
		s.Close()
		os.Remove(filepath.Join(dir, formatFile))
		s, rec, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if rec.Records != 1 {
			t.Errorf("records after reopening: %d, want 1", rec.Records)
		}
		if _, err := os.Stat(filepath.Join(dir, formatFile)); err != nil {
			t.Errorf("FORMAT not added: %v", err)
		}
	})
	t.Run("newer format is refused untouched", func(t *testing.T) {
		dir := t.TempDir()
		next := FormatVersion + 1
		os.WriteFile(filepath.Join(dir, formatFile), []byte(fmt.Sprintf("sanigate-spool %d\n", next)), 0o640)
		os.WriteFile(filepath.Join(dir, segName(0)), []byte("future bytes"), 0o640)
		_, _, err := Open(dir, Options{})
		if !errors.Is(err, ErrNewerFormat) || !strings.Contains(err.Error(), fmt.Sprintf("format %d", next)) {
			t.Fatalf("got %v, want ErrNewerFormat naming format %d", err, next)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, segName(0))); string(b) != "future bytes" {
			t.Errorf("segment changed to %q", b)
		}
	})
	t.Run("garbage marker", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, formatFile), []byte("hello"), 0o640)
		if _, _, err := Open(dir, Options{}); err == nil {
			t.Fatal("opened a spool with a garbage FORMAT file")
		}
	})
}
