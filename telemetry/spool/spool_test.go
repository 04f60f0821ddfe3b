package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func open(t *testing.T, dir string, o Options) (*Spool, Recovery) {
	t.Helper()
	s, rec, err := Open(dir, o)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, rec
}

func rec(i int) []byte { return []byte(fmt.Sprintf("bin,device=b%d fill_pct=%d %d\n", i%7, i, i)) }

// drain reads everything synced from c (committing as it goes) until idle.
func drain(t *testing.T, c *Consumer, commit bool) [][]byte {
	t.Helper()
	var out [][]byte
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		rs, err := c.Next(ctx, 100, 1<<20)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			out = append(out, r.Data)
		}
		if commit && len(rs) > 0 {
			if err := c.Commit(rs[len(rs)-1].End); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestAppendConsumeResume(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir, Options{SegmentBytes: 64 << 10})
	for i := 0; i < 3000; i++ {
		if err := s.Append(rec(i), i%2 == 0); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := s.Consumer("influxdb")
	got := drain(t, c, false)
	if len(got) != 3000 {
		t.Fatalf("read %d records, want 3000", len(got))
	}
	// Commit half way, reopen, and the consumer resumes there.
	ctx := context.Background()
	c.Rewind()
	rs, _ := c.Next(ctx, 1000, 1<<30)
	if err := c.Commit(rs[len(rs)-1].End); err != nil {
		t.Fatal(err)
	}
	if s.Stats().Segments < 3 {
		t.Fatalf("want several segments, got %d", s.Stats().Segments)
	}
	s.Close()
	s2, rec2 := open(t, dir, Options{SegmentBytes: 64 << 10})
	if rec2.TornTail != 0 || len(rec2.Quarantined) != 0 {
		t.Errorf("clean reopen reported repairs: %+v", rec2)
	}
	c2, _ := s2.Consumer("influxdb")
	rest := drain(t, c2, true)
	if len(rest) != 2000 || !bytes.Equal(rest[0], rec(1000)) || !bytes.Equal(rest[1999], rec(2999)) {
		t.Fatalf("after reopen: got %d records, first %q", len(rest), rest[0])
	}
	// Every consumer passed the old segments: only the active one is left.
	if n := s2.Stats().Segments; n != 1 {
		t.Errorf("segments after everything was committed: got %d, want 1", n)
	}
}

// Concurrent waiting appends share fsyncs.
func TestGroupCommit(t *testing.T) {
	var syncs atomic.Int64
	s, _ := open(t, t.TempDir(), Options{SyncDelay: 5 * time.Millisecond, SyncRecords: 64,
		OnSync: func(time.Duration, int) { syncs.Add(1) }})
	const writers, each = 32, 50
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := s.Append(rec(w*each+i), true); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	n := syncs.Load()
	if n == 0 || n > writers*each/4 {
		t.Errorf("fsyncs for %d waiting appends: got %d, want far fewer than one each", writers*each, n)
	}
	t.Logf("%d appends, %d fsyncs", writers*each, n)
}

// Appends return only when synced; consumers never see unsynced records.
func TestConsumersSeeOnlySynced(t *testing.T) {
	s, _ := open(t, t.TempDir(), Options{SyncDelay: time.Hour, SyncRecords: 1 << 30})
	if err := s.Append(rec(1), false); err != nil {
		t.Fatal(err)
	}
	c, _ := s.Consumer("x")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	rs, err := c.Next(ctx, 10, 1<<20)
	cancel()
	if len(rs) != 0 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read %d unsynced records (err %v)", len(rs), err)
	}
	s.syncOnce()
	rs, err = c.Next(context.Background(), 10, 1<<20)
	if err != nil || len(rs) != 1 {
		t.Fatalf("after sync: %d records, %v", len(rs), err)
	}
}

func TestQuotaAndRecovery(t *testing.T) {
	s, _ := open(t, t.TempDir(), Options{MaxBytes: 256 << 10, SegmentBytes: 64 << 10})
	c, _ := s.Consumer("influxdb")
	payload := bytes.Repeat([]byte("x"), 1000)
	n := 0
	for ; n < 10000; n++ {
		err := s.Append(payload, false)
		if errors.Is(err, ErrFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if n == 10000 || n < 200 {
		t.Fatalf("quota reached after %d records", n)
	}
	if err := s.Append(payload, true); !errors.Is(err, ErrFull) {
		t.Fatalf("append to a full spool: got %v, want ErrFull", err)
	}
	// A second consumer holds the space until it passes too.
	c2, _ := s.Consumer("detectors")
	if got := len(drain(t, c, true)); got != n {
		t.Fatalf("drained %d, want %d", got, n)
	}
	if err := s.Append(payload, false); !errors.Is(err, ErrFull) {
		t.Fatalf("space freed while a consumer still needs it: %v", err)
	}
	drain(t, c2, true)
	if err := s.Append(payload, true); err != nil {
		t.Fatalf("after both consumers passed: %v", err)
	}
}

func segments(t *testing.T, dir string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	sort.Strings(m)
	return m
}

// A torn last record (power loss mid-write) is cut off and reported.
func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir, Options{})
	for i := 0; i < 100; i++ {
		s.Append(rec(i), true)
	}
	s.Close()
	segs := segments(t, dir)
	last := segs[len(segs)-1]
	f, _ := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte{200, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7}) // a header promising 200 bytes, and a few
	f.Close()

	s2, recov := open(t, dir, Options{})
	if recov.TornTail != 11 {
		t.Errorf("torn tail: got %d bytes, want 11", recov.TornTail)
	}
	c, _ := s2.Consumer("w")
	if got := drain(t, c, false); len(got) != 100 {
		t.Fatalf("kept %d records, want 100", len(got))
	}
	// And it appends cleanly after the cut.
	if err := s2.Append(rec(100), true); err != nil {
		t.Fatal(err)
	}
	if got := drain(t, c, false); len(got) != 1 || !bytes.Equal(got[0], rec(100)) {
		t.Fatalf("after the cut: %q", got)
	}
}

// A corrupt segment in the middle is copied to quarantine and cut back to its
// last good record; everything else is kept and the spool opens.
func TestCorruptSegmentQuarantined(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir, Options{SegmentBytes: 64 << 10})
	total := 0
	for len(segments(t, dir)) < 4 {
		s.Append(rec(total), false)
		total++
	}
	s.Close()
	segs := segments(t, dir)
	bad := segs[1]
	data, _ := os.ReadFile(bad)
	data[len(data)/2] ^= 0xff
	os.WriteFile(bad, data, 0o640)

	s2, recov := open(t, dir, Options{SegmentBytes: 64 << 10})
	if len(recov.Quarantined) != 1 || recov.LostBytes == 0 {
		t.Fatalf("recovery: %+v", recov)
	}
	if _, err := os.Stat(recov.Quarantined[0]); err != nil {
		t.Errorf("quarantined copy: %v", err)
	}
	c, _ := s2.Consumer("w")
	got := drain(t, c, false)
	if len(got) >= total || len(got) < total/2 {
		t.Fatalf("kept %d of %d records", len(got), total)
	}
	// The records of the other segments are all there, in order.
	if !bytes.Equal(got[0], rec(0)) || !bytes.Equal(got[len(got)-1], rec(total-1)) {
		t.Errorf("first %q last %q", got[0], got[len(got)-1])
	}
	if c.Skipped() == 0 {
		t.Error("the consumer did not report the lost range")
	}
}

// Derived records (violations, case events) may use the reserve beyond the
// quota, so the consumers producing them are never blocked by the backlog.
func TestReservedAppendsPassAFullQuota(t *testing.T) {
	s, _ := open(t, t.TempDir(), Options{MaxBytes: 1 << 20, SegmentBytes: 64 << 10})
	payload := bytes.Repeat([]byte("r"), 900)
	for s.AppendNotify(payload, nil) == nil {
	}
	if !s.Full() {
		t.Fatal("not full")
	}
	if err := s.AppendReserved([]byte("violation,type=bin_overflow count=1i 1\n")); err != nil {
		t.Fatalf("reserved append to a full spool: %v", err)
	}
	n := 0
	for ; n < 1000 && s.AppendReserved(payload) == nil; n++ {
	}
	if n == 1000 {
		t.Fatal("the reserve has no end")
	}
}
