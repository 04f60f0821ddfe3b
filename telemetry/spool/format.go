package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// FormatVersion is the on-disk format of the spool this code writes: the
// record framing described in the package comment, segment and cursor file
// names. It is recorded in the file FORMAT of the spool's folder.
//
// History: 1 is the first format (spools written before the FORMAT file
// existed are version 1 too; Open adds the file). 2 adds a record type in
// the high bits of the length word: a version 1 segment is a valid version 2
// one (every record of type 0), so the step from 1 to 2 changes no byte,
// while a sanigate that knows only version 1 refuses the folder.
const FormatVersion = 2

const formatFile = "FORMAT"

// ErrNewerFormat is returned by Open for a spool written by a newer
// sanigate: its records cannot be read safely, and nothing is touched.
var ErrNewerFormat = errors.New("spool written by a newer sanigate")

// migrations[v] upgrades a spool folder from format v to v+1; a format
// change adds its step here, and Open runs the steps in order.
var migrations = map[int]func(dir string) error{
	1: func(string) error { return nil }, // typed records read legacy frames as they are
}

// checkFormat reads the folder's format version, migrates an older one
// forward step by step, refuses a newer one, and records the current one.
func checkFormat(dir string) error {
	path := filepath.Join(dir, formatFile)
	v := FormatVersion
	b, err := os.ReadFile(path)
	recorded := false
	switch {
	case err == nil:
		f := strings.Fields(string(b))
		if len(f) != 2 || f[0] != "sanigate-spool" {
			return fmt.Errorf("spool: %s is not a spool format file", path)
		}
		if v, err = strconv.Atoi(f[1]); err != nil || v < 1 {
			return fmt.Errorf("spool: %s: bad version %q", path, f[1])
		}
		recorded = v == FormatVersion
	case errors.Is(err, os.ErrNotExist):
		v = 1 // new, or written before the file existed
	default:
		return fmt.Errorf("spool: %w", err)
	}
	if v > FormatVersion {
		return fmt.Errorf("%w: %s has format %d, this sanigate reads up to %d; upgrade sanigate or move the folder aside",
			ErrNewerFormat, dir, v, FormatVersion)
	}
	for ; v < FormatVersion; v++ {
		step, ok := migrations[v]
		if !ok {
			return fmt.Errorf("spool: no migration from format %d", v)
		}
		if err := step(dir); err != nil {
			return fmt.Errorf("spool: migrate format %d to %d: %w", v, v+1, err)
		}
	}
	if recorded {
		return nil
	}
	return writeFormat(path)
}

func writeFormat(path string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte("sanigate-spool "+strconv.Itoa(FormatVersion)+"\n"), 0o640); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	syncDir(filepath.Dir(path))
	return nil
}
