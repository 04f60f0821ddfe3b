package telemetry_test

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/telemetry"
	"github.com/sanigate/sanigate/telemetry/spool"
)

// BenchmarkHandlePublish is the publish path behind the broker: decode and
// check a bin reading, enrich it, encode its line and append it to a real
// spool, acknowledged once durable. Run with:
//
//	go test ./telemetry -run '^$' -bench HandlePublish -benchmem
func BenchmarkHandlePublish(b *testing.B) {
	sp, _, err := spool.Open(b.TempDir(), spool.Options{MinFreeBytes: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer sp.Close()
	reg := fleet.NewRegistry([]fleet.Device{{ID: "bin-0001", Kind: "bin", Category: "other", Contractor: "acme", District: "d1"}})
	p := telemetry.NewPipeline(telemetry.PipelineOptions{Fleet: reg, Sink: sp})
	base := time.Now().Add(-time.Hour).UnixMilli()
	payload := make([]byte, 0, 256)
	var wg sync.WaitGroup
	done := func(err error) {
		if err != nil {
			b.Error(err)
		}
		wg.Done()
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		payload = append(payload[:0], `{"ts":`...)
		payload = strconv.AppendInt(payload, base+int64(i), 10)
		payload = append(payload, `,"fill_pct":`...)
		payload = strconv.AppendInt(payload, int64(i%101), 10)
		payload = append(payload, `,"weight_kg":12.5,"temp_c":18.5,"battery_pct":88}`...)
		wg.Add(1)
		if err := p.HandlePublish("bin-0001", "telemetry", payload, done); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
}
