package spool

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Record is one record read by a consumer.
type Record struct {
	Offset   int64     // where the record starts
	End      int64     // where the next one starts: commit this to pass it
	Appended time.Time // when it was appended
	Type     Type      // what it holds
	// Data is the payload. Records read together share the array under
	// their Data (each capped at its own length), so keeping a small
	// record's Data for long keeps its neighbours' memory too: copy what
	// is kept.
	Data []byte
}

// Consumer reads the spool from its own persisted cursor. One goroutine uses
// a consumer at a time; different consumers are independent.
type Consumer struct {
	s         *Spool
	name      string
	path      string
	committed int64 // guarded by s.mu
	// persisted is the offset in the cursor file, and persistedAt when it
	// was written; guarded by s.mu.
	persisted   int64
	persistedAt time.Time
	pos         int64 // next offset to read; owned by the reading goroutine

	f       *os.File
	fBase   int64
	br      *bufio.Reader
	skipped int64 // bytes skipped because they were lost to corruption

	hdr   [headerSize]byte
	block []byte // the rest of the block records' Data are carved from
}

// Consumer returns the consumer called name, creating its cursor at the start
// of the log if it has none. Names are short words: "influxdb", "detectors".
func (s *Spool) Consumer(name string) (*Consumer, error) {
	if name == "" || strings.ContainsAny(name, `/\. `) {
		return nil, fmt.Errorf("spool: bad consumer name %q", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if c, ok := s.consumer[name]; ok {
		return c, nil
	}
	c := &Consumer{s: s, name: name, path: filepath.Join(s.dir, cursorPrefix+name)}
	off, err := readCursor(c.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("spool: consumer %s: %w", name, err)
	}
	if errors.Is(err, os.ErrNotExist) {
		off = s.segs[0].base
	}
	if off < s.segs[0].base {
		off = s.segs[0].base
	}
	if off > s.synced {
		// The cursor is ahead of the log (the log was removed by hand):
		// start at its end rather than wait for offsets that may never come.
		off = s.synced
	}
	c.committed, c.pos, c.persisted = off, off, off
	s.consumer[name] = c
	return c, nil
}

// Name is the consumer's name.
func (c *Consumer) Name() string { return c.name }

// SpoolID is the identity of the spool c reads (Spool.ID).
func (c *Consumer) SpoolID() string { return c.s.id }

// Committed is the persisted cursor.
func (c *Consumer) Committed() int64 {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.committed
}

// Lag is the number of synced bytes the consumer has not committed.
func (c *Consumer) Lag() int64 {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.s.synced - c.committed
}

// Skipped is the number of bytes the consumer jumped over because a corrupt
// segment had been cut short.
func (c *Consumer) Skipped() int64 { return c.skipped }

// Rewind moves the read position back to the committed cursor, so that records
// read but not committed are read again (after a failed delivery).
func (c *Consumer) Rewind() {
	c.s.mu.Lock()
	c.pos = c.committed
	c.s.mu.Unlock()
	c.closeFile()
}

// OldestAge is how long ago the oldest record not yet committed was appended,
// or zero when the consumer is caught up.
func (c *Consumer) OldestAge() time.Duration {
	c.s.mu.Lock()
	off, synced := c.committed, c.s.synced
	seg, ok := c.s.segmentAtLocked(off)
	c.s.mu.Unlock()
	if off >= synced || !ok {
		return 0
	}
	f, err := os.Open(seg.path)
	if err != nil {
		return 0
	}
	defer f.Close()
	if _, err := f.Seek(off-seg.base, io.SeekStart); err != nil {
		return 0
	}
	fr, err := readFrame(bufio.NewReaderSize(f, 4096))
	ts := fr.at
	if err != nil {
		return 0
	}
	return time.Since(ts)
}

// segmentAtLocked finds the segment holding off, or the first one after it
// when off falls in a range lost to corruption.
func (s *Spool) segmentAtLocked(off int64) (segment, bool) {
	for _, sg := range s.segs {
		if off < sg.end() || (off == sg.end() && sg.path == s.segs[len(s.segs)-1].path) {
			return sg, true
		}
	}
	return segment{}, false
}

// Next returns up to maxRecords records (and about maxBytes of data) from the
// read position, waiting until at least one is synced or ctx ends.
func (c *Consumer) Next(ctx context.Context, maxRecords, maxBytes int) ([]Record, error) {
	for {
		c.s.mu.Lock()
		synced, ch, closed := c.s.synced, c.s.syncedCh, c.s.closed
		c.s.mu.Unlock()
		if closed {
			return nil, ErrClosed
		}
		if c.pos < synced {
			recs, err := c.read(synced, maxRecords, maxBytes)
			if err != nil || len(recs) > 0 {
				return recs, err
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ch:
		case <-c.s.done:
			return nil, ErrClosed
		}
	}
}

func (c *Consumer) read(limit int64, maxRecords, maxBytes int) ([]Record, error) {
	var out []Record
	size := 0
	for c.pos < limit && len(out) < maxRecords && size < maxBytes {
		if err := c.openAt(); err != nil {
			return out, err
		}
		fr, err := c.readFrame()
		if err != nil {
			// Only synced, checked bytes are read, so a failure here means
			// the file changed under us; start over at the next segment.
			c.closeFile()
			if next, ok := c.nextSegmentBase(); ok {
				c.skipped += next - c.pos
				c.pos = next
				continue
			}
			return out, fmt.Errorf("spool: read at %d: %w", c.pos, err)
		}
		if out == nil {
			out = make([]Record, 0, min(maxRecords, 32))
		}
		out = append(out, Record{Offset: c.pos, End: c.pos + fr.size, Appended: fr.at, Type: fr.typ, Data: fr.data})
		c.pos += fr.size
		size += len(fr.data)
	}
	return out, nil
}

// dataBlock is how much a consumer allocates at once for records' data; a
// record of more than a quarter of it gets its own.
const dataBlock = 32 << 10

// readFrame reads the frame at the read position, with its data carved
// from c.block.
func (c *Consumer) readFrame() (frame, error) {
	return readFrameInto(c.br, &c.hdr, c.room)
}

// room is where the next record's n bytes of data go: a slice of c.block,
// or their own array for a large record.
func (c *Consumer) room(n int) []byte {
	if n > dataBlock/4 {
		return make([]byte, n)
	}
	if len(c.block) < n {
		c.block = make([]byte, dataBlock)
	}
	buf := c.block[:n:n]
	c.block = c.block[n:]
	return buf
}

// openAt makes c.br read from c.pos, moving to the next segment when the
// current one is exhausted.
func (c *Consumer) openAt() error {
	c.s.mu.Lock()
	var seg segment
	found := false
	for i, sg := range c.s.segs {
		if c.pos >= sg.base && c.pos < sg.end() {
			seg, found = sg, true
			break
		}
		if c.pos < sg.base {
			// A range lost to corruption: jump to the next segment.
			c.skipped += sg.base - c.pos
			c.pos = sg.base
			seg, found = c.s.segs[i], true
			break
		}
	}
	c.s.mu.Unlock()
	if !found {
		return fmt.Errorf("spool: offset %d is in no segment", c.pos)
	}
	if c.f != nil && c.fBase == seg.base {
		return nil
	}
	c.closeFile()
	f, err := os.Open(seg.path)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if _, err := f.Seek(c.pos-seg.base, io.SeekStart); err != nil {
		f.Close()
		return fmt.Errorf("spool: %w", err)
	}
	c.f, c.fBase, c.br = f, seg.base, bufio.NewReaderSize(f, 256<<10)
	return nil
}

func (c *Consumer) nextSegmentBase() (int64, bool) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	for _, sg := range c.s.segs {
		if sg.base > c.pos {
			return sg.base, true
		}
	}
	return 0, false
}

func (c *Consumer) closeFile() {
	if c.f != nil {
		c.f.Close()
		c.f, c.br = nil, nil
	}
}

// Commit persists the cursor at off (a Record's End): everything before it is
// done with. Segments every consumer has passed are deleted first, so that a
// full disk frees the room the cursor file needs; a cursor that could not be
// persisted only means records are read again after a restart.
//
// The cursor file is written (durably, see writeCursor) at most once per
// CursorInterval, and by Close: a crash in between only means the records
// of the last interval are read again, which every consumer tolerates,
// while a durable write per batch would compete with the log's own fsyncs.
func (c *Consumer) Commit(off int64) error {
	c.s.mu.Lock()
	if off > c.committed {
		c.committed = off
	}
	c.s.gcLocked()
	due := time.Since(c.persistedAt) >= CursorInterval
	c.s.mu.Unlock()
	if !due {
		return nil
	}
	return c.persist()
}

// CursorInterval is the longest a committed cursor waits to be written.
const CursorInterval = time.Second

// persist writes the committed cursor to its file if it moved.
func (c *Consumer) persist() error {
	c.s.mu.Lock()
	off := c.committed
	moved := off != c.persisted
	c.s.mu.Unlock()
	if !moved {
		return nil
	}
	if err := writeCursor(c.path, off); err != nil {
		return fmt.Errorf("spool: cursor %s: %w", c.name, err)
	}
	c.s.mu.Lock()
	c.persisted, c.persistedAt = off, time.Now()
	c.s.mu.Unlock()
	return nil
}

// Close releases the consumer's file.
func (c *Consumer) Close() { c.closeFile() }
