package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// All returns every dashboard, in the order of their files.
func All() []*Dashboard {
	return []*Dashboard{Overview(), Bins(), Trucks(), Toilets(), Sweepers(), Assessment(), Health()}
}

// FileName is the file a dashboard is written to: its uid without the
// "sanigate-" prefix, as JSON.
func FileName(d *Dashboard) string {
	name := d.UID
	if len(name) > len("sanigate-") && name[:len("sanigate-")] == "sanigate-" {
		name = name[len("sanigate-"):]
	}
	return name + ".json"
}

// Marshal encodes a dashboard as Grafana reads it: indented, non-ASCII kept
// readable, with a final newline, and the same bytes every time.
func Marshal(d *Dashboard) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, fmt.Errorf("dashboards: encode %s: %w", d.UID, err)
	}
	return buf.Bytes(), nil
}

// Write writes every dashboard into dir, replacing what is there.
func Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, d := range All() {
		b, err := Marshal(d)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, FileName(d)), b, 0o644); err != nil {
			return fmt.Errorf("dashboards: %w", err)
		}
	}
	return nil
}
