package spool

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sanigate/sanigate/internal/testenv"
)

// callbacks counts the calls of each buffered record's callback and keeps
// their outcomes, in the order the spool made them.
type callbacks struct {
	mu    sync.Mutex
	calls map[string]int
	errs  map[string]error
	order []string
}

func newCallbacks() *callbacks {
	return &callbacks{calls: map[string]int{}, errs: map[string]error{}}
}

func (cb *callbacks) done(key string) func(error) {
	return func(err error) {
		cb.mu.Lock()
		defer cb.mu.Unlock()
		cb.calls[key]++
		cb.errs[key] = err
		cb.order = append(cb.order, key)
	}
}

// check fails t unless every key was called back exactly once, with an error
// wrapping want (nil: with nil).
func (cb *callbacks) check(t *testing.T, keys []string, want error) {
	t.Helper()
	cb.mu.Lock()
	defer cb.mu.Unlock()
	for _, k := range keys {
		n, err := cb.calls[k], cb.errs[k]
		if n != 1 {
			t.Errorf("%s: called back %d times, want once", k, n)
			continue
		}
		if want == nil && err != nil || want != nil && !errors.Is(err, want) {
			t.Errorf("%s: called back with %v, want %v", k, err, want)
		}
	}
}

// writesOf is the number of writes s made to its segments.
func writesOf(s *Spool) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

// bookkeeping is what is left of s's pending callbacks and buffer.
func bookkeeping(s *Spool) (pending, waiting, buffered int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending), s.waiting, len(s.buf)
}

// segmentFilesSize adds up the sizes of dir's segment files.
func segmentFilesSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	for _, p := range segments(t, dir) {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		n += st.Size()
	}
	return n
}

// Many writers append with callbacks while segments roll: every record is
// acknowledged once, with nil, in each writer's order; a consumer reads each
// exactly once, in order, before and after reopening; and the buffered
// records cost far fewer writes than records.
func TestBufferedAppendsAcrossRolls(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 16 << 10, MinFreeBytes: -1}
	s, _ := open(t, dir, opts)
	const writers, each = 8, 1000
	const plainWriter = writers - 1 // appends without a callback, between the others
	cb := newCallbacks()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				key := fmt.Sprintf("w%d-%05d", w, i)
				payload := []byte(key + " bin,device=b1 fill_pct=42i,weight_kg=12.5")
				var err error
				if w == plainWriter {
					err = s.AppendNotify(payload, nil)
				} else {
					err = s.AppendNotify(payload, cb.done(key))
				}
				if err != nil {
					t.Errorf("append %s: %v", key, err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	var keys []string
	for w := 0; w < writers; w++ {
		for i := 0; w != plainWriter && i < each; i++ {
			keys = append(keys, fmt.Sprintf("w%d-%05d", w, i))
		}
	}
	testenv.Eventually(t, 10*time.Second, "every callback", func() bool {
		cb.mu.Lock()
		defer cb.mu.Unlock()
		return len(cb.order) >= len(keys)
	})
	cb.check(t, keys, nil)
	// Callbacks come in append order, so in each writer's order.
	last := map[byte]string{}
	for _, k := range cb.order {
		if prev := last[k[1]]; prev >= k {
			t.Fatalf("callback %s after %s", k, prev)
		}
		last[k[1]] = k
	}
	writes := writesOf(s)
	if max := int64(each + len(keys)/4); writes > max {
		t.Errorf("%d records (%d without a callback) took %d writes, want at most %d", writers*each, each, writes, max)
	}
	t.Logf("%d records, %d without a callback: %d writes", writers*each, each, writes)
	st := s.Stats()
	if st.Segments < 4 || st.Records != writers*each || st.End != st.Synced || st.Bytes != segmentFilesSize(t, dir) {
		t.Fatalf("stats %+v, %d bytes in the files", st, segmentFilesSize(t, dir))
	}

	read := func(s *Spool, name string) [][]byte {
		c, err := s.Consumer(name)
		if err != nil {
			t.Fatal(err)
		}
		got := drain(t, c, false)
		seen := map[string]bool{}
		last := map[byte]string{}
		for _, r := range got {
			k := string(r[:len("w0-00000")])
			if seen[k] {
				t.Fatalf("%s: read %s twice", name, k)
			}
			seen[k] = true
			if prev := last[k[1]]; prev >= k {
				t.Fatalf("%s: read %s after %s", name, k, prev)
			}
			last[k[1]] = k
		}
		if len(got) != writers*each {
			t.Fatalf("%s: read %d records, want %d", name, len(got), writers*each)
		}
		return got
	}
	before := read(s, "first")
	s.Close()
	s2, recov := open(t, dir, opts)
	if recov.TornTail != 0 || len(recov.Quarantined) != 0 || recov.Records != writers*each {
		t.Fatalf("reopen: %+v", recov)
	}
	after := read(s2, "second")
	for i := range before {
		if !bytes.Equal(before[i], after[i]) {
			t.Fatalf("record %d: %q before reopening, %q after", i, before[i], after[i])
		}
	}
}

// An append without a callback writes the records buffered before it and
// its own in one write, in append order, and returns at once; the buffered
// ones are acknowledged by the next sync.
func TestUnbufferedAppendWritesTheBufferFirst(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir, Options{SyncDelay: time.Hour, SyncRecords: 1 << 30, MinFreeBytes: -1})
	cb := newCallbacks()
	var keys []string
	for i := 0; i < 5; i++ {
		keys = append(keys, fmt.Sprintf("buffered-%d", i))
		if err := s.AppendNotify([]byte(keys[i]), cb.done(keys[i])); err != nil {
			t.Fatal(err)
		}
	}
	if n, size := writesOf(s), segmentFilesSize(t, dir); n != 0 || size != 0 {
		t.Fatalf("records with a callback were written before their sync: %d writes, %d bytes", n, size)
	}
	if st := s.Stats(); st.Records != 5 || st.Bytes != st.End || st.Synced != 0 {
		t.Fatalf("buffered records are not counted: %+v", st)
	}
	if err := s.Append([]byte("plain"), false); err != nil {
		t.Fatal(err)
	}
	if n, size, end := writesOf(s), segmentFilesSize(t, dir), s.Stats().End; n != 1 || size != end {
		t.Fatalf("after the append without a callback: %d writes, %d bytes in the file, end %d", n, size, end)
	}
	s.syncOnce()
	cb.check(t, keys, nil)
	c, _ := s.Consumer("c")
	got := drain(t, c, false)
	want := append(append([]string{}, keys...), "plain")
	if len(got) != len(want) {
		t.Fatalf("read %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if string(got[i]) != want[i] {
			t.Errorf("record %d: got %q, want %q", i, got[i], want[i])
		}
	}
	// Close writes what is still buffered and acknowledges it.
	if err := s.AppendNotify([]byte("at close"), cb.done("at close")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	cb.check(t, []string{"at close"}, nil)
	s2, _ := open(t, dir, Options{})
	c2, _ := s2.Consumer("c")
	if got := drain(t, c2, false); len(got) != len(want)+1 || string(got[len(got)-1]) != "at close" {
		t.Fatalf("after reopening: %d records, last %q", len(got), got[len(got)-1])
	}
}

// A write of buffered records that fails for a full disk (a real one: a
// small tmpfs) loses nothing silently, however the write came about: every
// buffered record's callback gets the error, no consumer ever reads them,
// the log on disk stays well formed, and appends work again once there is
// room.
func TestFailedBufferWrite(t *testing.T) {
	const disk = 128 << 10
	payload := func(key string) []byte {
		return append([]byte(key+" "), bytes.Repeat([]byte("x"), 1000)...)
	}
	for _, tc := range []string{"sync", "append without a callback", "roll", "full buffer"} {
		t.Run(strings.ReplaceAll(tc, " ", "_"), func(t *testing.T) {
			dir := testenv.SmallDisk(t, disk) + "/spool"
			opts := Options{SyncDelay: time.Hour, SyncRecords: 1 << 30, MinFreeBytes: -1}
			if tc == "roll" {
				opts.SegmentBytes = disk + disk/4 // rolls before the buffer's bound
			}
			s, _ := open(t, dir, opts)
			cb := newCallbacks()
			var good []string
			for i := 0; i < 20; i++ {
				good = append(good, fmt.Sprintf("good-%02d", i))
				if err := s.AppendNotify(payload(good[i]), cb.done(good[i])); err != nil {
					t.Fatal(err)
				}
			}
			s.syncOnce()
			cb.check(t, good, nil)
			before := s.Stats()

			// Buffer more than the disk holds, then have it written.
			var failed []string
			for i := 0; ; i++ {
				key := fmt.Sprintf("fail-%03d", i)
				writes := writesOf(s)
				err := s.AppendNotify(payload(key), cb.done(key))
				if tc == "roll" && err != nil {
					// The roll had to write the buffer first: the append
					// that asked for it is refused, its callback never called.
					if !errors.Is(err, ErrFull) {
						t.Fatalf("append at the roll: %v, want ErrFull", err)
					}
					if before.Bytes+int64(i*(headerSize+len(payload(key)))) < opts.SegmentBytes {
						t.Fatalf("append %d refused before the roll: %v", i, err)
					}
					break
				}
				if err != nil {
					t.Fatalf("append %s: %v", key, err)
				}
				failed = append(failed, key)
				if tc == "full buffer" && writesOf(s) > writes {
					break // the buffer reached its bound and was written
				}
				if (tc == "sync" || tc == "append without a callback") && (i+1)*len(payload(key)) > disk+disk/4 {
					break
				}
				if i > 1000 {
					t.Fatal("the buffer was never written")
				}
			}
			switch tc {
			case "sync":
				s.syncOnce()
			case "append without a callback":
				err := s.Append(payload("plain"), false)
				if !errors.Is(err, ErrFull) {
					t.Fatalf("append without a callback: %v, want ErrFull", err)
				}
			}
			s.syncOnce() // delivers the failures, if the write was not a sync's
			cb.check(t, failed, ErrFull)
			if n, _, buffered := bookkeeping(s); n != 0 || buffered != 0 {
				t.Errorf("after the failure: %d callbacks pending, %d bytes buffered", n, buffered)
			}
			if !s.Full() {
				t.Error("a full disk did not make the spool full")
			}
			after := s.Stats()
			if after != before || after.Bytes != segmentFilesSize(t, dir) {
				t.Fatalf("stats after the failure %+v, before %+v, %d bytes in the files", after, before, segmentFilesSize(t, dir))
			}

			// Room again (the failed write was taken back): appends work.
			var later []string
			for i := 0; i < 5; i++ {
				later = append(later, fmt.Sprintf("later-%d", i))
				if err := s.AppendNotify(payload(later[i]), cb.done(later[i])); err != nil {
					t.Fatalf("append after the failure: %v", err)
				}
			}
			s.syncOnce()
			cb.check(t, later, nil)
			cb.check(t, failed, ErrFull) // still called once, with the error
			if n, w, buffered := bookkeeping(s); n != 0 || w != 0 || buffered != 0 {
				t.Errorf("after a good sync: %d callbacks pending, %d waiting, %d bytes buffered", n, w, buffered)
			}
			want := append(append([]string{}, good...), later...)
			readAll := func(s *Spool) {
				t.Helper()
				c, err := s.Consumer("influxdb")
				if err != nil {
					t.Fatal(err)
				}
				got := drain(t, c, false)
				if len(got) != len(want) {
					t.Fatalf("read %d records, want %d", len(got), len(want))
				}
				for i, r := range got {
					if k, _, _ := bytes.Cut(r, []byte(" ")); string(k) != want[i] {
						t.Fatalf("record %d: got %s, want %s", i, k, want[i])
					}
				}
			}
			readAll(s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s2, recov := open(t, dir, opts)
			if recov.TornTail != 0 || len(recov.Quarantined) != 0 || recov.Records != int64(len(want)) {
				t.Fatalf("reopen: %+v", recov)
			}
			readAll(s2)
		})
	}
}
