package spool

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// errTornCursor is a cursor file left empty or zero-filled by a power loss
// during its write (some file systems can do that even with rename).
var errTornCursor = errors.New("torn cursor")

// readCursor reads a consumer's persisted offset. An empty or zero-filled
// file is errTornCursor; anything else that is not an offset is an error
// that names the file and says what to do.
func readCursor(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	text := strings.TrimSpace(string(bytes.Trim(b, "\x00")))
	if text == "" {
		return 0, errTornCursor
	}
	off, err := strconv.ParseInt(text, 10, 64)
	if err != nil || off < 0 {
		return 0, fmt.Errorf("cursor file %s holds %q, not an offset: remove it to read that consumer's records again "+
			"from the start of the spool (InfluxDB overwrites repeated points), or write back the offset it had", path, clip(text))
	}
	return off, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// writeCursor persists off at path durably: a temporary file, synced,
// renamed over the cursor, and the folder synced, so that a power loss
// leaves the old cursor or the new one.
func writeCursor(path string, off int64) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	_, err = f.WriteString(strconv.FormatInt(off, 10) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}

// recoverCursors removes the temporary files of cursor writes a crash
// interrupted, and torn cursor files: their consumer starts again at the
// oldest record of the spool, as a new consumer does (records are read
// twice rather than lost). It returns the names of the torn cursors.
func recoverCursors(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var torn []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasPrefix(name, cursorPrefix) {
			continue
		}
		path := filepath.Join(dir, name)
		if strings.HasSuffix(name, ".tmp") {
			_ = os.Remove(path)
			continue
		}
		if _, err := readCursor(path); errors.Is(err, errTornCursor) {
			if err := os.Remove(path); err != nil {
				return torn, err
			}
			torn = append(torn, strings.TrimPrefix(name, cursorPrefix))
		}
	}
	if len(torn) > 0 {
		syncDir(dir)
	}
	return torn, nil
}
