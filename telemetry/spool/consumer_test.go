package spool

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// TestRecordsDoNotShareRoom reads records of every size around the block a
// consumer carves data from, appends to each record's Data, and checks that
// no record's bytes changed: records read together share an array but
// never its room.
func TestRecordsDoNotShareRoom(t *testing.T) {
	s, _ := open(t, t.TempDir(), Options{})
	var want [][]byte
	for i := 0; i < 400; i++ {
		p := bytes.Repeat([]byte{byte('a' + i%26)}, 1+(i*97)%(dataBlock/3))
		want = append(want, p)
		if err := s.Append(p, i == 399); err != nil {
			t.Fatal(err)
		}
	}
	c, err := s.Consumer("c")
	if err != nil {
		t.Fatal(err)
	}
	var got []Record
	for len(got) < len(want) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		rs, err := c.Next(ctx, 50, 1<<20)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rs...)
	}
	for i := range got {
		got[i].Data = append(got[i].Data, "overwrite"...)
	}
	for i := range want {
		if d := got[i].Data[:len(got[i].Data)-len("overwrite")]; !bytes.Equal(d, want[i]) {
			t.Fatalf("record %d changed: %d bytes, want %d of %q", i, len(d), len(want[i]), want[i][0])
		}
	}
}
