// Package spool is the durable, append-only log between ingest and the
// consumers of readings (the InfluxDB writer, the detectors).
//
// The log lives in a folder as segment files named by the offset of their
// first byte. Every record is framed as a 4-byte little-endian word holding
// the payload's length (low 28 bits) and the record's Type (high 4 bits), a
// 4-byte CRC-32C of what follows it (and of the type, when not TypeReading),
// the 8-byte append time in Unix nanoseconds, and the payload. Segments
// written before records were typed hold type 0 (TypeReading) everywhere and
// stay readable. Offsets are byte positions in
// the whole log, so they only grow and a segment's name says where it starts.
//
// Guarantees:
//   - Append with wait=true returns only after the record is on disk (fsync).
//     Concurrent appends share one fsync (group commit), bounded by
//     Options.SyncDelay and Options.SyncRecords.
//   - Records appended with a callback (AppendNotify, Append with wait) are
//     framed into a buffer that is written in one write just before the
//     group fsync (or sooner, when it holds flushBytes, at a segment roll and
//     at Close), so they cost no system call of their own. Appends without a
//     callback write that buffer and their own record at once and return the
//     write's outcome. Either way records reach the file in append order; a
//     buffered record counts in Stats, the quota and the offsets from its
//     append on, and if its write fails it is taken out of the file and the
//     counts again and its callback gets the error: a later sync never
//     acknowledges it.
//   - Consumers see only synced records, so a consumer's cursor can never point
//     past what survives a power loss.
//   - A consumer's cursor is persisted by Commit; after a restart it resumes
//     there. Segments every consumer has passed are deleted.
//   - When the log holds Options.MaxBytes, or the disk is full, Append returns
//     ErrFull and writes nothing; it accepts again once consumers have freed space.
//   - Open checks every segment: a torn tail is cut off, a corrupt segment is
//     copied to quarantine/ and cut back to its last good record. Both are
//     reported in Recovery; neither stops the spool from opening.
package spool

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrFull is returned by Append when the spool has reached its quota or the
// disk has no room; nothing was written.
var ErrFull = errors.New("spool full")

// ErrClosed is returned by operations on a closed spool.
var ErrClosed = errors.New("spool closed")

const (
	headerSize = 16
	maxRecord  = 64 << 20
	// flushBytes is how much the append buffer holds before it is written
	// without waiting for the group fsync; a buffer grown past keepBytes
	// (by large records) is let go after its write.
	flushBytes   = 256 << 10
	keepBytes    = 1 << 20
	keepNotify   = 1 << 16 // callbacks whose room is kept between syncs
	lengthMask   = 1<<28 - 1
	segSuffix    = ".seg"
	cursorPrefix = "cursor-"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Type says what a record holds, so that each consumer reads only what it
// consumes.
type Type uint8

const (
	// TypeReading is a device's own message (readings, events), appended by
	// Append and AppendNotify. Segments written before records were typed
	// hold this type for every record.
	TypeReading Type = 0
	// TypeDerived is a record the gateway derives from readings (a
	// violation, a coverage figure, a case event or KPI), appended by
	// AppendReserved: stored in InfluxDB, never read back as readings.
	TypeDerived Type = 1
)

// frameCRC is the checksum of a frame: of the time and payload, and of the
// type too when it is not TypeReading (legacy frames had no type).
func frameCRC(typ Type, tsAndPayload []byte) uint32 {
	crc := uint32(0)
	if typ != TypeReading {
		crc = crc32.Update(crc, castagnoli, []byte{byte(typ)})
	}
	return crc32.Update(crc, castagnoli, tsAndPayload)
}

// headerCRC is frameCRC of the type and the time alone, byte by byte from
// the table, so that no buffer is needed; crc32.Update continues it over the
// payload.
func headerCRC(typ Type, ts uint64) uint32 {
	crc := ^uint32(0)
	if typ != TypeReading {
		crc = castagnoli[byte(crc)^byte(typ)] ^ crc>>8
	}
	for i := 0; i < 8; i++ {
		crc = castagnoli[byte(crc)^byte(ts>>(8*i))] ^ crc>>8
	}
	return ^crc
}

// Options configure a spool. Zero values take the defaults.
type Options struct {
	MaxBytes     int64         // quota for all segments; default 2 GiB
	SegmentBytes int64         // roll to a new segment past this size; default 16 MiB
	SyncDelay    time.Duration // longest a waiting append is held for more company; default 2ms
	SyncRecords  int           // sync at once when this many appends wait; default 512
	// MinFreeBytes is the headroom kept free on the spool's disk: below it,
	// ordinary appends are refused as if the quota were reached, so that
	// the disk never fills under the gateway and the detectors' snapshots,
	// cursors and derived records (AppendReserved) still fit. Default 64 MiB;
	// negative disables the check.
	MinFreeBytes int64
	// Hooks for metrics; any may be nil.
	OnSync func(d time.Duration, records int)
}

// Recovery reports what Open found and repaired.
type Recovery struct {
	Segments    int
	Records     int64
	TornTail    int64    // bytes cut from the end of the last segment
	Quarantined []string // segments with corruption, copied into quarantine/
	LostBytes   int64    // bytes cut from corrupt segments
	// TornCursors are consumers whose cursor file a power loss left empty:
	// they read the spool again from its oldest record.
	TornCursors []string
}

// Spool is the log. It is safe for concurrent use.
type Spool struct {
	dir  string
	id   string
	opts Options

	mu      sync.Mutex
	closed  bool
	segs    []segment // sorted by base; the last one is active
	active  *os.File
	end     int64 // offset after the last appended record, buffered or written
	total   int64 // bytes in all segments
	waiting int   // appends waiting for a sync
	pending []notify
	// buf holds framed records not yet written to the active segment (they
	// all belong to it: a roll writes the buffer first); bufRecords of them,
	// the last bufNotify entries of pending among them. end, total and the
	// active segment's size and records count them already.
	buf        []byte
	bufRecords int64
	bufNotify  int
	// torn is set when a failed write could not be taken back: the active
	// file holds bytes past its segment's size, to be cut before the next
	// write.
	torn     bool
	writes   int64 // writes to segment files, for tests
	full     bool  // refusing appends until consumers free a tenth of the quota
	fullWhy  string
	diskAt   time.Time // when free disk space was last looked at
	diskEnd  int64     // s.end then
	diskLow  bool
	kick     chan struct{}
	consumer map[string]*Consumer

	syncMu   sync.Mutex // held while a sync is in flight
	synced   int64      // guarded by mu
	syncedCh chan struct{}
	errSync  error
	ready    []notify // callbacks being called by syncOnce; guarded by syncMu

	done chan struct{}
	wg   sync.WaitGroup
}

type segment struct {
	base    int64
	size    int64
	records int64
	path    string
}

func (s segment) end() int64 { return s.base + s.size }

func segName(base int64) string { return fmt.Sprintf("%020d%s", base, segSuffix) }

// applyDefaults fills the options left zero.
func (o *Options) applyDefaults() {
	if o.MaxBytes <= 0 {
		o.MaxBytes = 2 << 30
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = 16 << 20
	}
	if o.SegmentBytes > o.MaxBytes/4 {
		// Space is freed a segment at a time: keep segments small against the quota.
		o.SegmentBytes = max(o.MaxBytes/4, 4096)
	}
	if o.SyncDelay < 0 {
		o.SyncDelay = 0
	} else if o.SyncDelay == 0 {
		o.SyncDelay = 2 * time.Millisecond
	}
	if o.SyncRecords <= 0 {
		o.SyncRecords = 512
	}
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = 64 << 20
	}
}

// Open opens or creates the spool in dir, checking and repairing its segments.
func Open(dir string, opts Options) (*Spool, Recovery, error) {
	opts.applyDefaults()
	var rec Recovery
	var err error
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, rec, fmt.Errorf("spool: %w", err)
	}
	if err := checkFormat(dir); err != nil {
		return nil, rec, err
	}
	torn, err := recoverCursors(dir)
	if err != nil {
		return nil, rec, fmt.Errorf("spool: cursors: %w", err)
	}
	rec.TornCursors = torn
	s := &Spool{
		dir: dir, opts: opts,
		kick:     make(chan struct{}, 1),
		consumer: map[string]*Consumer{},
		syncedCh: make(chan struct{}),
		done:     make(chan struct{}),
	}
	if s.id, err = loadID(dir); err != nil {
		return nil, rec, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, rec, fmt.Errorf("spool: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, segSuffix) {
			continue
		}
		base, err := strconv.ParseInt(strings.TrimSuffix(name, segSuffix), 10, 64)
		if err != nil || base < 0 {
			continue
		}
		s.segs = append(s.segs, segment{base: base, path: filepath.Join(dir, name)})
	}
	sort.Slice(s.segs, func(i, j int) bool { return s.segs[i].base < s.segs[j].base })
	if err := s.checkSegments(&rec); err != nil {
		return nil, rec, err
	}
	rec.Segments = len(s.segs)
	if len(s.segs) == 0 {
		base, _ := s.maxCursor()
		s.segs = append(s.segs, segment{base: base, path: filepath.Join(dir, segName(base))})
	}
	last := &s.segs[len(s.segs)-1]
	f, err := os.OpenFile(last.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, rec, fmt.Errorf("spool: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, rec, fmt.Errorf("spool: %w", err)
	}
	syncDir(dir)
	s.active = f
	s.end = last.end()
	s.synced = s.end
	s.wg.Add(1)
	go s.syncLoop()
	return s, rec, nil
}

// idFile holds the spool's identity, created with the folder.
const idFile = "id"

// loadID reads the spool's identity, or gives a new spool (or one from
// before identities) a random one.
func loadID(dir string) (string, error) {
	path := filepath.Join(dir, idFile)
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("spool: identity: %w", err)
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("spool: identity: %w", err)
	}
	id := hex.EncodeToString(raw[:])
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o640); err != nil {
		return "", fmt.Errorf("spool: identity: %w", err)
	}
	if f, err := os.Open(tmp); err == nil {
		_ = f.Sync()
		f.Close()
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("spool: identity: %w", err)
	}
	syncDir(dir)
	return id, nil
}

// ID is the spool's identity: random, made when its folder was, so that
// state kept beside the spool (the detectors' snapshots) can tell whether it
// belongs to this log or to one removed since.
func (s *Spool) ID() string { return s.id }

// checkSegments scans every segment, cuts a torn tail off the last one, and
// quarantines and cuts back a corrupt one in the middle.
func (s *Spool) checkSegments(rec *Recovery) error {
	for i := range s.segs {
		last := i == len(s.segs)-1
		n, good, size, err := scanSegment(s.segs[i].path)
		if err != nil {
			return fmt.Errorf("spool: check %s: %w", s.segs[i].path, err)
		}
		rec.Records += n
		s.segs[i].records = n
		if good < size {
			cut := size - good
			if last {
				rec.TornTail = cut
			} else {
				q, err := s.quarantine(s.segs[i].path)
				if err != nil {
					return err
				}
				rec.Quarantined = append(rec.Quarantined, q)
				rec.LostBytes += cut
			}
			if err := os.Truncate(s.segs[i].path, good); err != nil {
				return fmt.Errorf("spool: cut %s: %w", s.segs[i].path, err)
			}
		}
		// A segment must not reach into the next one's range; if it does,
		// its name or content is wrong: keep what fits.
		if !last && s.segs[i].base+good > s.segs[i+1].base {
			good = s.segs[i+1].base - s.segs[i].base
			if err := os.Truncate(s.segs[i].path, good); err != nil {
				return err
			}
		}
		s.segs[i].size = good
		s.total += good
	}
	return nil
}

// maxCursor returns the highest persisted cursor, so that an emptied spool
// keeps its offsets growing.
func (s *Spool) maxCursor() (int64, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return 0, err
	}
	var m int64
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), cursorPrefix) && !strings.HasSuffix(e.Name(), ".tmp") {
			if off, err := readCursor(filepath.Join(s.dir, e.Name())); err == nil && off > m {
				m = off
			}
		}
	}
	return m, nil
}

func (s *Spool) quarantine(path string) (string, error) {
	qdir := filepath.Join(s.dir, "quarantine")
	if err := os.MkdirAll(qdir, 0o750); err != nil {
		return "", fmt.Errorf("spool: quarantine: %w", err)
	}
	dst := filepath.Join(qdir, fmt.Sprintf("%s.%d", filepath.Base(path), time.Now().UnixNano()))
	in, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("spool: quarantine: %w", err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return "", fmt.Errorf("spool: quarantine: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return "", fmt.Errorf("spool: quarantine: %w", err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return "", err
	}
	return dst, out.Close()
}

// scanSegment counts the good records of a segment and returns the length of
// its good prefix and its size on disk.
func scanSegment(path string) (records, good, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, 0, err
	}
	size = st.Size()
	r := &offsetReader{r: f}
	for {
		fr, err := readFrame(r)
		if err != nil {
			return records, good, size, nil
		}
		records++
		good += fr.size
	}
}

type offsetReader struct {
	r   io.Reader
	off int64
}

func (o *offsetReader) Read(p []byte) (int, error) {
	n, err := o.r.Read(p)
	o.off += int64(n)
	return n, err
}

var errCorrupt = errors.New("corrupt record")

type frame struct {
	data []byte
	at   time.Time
	typ  Type
	size int64 // header and payload
}

func readFrame(r io.Reader) (frame, error) {
	var h [headerSize]byte
	return readFrameInto(r, &h, func(n int) []byte { return make([]byte, n) })
}

// readFrameInto reads one frame from r, its header through h and its data
// into room(length), and checks it.
func readFrameInto(r io.Reader, h *[headerSize]byte, room func(n int) []byte) (frame, error) {
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return frame{}, err
	}
	word := binary.LittleEndian.Uint32(h[0:4])
	n, typ := word&lengthMask, Type(word>>28)
	sum := binary.LittleEndian.Uint32(h[4:8])
	if n == 0 || n > maxRecord || typ > TypeDerived {
		return frame{}, errCorrupt
	}
	buf := room(int(n))
	if _, err := io.ReadFull(r, buf); err != nil {
		return frame{}, err
	}
	crc := crc32.Update(frameCRC(typ, h[8:16]), castagnoli, buf)
	if crc != sum {
		return frame{}, errCorrupt
	}
	ts := time.Unix(0, int64(binary.LittleEndian.Uint64(h[8:16])))
	return frame{data: buf, at: ts, typ: typ, size: int64(n) + headerSize}, nil
}

// Append writes one record. With wait it returns after the record is synced
// to disk; without, it returns once the record is written and the next group
// sync will cover it. It returns ErrFull when the quota is reached or the disk
// is full, writing nothing.
func (s *Spool) Append(payload []byte, wait bool) error {
	if !wait {
		return s.AppendNotify(payload, nil)
	}
	ch := make(chan error, 1)
	if err := s.AppendNotify(payload, func(err error) { ch <- err }); err != nil {
		return err
	}
	return <-ch
}

// notify is a durable-append callback waiting for the sync covering end, or,
// when err is set, for its turn to learn that its record could not be written.
type notify struct {
	end  int64
	done func(error)
	err  error
}

// AppendNotify appends one record and, when done is not nil, calls done once
// the record is synced to disk (nil) or its write or sync failed (the error,
// wrapping ErrFull when the disk was full). Callbacks run on the spool's sync
// goroutine, in append order; they must not block. A refused append (ErrFull,
// ErrClosed) returns its error and never calls done.
//
// With done, the record is only buffered: the group commit writes it. Without,
// it is written (with whatever was buffered before it) before AppendNotify
// returns, and a failed write is AppendNotify's own error.
func (s *Spool) AppendNotify(payload []byte, done func(error)) error {
	return s.append(payload, done, false, TypeReading)
}

// AppendReserved appends a record derived from what is already in the spool
// (a violation, a case event): it may use the headroom beyond the quota (a
// fiftieth of it) and the disk headroom, so that consumers producing such
// records are never blocked by the backlog they are working through. The
// record is of TypeDerived: consumers of readings skip it.
func (s *Spool) AppendReserved(payload []byte) error {
	return s.append(payload, nil, true, TypeDerived)
}

// lowOnDiskLocked reports whether the spool's disk has less than
// MinFreeBytes free, looking at most every 200ms.
func (s *Spool) lowOnDiskLocked() bool {
	if s.opts.MinFreeBytes < 0 {
		return false
	}
	// Look again every 200ms, or sooner when a quarter of the headroom has
	// been written since.
	if now := time.Now(); now.Sub(s.diskAt) >= 200*time.Millisecond || s.end-s.diskEnd >= s.opts.MinFreeBytes/4 {
		s.diskAt, s.diskEnd = now, s.end
		var st syscall.Statfs_t
		if err := syscall.Statfs(s.dir, &st); err == nil {
			s.diskLow = int64(st.Bavail)*int64(st.Bsize) < s.opts.MinFreeBytes
		}
	}
	return s.diskLow
}

func (s *Spool) append(payload []byte, done func(error), reserved bool, typ Type) error {
	if len(payload) == 0 || len(payload) > maxRecord {
		return fmt.Errorf("spool: record of %d bytes (1..%d allowed)", len(payload), maxRecord)
	}
	word := uint32(len(payload)) | uint32(typ)<<28
	ts := uint64(time.Now().UnixNano())
	sum := crc32.Update(headerCRC(typ, ts), castagnoli, payload)
	size := int64(headerSize + len(payload))

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if reserved {
		if s.total+size > s.opts.MaxBytes+s.opts.MaxBytes/50 {
			s.mu.Unlock()
			return fmt.Errorf("%w: quota and its reserve", ErrFull)
		}
	} else if s.full && s.total <= s.opts.MaxBytes-s.opts.MaxBytes/10 && !s.lowOnDiskLocked() {
		s.full = false // room again (freed by consumers, or on the disk by others)
	}
	if !reserved && (s.full || s.total+size > s.opts.MaxBytes || s.lowOnDiskLocked()) {
		// Once full, stay full until a tenth of the quota is free again, so
		// that small messages do not squeeze in and starve large ones, and
		// publishers are pushed back in one clear episode, not a flutter.
		if !s.full {
			s.fullWhy = "quota reached"
			if s.diskLow {
				s.fullWhy = fmt.Sprintf("disk nearly full (less than %d bytes free)", s.opts.MinFreeBytes)
			}
		}
		s.full = true
		why := s.fullWhy
		s.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrFull, why)
	}
	if s.segs[len(s.segs)-1].size >= s.opts.SegmentBytes {
		if err := s.rollLocked(); err != nil {
			s.mu.Unlock()
			s.kickSync() // buffered records the roll could not write learn it
			return err
		}
	}
	s.buf = binary.LittleEndian.AppendUint32(s.buf, word)
	s.buf = binary.LittleEndian.AppendUint32(s.buf, sum)
	s.buf = binary.LittleEndian.AppendUint64(s.buf, ts)
	s.buf = append(s.buf, payload...)
	s.bufRecords++
	s.segs[len(s.segs)-1].size += size
	s.segs[len(s.segs)-1].records++
	s.total += size
	s.end += size
	var err error
	if done != nil {
		s.waiting++
		s.pending = append(s.pending, notify{end: s.end, done: done})
		s.bufNotify++
		if len(s.buf) >= flushBytes {
			_ = s.flushLocked(false) // a failure reaches the records through their callbacks
		}
	} else {
		err = s.flushLocked(reserved)
	}
	s.mu.Unlock()
	s.kickSync()
	return err
}

func (s *Spool) kickSync() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// flushLocked writes the buffered records to the active segment in one write.
// If the write fails, none of them stays: a partial write is cut off, end,
// total and the segment's size and records go back to what the file holds,
// and the callbacks among them are marked with the error, for syncOnce to
// call in order. The error wraps ErrFull when the disk is full, which makes
// the spool full unless the only record written was ownReserved's.
func (s *Spool) flushLocked(ownReserved bool) error {
	if len(s.buf) == 0 {
		return nil
	}
	seg := &s.segs[len(s.segs)-1]
	size := int64(len(s.buf))
	err := s.cutLocked()
	n := 0
	if err == nil {
		s.writes++
		n, err = s.active.Write(s.buf)
	}
	if err == nil {
		s.resetBufLocked()
		return nil
	}
	if n > 0 {
		// Take back a partial write so that the log stays well formed; if
		// that fails too, the next write tries again first.
		if terr := s.active.Truncate(seg.size - size); terr != nil {
			s.torn = true
		}
	}
	seg.size -= size
	seg.records -= s.bufRecords
	s.total -= size
	s.end -= size
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		if !ownReserved || s.bufRecords > 1 {
			s.full, s.fullWhy = true, "disk full"
		}
		err = fmt.Errorf("%w: disk full: %v", ErrFull, err)
	} else {
		err = fmt.Errorf("spool: append: %w", err)
	}
	for i := len(s.pending) - s.bufNotify; i < len(s.pending); i++ {
		s.pending[i].err = err
	}
	s.resetBufLocked()
	return err
}

// cutLocked cuts what a failed write left past the active segment's size,
// when taking it back failed at the time.
func (s *Spool) cutLocked() error {
	if !s.torn {
		return nil
	}
	if err := s.active.Truncate(s.segs[len(s.segs)-1].size - int64(len(s.buf))); err != nil {
		return err
	}
	s.torn = false
	return nil
}

// resetBufLocked empties the buffer, keeping its memory unless large records
// made it grow beyond keepBytes.
func (s *Spool) resetBufLocked() {
	if cap(s.buf) > keepBytes {
		s.buf = nil
	} else {
		s.buf = s.buf[:0]
	}
	s.bufRecords, s.bufNotify = 0, 0
}

// rollLocked writes the buffered records to the active segment, syncs and
// closes it, and starts a new one.
func (s *Spool) rollLocked() error {
	if err := s.flushLocked(false); err != nil {
		return err
	}
	if err := s.cutLocked(); err != nil {
		// A segment is never closed with a torn tail behind it.
		return fmt.Errorf("spool: roll: %w", err)
	}
	if err := s.active.Sync(); err != nil {
		return fmt.Errorf("spool: sync: %w", err)
	}
	base := s.end
	path := filepath.Join(s.dir, segName(base))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_EXCL, 0o640)
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			return ErrFull
		}
		return fmt.Errorf("spool: new segment: %w", err)
	}
	syncDir(s.dir)
	s.active.Close()
	s.active = f
	s.segs = append(s.segs, segment{base: base, path: path})
	return nil
}

// syncLoop performs group commits: it waits for a kick, lets more appends
// join for up to SyncDelay (or until SyncRecords are waiting), then syncs once
// for all of them.
func (s *Spool) syncLoop() {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-s.done:
			s.syncOnce()
			return
		case <-s.kick:
		}
		timer.Reset(s.opts.SyncDelay)
	gather:
		for {
			s.mu.Lock()
			enough := s.waiting >= s.opts.SyncRecords
			s.mu.Unlock()
			if enough {
				break
			}
			select {
			case <-timer.C:
				break gather
			case <-s.kick:
			case <-s.done:
				break gather
			}
		}
		timer.Stop()
		s.syncOnce()
	}
}

func (s *Spool) syncOnce() {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	if s.synced == s.end && s.waiting == 0 {
		s.mu.Unlock()
		return
	}
	// The buffered records are written in log order with rolls and other
	// appends, under mu; a failure reaches them through their callbacks.
	_ = s.flushLocked(false)
	f, end, n := s.active, s.end, s.waiting
	s.waiting = 0
	s.mu.Unlock()
	start := time.Now()
	err := f.Sync()
	if err != nil && errors.Is(err, os.ErrClosed) {
		// The segment was rolled (and synced) while we were not looking;
		// sync the new one, which holds the rest.
		s.mu.Lock()
		f = s.active
		s.mu.Unlock()
		err = f.Sync()
	}
	if s.opts.OnSync != nil {
		s.opts.OnSync(time.Since(start), n)
	}
	s.mu.Lock()
	if err != nil {
		s.errSync = fmt.Errorf("spool: sync: %w", err)
		err = s.errSync
	} else if end > s.synced {
		s.synced = end
		s.errSync = nil
	}
	// The appends this sync covered learn their fate, in order, and so do
	// those whose write failed (their turn comes once every record before
	// them has learnt its own).
	k := 0
	for k < len(s.pending) && (s.pending[k].end <= end || s.pending[k].err != nil) {
		k++
	}
	s.ready = append(s.ready[:0], s.pending[:k]...)
	rest := copy(s.pending, s.pending[k:])
	clear(s.pending[rest:])
	s.pending = s.pending[:rest]
	if rest == 0 && cap(s.pending) > keepNotify {
		s.pending = nil // let a burst's memory go
	}
	close(s.syncedCh)
	s.syncedCh = make(chan struct{})
	s.mu.Unlock()
	for _, n := range s.ready {
		if n.err != nil {
			n.done(n.err)
		} else {
			n.done(err)
		}
	}
	clear(s.ready)
	if cap(s.ready) > keepNotify {
		s.ready = nil
	}
}

// Stats is a snapshot of the spool's size.
type Stats struct {
	Records  int64
	Bytes    int64
	Segments int
	End      int64
	Synced   int64
	MaxBytes int64
}

// Stats returns the current size.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, sg := range s.segs {
		n += sg.records
	}
	return Stats{Records: n, Bytes: s.total, Segments: len(s.segs), End: s.end, Synced: s.synced, MaxBytes: s.opts.MaxBytes}
}

// Full reports whether the spool is refusing appends for its quota.
func (s *Spool) Full() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.full
}

// Close syncs what was written and closes the spool. Consumers must not be
// used afterwards. Close is safe to call more than once.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.done)
	s.wg.Wait()
	var cerrs []error
	for _, c := range s.consumers() {
		if err := c.persist(); err != nil {
			cerrs = append(cerrs, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// The final sync wrote the buffer; should it have failed, its records
	// were taken back and are among the pending.
	ferr := s.flushLocked(false)
	for _, n := range s.pending { // the final sync failed for these
		if n.err != nil {
			n.done(n.err)
		} else {
			n.done(ErrClosed)
		}
	}
	s.pending = nil
	err := s.active.Sync()
	if cerr := s.active.Close(); err == nil {
		err = cerr
	}
	return errors.Join(append(cerrs, ferr, err)...)
}

// consumers lists the consumers, for Close to persist their cursors.
func (s *Spool) consumers() []*Consumer {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Consumer, 0, len(s.consumer))
	for _, c := range s.consumer {
		out = append(out, c)
	}
	return out
}

// gc deletes segments that every consumer has passed. Called with mu held.
func (s *Spool) gcLocked() {
	if len(s.consumer) == 0 {
		return
	}
	min := int64(-1)
	for _, c := range s.consumer {
		if min < 0 || c.committed < min {
			min = c.committed
		}
	}
	for len(s.segs) > 1 && s.segs[0].end() <= min && s.segs[1].base <= min {
		if err := os.Remove(s.segs[0].path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return
		}
		s.total -= s.segs[0].size
		s.segs = s.segs[1:]
	}
	// Everything is consumed but the active segment still holds the bytes:
	// start a new one so that the old can go.
	if s.full && min >= s.end && s.segs[len(s.segs)-1].size > 0 && min >= s.synced {
		if err := s.rollLocked(); err == nil {
			s.gcLocked()
			return
		}
	}
	if s.full && s.total <= s.opts.MaxBytes-s.opts.MaxBytes/10 {
		s.diskAt = time.Time{} // look at the disk afresh
		if s.lowOnDiskLocked() {
			return
		}
		s.full = false
	}
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
