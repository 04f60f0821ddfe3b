package violations

import (
	"bufio"
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
)

// Snapshots of an engine driven by ProcessReadings (a cluster partition's
// engine) use the state log's encoding: a header frame naming what the
// state belongs to (scope) and one batch frame holding every device's state,
// with the position it reflects as the batch's offset, each frame
// length-prefixed and checksummed.

// ErrSnapshot marks a snapshot that cannot be restored: torn, corrupted, of
// another format version, or of another scope.
var ErrSnapshot = errors.New("violations: snapshot not restorable")

// Snapshot encodes the state of every device, as reflecting everything up
// to position at (opaque to the engine: a stream sequence, say), for
// Restore. It must be called from the goroutine that calls ProcessReadings,
// between calls; it returns ErrRunning for an engine run by Run.
func (e *Engine) Snapshot(scope string, at int64) ([]byte, error) {
	if e.running.Load() {
		return nil, ErrRunning
	}
	var buf bytes.Buffer
	if _, err := writeFrame(&buf, stateHeader{Version: stateVersion, SpoolID: scope, Consumer: "partition"}); err != nil {
		return nil, fmt.Errorf("violations: snapshot: %w", err)
	}
	b := stateBatch{Offset: at, Saved: e.opts.Now()}
	for _, s := range e.shards {
		states, n, err := s.snapshot(true)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			b.Shards = append(b.Shards, states)
		}
	}
	if _, err := writeFrame(&buf, b); err != nil {
		return nil, fmt.Errorf("violations: snapshot: %w", err)
	}
	return buf.Bytes(), nil
}

// Restore loads a snapshot made by Snapshot for scope into an engine that
// has processed nothing yet, and returns the position it reflects and how
// many devices it held. An unreadable snapshot (ErrSnapshot) leaves the
// engine as it was.
func (e *Engine) Restore(scope string, snap []byte) (at int64, devices int, err error) {
	if e.running.Load() {
		return 0, 0, ErrRunning
	}
	r := bufio.NewReader(bytes.NewReader(snap))
	var h stateHeader
	if err := readFrame(r, &h); err != nil {
		return 0, 0, fmt.Errorf("%w: header: %w", ErrSnapshot, err)
	}
	if h.Version != stateVersion || h.SpoolID != scope {
		return 0, 0, fmt.Errorf("%w: version %d of %q, want version %d of %q", ErrSnapshot, h.Version, h.SpoolID, stateVersion, scope)
	}
	var b stateBatch
	if err := readFrame(r, &b); err != nil {
		return 0, 0, fmt.Errorf("%w: batch: %w", ErrSnapshot, err)
	}
	states := map[string]*deviceState{}
	for _, stream := range b.Shards {
		dec := gob.NewDecoder(bytes.NewReader(stream))
		for {
			var id string
			if err := dec.Decode(&id); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return 0, 0, fmt.Errorf("%w: %w", ErrSnapshot, err)
			}
			d := &deviceState{}
			if err := dec.Decode(d); err != nil {
				return 0, 0, fmt.Errorf("%w: device %s: %w", ErrSnapshot, id, err)
			}
			states[id] = d
		}
	}
	for id, d := range states {
		d.rp = &replay{}
		d.savedDone = d.Done
		e.shardFor(id).devices[id] = d
	}
	return b.Offset, len(states), nil
}
