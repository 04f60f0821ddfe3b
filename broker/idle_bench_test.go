package broker

import (
	"net"
	"runtime"
	"testing"

	"github.com/sanigate/sanigate/fleet"
)

// BenchmarkIdleConnections opens b.N device connections (generated secrets,
// bare clients without goroutines) and reports what each costs the broker
// once idle: goroutines, stack and heap after a garbage collection. Run with:
//
//	go test ./broker -run '^$' -bench IdleConnections -benchtime 2000x
func BenchmarkIdleConnections(b *testing.B) {
	n := b.N
	devs, secrets := binsWithSecrets(n)
	br, _ := startBroker(b, fleet.NewRegistry(devs), LoginLimits{})
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	g0 := runtime.NumGoroutine()
	conns := make([]net.Conn, 0, n)
	b.ResetTimer()
	for i := range n {
		c, err := rawConnect(br.Addr(), devs[i].ID, secrets[i])
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	b.ReportMetric(float64(runtime.NumGoroutine()-g0)/float64(n), "goroutines/conn")
	b.ReportMetric(float64(m1.StackInuse-m0.StackInuse)/float64(n)/1024, "stack-KiB/conn")
	b.ReportMetric(float64(int64(m1.HeapInuse)-int64(m0.HeapInuse))/float64(n)/1024, "heap-KiB/conn")
	for _, c := range conns {
		c.Close()
	}
}
