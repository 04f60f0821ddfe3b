package violations_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/telemetry"
	"github.com/sanigate/sanigate/telemetry/spool"
	"github.com/sanigate/sanigate/violations"
)

// BenchmarkRunSpool measures what the detectors spend per reading as the
// gateway feeds them: 200 bins each sending the load generator's reading
// every 20 ms (10,000 a second), one spool record per reading, read by the
// real Engine through its spool consumer, with the state log on.
//
//   - drain: the spool is filled before the timer starts and the engine
//     reads it in batches of 20 records (what a 2 ms group commit leaves at
//     that rate), as fast as it can: the engine's work alone.
//   - paced: readings are appended while the engine runs, 20 records and a
//     sync every 2 ms, stamped with the wall clock: the engine is woken
//     for every small batch, as in the gateway. Its time per reading is the
//     pace; cpu-ns/op (the process's CPU time, the appends included) is the
//     figure.
//   - appends: paced without an engine, the appends' own CPU time: the
//     engine's is paced less appends.
//
// Wall time (ns/op) includes waiting for the checkpoint that commits the
// last record (every 250 ms here, every 10 s in the gateway): compare
// cpu-ns/op and allocs/op.
//
// Run with: go test ./violations -run '^$' -bench RunSpool -benchmem -benchtime 100000x -count 5
// With TMPDIR on a tmpfs the syncs cost next to nothing, which leaves the
// engine a larger share of paced.
func BenchmarkRunSpool(b *testing.B) {
	b.Run("drain", func(b *testing.B) { runSpool(b, false, true) })
	b.Run("paced", func(b *testing.B) { runSpool(b, true, true) })
	b.Run("appends", func(b *testing.B) { runSpool(b, true, false) })
}

func runSpool(b *testing.B, paced, engine bool) {
	const bins, batch, every = 200, 20, 2 * time.Millisecond
	hash, err := fleet.HashPassword("pw", 4)
	if err != nil {
		b.Fatal(err)
	}
	var yaml strings.Builder
	yaml.WriteString("devices:\n")
	for i := range bins {
		fmt.Fprintf(&yaml, "  - {id: load-%04d, kind: bin, category: other, contractor: greenclean, district: south, password_hash: %q}\n",
			i+1, hash)
	}
	cfg, err := fleet.Parse("bench.yaml", []byte(yaml.String()), nil)
	if err != nil {
		b.Fatal(err)
	}
	dir, state := b.TempDir(), b.TempDir()
	sp, _, err := spool.Open(dir, spool.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer sp.Close()
	// Reading i is sent with its batch, i/batch pauses after start.
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	if paced {
		start = time.Now().Add(time.Second)
	}
	codec := telemetry.NewCodec()
	codec.Now = func() time.Time { return start.Add(time.Duration(b.N/batch) * every) }
	var payload []byte
	lines := make([][]byte, b.N)
	for i := range lines {
		dev := &cfg.Devices[i%bins]
		seq := i / bins
		payload = append(payload[:0], `{"ts":`...)
		payload = strconv.AppendInt(payload, start.Add(time.Duration(i/batch)*every).UnixMilli(), 10)
		payload = append(payload, `,"fill_pct":`...)
		payload = strconv.AppendInt(payload, int64(seq%101), 10)
		payload = append(payload, `,"weight_kg":12.5,"temp_c":18.5,"battery_pct":88}`...)
		rs, err := codec.Decode(dev.ID, dev.Kind, false, payload)
		if err != nil {
			b.Fatal(err)
		}
		r := &rs[0]
		r.District, r.Contractor, r.Category = dev.District, dev.Contractor, dev.Category
		lines[i] = telemetry.AppendLine(nil, r)
	}
	appendBatch := func(i int) {
		for j := i; j < min(i+batch, len(lines)); j++ {
			if err := sp.Append(lines[j], j == i+batch-1 || j == len(lines)-1); err != nil {
				b.Error(err)
				return
			}
		}
	}
	opts := violations.EngineOptions{StateDir: state, Checkpoint: 250 * time.Millisecond}
	if paced {
		opts.Now = time.Now
	} else {
		for i := 0; i < len(lines); i += batch {
			appendBatch(i)
		}
		now := codec.Now()
		opts.Now = func() time.Time { return now }
		opts.MaxRecords = batch
	}
	cons, err := sp.Consumer("detectors")
	if err != nil {
		b.Fatal(err)
	}
	e := violations.NewEngine(cfg, violations.DefaultConfig(), &collector{}, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	time.Sleep(time.Until(start))
	cpu0, sw0 := processCPU()
	b.ResetTimer()
	if engine {
		go func() { done <- e.Run(ctx, cons) }()
	} else {
		done <- nil
	}
	if paced {
		for i := 0; i < len(lines); i += batch {
			time.Sleep(time.Until(start.Add(time.Duration(i/batch) * every)))
			appendBatch(i)
		}
	}
	end := sp.Stats().Bytes
	for engine && cons.Committed() < end {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	// CPU time is steadier than wall time on a shared machine; the
	// threads' context switches count wakeups.
	cpu1, sw1 := processCPU()
	b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(sw1-sw0)/float64(b.N), "switches/op")
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// processCPU is the user and system CPU time the process has used, in
// nanoseconds, and the context switches of its threads.
func processCPU() (int64, int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano(), ru.Nvcsw + ru.Nivcsw
}
