package spool

import (
	"strconv"
	"sync"
	"testing"
)

// BenchmarkAppendNotify is the spool's side of a QoS 1 publish: a record
// appended with a callback, acknowledged by the group commit running in the
// background. Run with:
//
//	go test ./telemetry/spool -run '^$' -bench AppendNotify -benchmem
func BenchmarkAppendNotify(b *testing.B) {
	s, _, err := Open(b.TempDir(), Options{MinFreeBytes: -1, MaxBytes: 64 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	done := func(err error) {
		if err != nil {
			b.Error(err)
		}
		wg.Done()
	}
	payload := make([]byte, 0, 128)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		payload = append(payload[:0], "bin,device=b-0001,district=d1,contractor=acme fill_pct="...)
		payload = strconv.AppendInt(payload, int64(i%101), 10)
		payload = append(payload, "i,weight_kg=12.5,temp_c=18.5,battery_pct=88i 1700000000000000000\n"...)
		wg.Add(1)
		if err := s.AppendNotify(payload, done); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
}
