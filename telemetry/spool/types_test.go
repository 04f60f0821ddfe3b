package spool

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRecordTypes appends readings and derived records and reads each back
// with its type, also from a segment written before records were typed.
func TestRecordTypes(t *testing.T) {
	dir := t.TempDir()
	// A legacy frame: length without a type, CRC over time and payload.
	legacy := []byte("bin,device=b fill_pct=1 1")
	frame := make([]byte, headerSize+len(legacy))
	binary.LittleEndian.PutUint32(frame[0:4], uint32(len(legacy)))
	binary.LittleEndian.PutUint64(frame[8:16], uint64(time.Now().UnixNano()))
	copy(frame[headerSize:], legacy)
	binary.LittleEndian.PutUint32(frame[4:8], crc32.Checksum(frame[8:], castagnoli))
	if err := os.WriteFile(filepath.Join(dir, segName(0)), frame, 0o640); err != nil {
		t.Fatal(err)
	}
	s, rec, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if rec.Records != 1 || rec.TornTail != 0 {
		t.Fatalf("legacy segment: %+v", rec)
	}
	if err := s.Append([]byte("reading"), true); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendReserved([]byte("derived")); err != nil {
		t.Fatal(err)
	}
	if err := s.Append([]byte("reading again"), true); err != nil {
		t.Fatal(err)
	}
	c, err := s.Consumer("t")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := c.Next(context.Background(), 10, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		data string
		typ  Type
	}{{string(legacy), TypeReading}, {"reading", TypeReading}, {"derived", TypeDerived}, {"reading again", TypeReading}}
	if len(recs) != len(want) {
		t.Fatalf("got %d records, want %d", len(recs), len(want))
	}
	for i, w := range want {
		if string(recs[i].Data) != w.data || recs[i].Type != w.typ {
			t.Errorf("record %d: got %q type %d, want %q type %d", i, recs[i].Data, recs[i].Type, w.data, w.typ)
		}
	}
}

// TestIdentity: a spool keeps its identity across reopening; a new folder
// gets a new one.
func TestIdentity(t *testing.T) {
	dir := t.TempDir()
	s, _, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	id := s.ID()
	s.Close()
	s, _, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.ID() != id || len(id) != 32 {
		t.Errorf("reopened: id %q, want %q", s.ID(), id)
	}
	s.Close()
	os.RemoveAll(dir)
	s, _, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.ID() == id {
		t.Errorf("a new spool folder kept the old identity %q", id)
	}
}
