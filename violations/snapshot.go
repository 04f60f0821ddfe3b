package violations

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/sanigate/sanigate/telemetry/spool"
)

// How a restart resumes. Run keeps the detector state in a state log beside
// the spool: every Checkpoint it appends one batch holding the devices
// changed since the last batch (gob, one stream per shard) and the spool
// offset it reflects, syncs it, then commits the spool cursor at that
// offset. When the log has grown to four times its size after the last
// compaction, it is rewritten with every device's state in one batch. On
// start, Run replays the log's batches (a torn last batch is left out), and
// skips the records before the last batch's offset, which the state already
// holds; if the process died between the two writes, that is the records
// between the cursor and the batch's offset. Violations raised after the
// last checkpoint are raised again after a crash, with the same keys, so the
// sink merges them.
//
// The log's header names the spool it belongs to (Spool.ID). A log of
// another spool (the spool folder was removed and the state folder kept) is
// not restored: detection starts from the new spool's beginning, with a
// warning.
//
// The other way, rewinding the cursor by a replay window, was not taken: the
// spool deletes segments every consumer has passed, so holding hours of log
// back for the detectors would eat the quota the InfluxDB backlog needs, and
// a route window or a full bin can last longer than any sensible window.

const stateVersion = 2

// stateHeader opens a state log.
type stateHeader struct {
	Version  int
	SpoolID  string
	Consumer string
}

// stateBatch is one checkpoint: changed devices and the offset they reflect.
type stateBatch struct {
	Offset int64
	Saved  time.Time
	// Shards holds one gob stream of (id string, *deviceState) pairs per shard.
	Shards [][]byte
}

var stateCRC = crc32.MakeTable(crc32.Castagnoli)

// stateLog is the open state log.
type stateLog struct {
	path      string
	f         *os.File
	size      int64
	compacted int64 // size after the last rewrite
}

func (e *Engine) statePath(cons *spool.Consumer) string {
	return filepath.Join(e.opts.StateDir, "violations-"+cons.Name()+".state")
}

// writeFrame appends a length- and CRC-framed gob of v.
func writeFrame(w io.Writer, v any) (int64, error) {
	var buf bytes.Buffer
	buf.Write(make([]byte, 8))
	if err := gob.NewEncoder(&buf).Encode(v); err != nil {
		return 0, err
	}
	b := buf.Bytes()
	binary.LittleEndian.PutUint32(b[0:4], uint32(len(b)-8))
	binary.LittleEndian.PutUint32(b[4:8], crc32.Checksum(b[8:], stateCRC))
	n, err := w.Write(b)
	return int64(n), err
}

func readFrame(r io.Reader, v any) error {
	var h [8]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return err
	}
	n := binary.LittleEndian.Uint32(h[0:4])
	if n > 1<<30 {
		return fmt.Errorf("violations: state frame of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	if crc32.Checksum(b, stateCRC) != binary.LittleEndian.Uint32(h[4:8]) {
		return errors.New("violations: state frame checksum")
	}
	return gob.NewDecoder(bytes.NewReader(b)).Decode(v)
}

// restore loads the state log into the shards and returns the offset up to
// which records are already reflected in it.
func (e *Engine) restore(cons *spool.Consumer) (int64, error) {
	if e.opts.StateDir == "" {
		return 0, nil
	}
	if err := os.MkdirAll(e.opts.StateDir, 0o750); err != nil {
		return 0, fmt.Errorf("violations: state folder: %w", err)
	}
	old := filepath.Join(e.opts.StateDir, "violations-"+cons.Name()+".json")
	if _, err := os.Stat(old); err == nil {
		e.log.Warn("detector snapshot of an older format: not restored", "file", old)
		_ = os.Remove(old)
	}
	path := e.statePath(cons)
	devices, offset, err := e.readState(path, cons)
	if errors.Is(err, errStateIO) {
		// A transient failure (descriptors exhausted, say) must not cost
		// the state: fail, and let the supervisor run the engine again.
		return 0, err
	}
	if err != nil {
		// Corrupted: keep the file aside for a look, and start afresh.
		q := fmt.Sprintf("%s.corrupt-%d", path, e.opts.Now().Unix())
		if rerr := os.Rename(path, q); rerr != nil {
			return 0, fmt.Errorf("violations: quarantine the unreadable state log: %w", rerr)
		}
		e.log.Error("detector state unreadable: moved aside, detection starts afresh", "file", path, "quarantined", q, "error", err)
		devices, offset = nil, 0
	}
	for id, d := range devices {
		d.rp = &replay{}
		d.savedDone = d.Done
		s := e.shardFor(id)
		s.devices[id] = d
		s.lateBytes += waitingBytes(d.Late)
		if len(d.Late) > 0 {
			s.rbWait[id] = true // waiting for a read-back when the process stopped
		}
	}
	if len(devices) > 0 {
		if c := cons.Committed(); offset < c {
			e.log.Warn("detector state older than the cursor: readings between were not seen by the detectors",
				"state_offset", offset, "cursor", c)
		}
		e.log.Info("detector state restored", "devices", len(devices), "offset", offset)
	} else if cons.Committed() > 0 && err == nil {
		e.log.Warn("no detector state: detection resumes at the cursor with empty state", "file", path)
	}
	// Start a fresh log holding what was restored.
	e.state = &stateLog{path: path}
	if err := e.compact(cons, offset, devices); err != nil {
		return 0, err
	}
	return offset, nil
}

// errStateIO marks a state log that could not be read for a reason other
// than its content (an open or read failure): the state is kept for the
// next try rather than replaced.
var errStateIO = errors.New("state log not readable now")

// errForeign marks a state log that belongs to another spool.
var errForeign = errors.New("the state belongs to another spool")

// readState replays the state log at path.
func (e *Engine) readState(path string, cons *spool.Consumer) (map[string]*deviceState, int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("violations: read state: %w: %w", errStateIO, err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var h stateHeader
	if err := readFrame(r, &h); err != nil || h.Version != stateVersion {
		return nil, 0, fmt.Errorf("violations: state log header (version %d): %v", h.Version, err)
	}
	if h.SpoolID != cons.SpoolID() {
		e.log.Warn("detector state belongs to another spool: not restored; detection starts from the spool's beginning",
			"state_spool", h.SpoolID, "spool", cons.SpoolID())
		return nil, 0, nil
	}
	devices := map[string]*deviceState{}
	var offset int64
	for {
		var b stateBatch
		if err := readFrame(r, &b); err != nil {
			if !errors.Is(err, io.EOF) {
				e.log.Warn("state log ends in a torn or unreadable batch: left out", "file", path, "error", err)
			}
			break
		}
		for _, stream := range b.Shards {
			dec := gob.NewDecoder(bytes.NewReader(stream))
			for {
				var id string
				if err := dec.Decode(&id); err != nil {
					break
				}
				d := &deviceState{}
				if err := dec.Decode(d); err != nil {
					e.log.Warn("unreadable device state: starting it afresh", "device", id, "error", err)
					break
				}
				devices[id] = d
			}
		}
		offset = b.Offset
	}
	return devices, offset, nil
}

// compact writes a new state log holding devices at offset and makes it
// the current one.
func (e *Engine) compact(cons *spool.Consumer, offset int64, devices map[string]*deviceState) error {
	st := e.state
	if st.f != nil {
		st.f.Close()
		st.f = nil
	}
	tmp := st.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("violations: state log: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	size, err := writeFrame(w, stateHeader{Version: stateVersion, SpoolID: cons.SpoolID(), Consumer: cons.Name()})
	if err == nil && len(devices) > 0 {
		var buf bytes.Buffer
		enc := gob.NewEncoder(&buf)
		for id, d := range devices {
			if err = enc.Encode(id); err == nil {
				err = enc.Encode(d)
			}
			if err != nil {
				break
			}
		}
		var n int64
		if err == nil {
			n, err = writeFrame(w, stateBatch{Offset: offset, Saved: e.opts.Now(), Shards: [][]byte{buf.Bytes()}})
		}
		size += n
	}
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("violations: state log: %w", err)
	}
	f.Close()
	if err := os.Rename(tmp, st.path); err != nil {
		return fmt.Errorf("violations: state log: %w", err)
	}
	syncDir(filepath.Dir(st.path))
	st.f, err = os.OpenFile(st.path, os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("violations: state log: %w", err)
	}
	st.size, st.compacted = size, size
	e.m.stateBytes.Add(float64(size))
	return nil
}

// checkpoint saves state and commits the cursor at end.
func (e *Engine) checkpoint(cons *spool.Consumer, end int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), deliverTimeout) // as long as a batch's rest may wait for a shard
	defer cancel()
	if e.opts.StateDir != "" && e.state != nil && e.state.size > max(4*e.state.compacted, 1<<20) {
		if err := e.rewrite(ctx, cons, end); err != nil {
			return err
		}
	} else {
		reports, err := e.gather(ctx, false)
		if err != nil {
			return err
		}
		if e.opts.StateDir != "" && e.state != nil {
			b := stateBatch{Offset: end, Saved: e.opts.Now()}
			for _, r := range reports {
				if r.n > 0 {
					b.Shards = append(b.Shards, r.states)
				}
			}
			n, err := writeFrame(e.state.f, b)
			if err == nil {
				err = e.state.f.Sync()
			}
			if err != nil {
				return fmt.Errorf("violations: state log: %w", err)
			}
			e.state.size += n
			e.m.stateBytes.Add(float64(n))
		}
	}
	if err := cons.Commit(end); err != nil {
		return fmt.Errorf("violations: commit: %w", err)
	}
	e.m.checkpoints.Inc()
	return nil
}

// rewrite compacts the state log: every device's state in one batch.
func (e *Engine) rewrite(ctx context.Context, cons *spool.Consumer, end int64) error {
	reports, err := e.gather(ctx, true)
	if err != nil {
		return err
	}
	devices := map[string]*deviceState{}
	for _, r := range reports {
		dec := gob.NewDecoder(bytes.NewReader(r.states))
		for {
			var id string
			if err := dec.Decode(&id); err != nil {
				break
			}
			d := &deviceState{}
			if err := dec.Decode(d); err != nil {
				return fmt.Errorf("violations: state of %s: %w", id, err)
			}
			devices[id] = d
		}
	}
	return e.compact(cons, end, devices)
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
