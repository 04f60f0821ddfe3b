// Package cluster connects gateways to the shared log of cluster mode, a
// replicated NATS JetStream stream: the forwarder sends each gateway's device
// readings from its local spool to the stream, one subject per device
// partition, so that every reading of a device, whichever gateway it reached,
// lands in the same partition in the order the stream accepted it.
package cluster

import (
	"hash/fnv"
	"strconv"
)

// Partition is the partition of device among n: a stable hash of the device
// id (32-bit FNV-1a) modulo n. It depends on nothing but the id and n, so
// every gateway and detector agrees on it; changing n moves devices between
// partitions, so n is fixed for the life of a stream.
func Partition(device string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(device))
	return int(h.Sum32() % uint32(n))
}

// Subject is the subject a partition's readings are published on:
// prefix.p, for example "sanigate.readings.7".
func Subject(prefix string, p int) string {
	return prefix + "." + strconv.Itoa(p)
}
