package violations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sanigate/sanigate/telemetry/spool"
)

// How a restart resumes. Run saves a snapshot of all detector state (open
// episodes, route windows and their tracks, readings still waiting for
// stragglers) together with the spool offset it reflects, every Checkpoint:
// first the snapshot (written to a temporary file, synced, renamed), then the
// spool cursor at the same offset. On start, Run loads the snapshot and skips
// the records before its offset, which the state already holds; if the
// process died between the two writes, that is the records between the
// cursor and the snapshot's offset. If the snapshot is missing or older than
// the cursor, detection resumes at the cursor with what the snapshot holds
// (or nothing), and says so in the log. Violations raised after the last
// checkpoint are raised again after a crash, with the same keys, so the sink
// merges them.
//
// The other way, rewinding the cursor by a replay window, was not taken: the
// spool deletes segments every consumer has passed, so holding hours of log
// back for the detectors would eat the quota the InfluxDB backlog needs, and
// a route window or a full bin can last longer than any sensible window.

const snapshotVersion = 1

type snapshotFile struct {
	Version  int                        `json:"version"`
	Consumer string                     `json:"consumer"`
	Offset   int64                      `json:"offset"`
	Saved    time.Time                  `json:"saved"`
	MaxEvent time.Time                  `json:"max_event"`
	SentWM   time.Time                  `json:"watermark"`
	Devices  map[string]json.RawMessage `json:"devices"`
}

func (e *Engine) snapshotPath(cons *spool.Consumer) string {
	return filepath.Join(e.opts.StateDir, "violations-"+cons.Name()+".json")
}

// restore loads the snapshot into the shards and returns the offset up to
// which records are already reflected in it.
func (e *Engine) restore(cons *spool.Consumer) (int64, error) {
	if e.opts.StateDir == "" {
		return 0, nil
	}
	if err := os.MkdirAll(e.opts.StateDir, 0o750); err != nil {
		return 0, fmt.Errorf("violations: state folder: %w", err)
	}
	path := e.snapshotPath(cons)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if cons.Committed() > 0 {
			e.log.Warn("no detector snapshot: detection resumes at the cursor with empty state", "file", path)
		}
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("violations: read snapshot: %w", err)
	}
	var sf snapshotFile
	if err := json.Unmarshal(b, &sf); err != nil || sf.Version != snapshotVersion {
		e.log.Warn("unreadable detector snapshot: detection resumes at the cursor with empty state", "file", path, "error", err)
		return 0, nil
	}
	for id, raw := range sf.Devices {
		d := &deviceState{}
		if err := json.Unmarshal(raw, d); err != nil {
			e.log.Warn("unreadable device state in the snapshot: starting it afresh", "device", id, "error", err)
			continue
		}
		e.shardFor(id).devices[id] = d
		e.snap[id] = raw
	}
	e.maxEvent, e.sentWM = sf.MaxEvent, sf.SentWM
	for _, s := range e.shards {
		s.wm = sf.SentWM
	}
	if c := cons.Committed(); sf.Offset < c {
		e.log.Warn("detector snapshot older than the cursor: readings between were not seen by the detectors",
			"snapshot_offset", sf.Offset, "cursor", c)
	}
	e.log.Info("detector state restored", "devices", len(sf.Devices), "offset", sf.Offset, "saved", sf.Saved)
	return sf.Offset, nil
}

// checkpoint saves state and commits the cursor at end.
func (e *Engine) checkpoint(cons *spool.Consumer, end int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	states, err := e.gather(ctx)
	if err != nil {
		return err
	}
	if e.opts.StateDir != "" {
		for k, v := range states {
			e.snap[k] = v
		}
		sf := snapshotFile{Version: snapshotVersion, Consumer: cons.Name(), Offset: end, Saved: e.opts.Now(),
			MaxEvent: e.maxEvent, SentWM: e.sentWM, Devices: e.snap}
		b, err := json.Marshal(&sf)
		if err != nil {
			return fmt.Errorf("violations: encode snapshot: %w", err)
		}
		if err := writeFileSync(e.snapshotPath(cons), b); err != nil {
			return err
		}
	}
	if err := cons.Commit(end); err != nil {
		return fmt.Errorf("violations: commit: %w", err)
	}
	e.m.checkpoints.Inc()
	return nil
}

func writeFileSync(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("violations: snapshot: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("violations: snapshot: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("violations: snapshot: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("violations: snapshot: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("violations: snapshot: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
