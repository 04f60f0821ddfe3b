package broker

import mqtt "github.com/mochi-mqtt/server/v2"

// Per-connection sizes for devices that mostly send: a reading is a few
// hundred bytes up, and what goes down is PUBACKs and the odd command. mochi's
// defaults suit a broker that fans messages out (8,192 pending writes per
// client, a 64 KiB channel allocated at connect), which costs an idle
// connection most of its memory.
const (
	// clientWritesPending is the length of a client's outbound queue
	// (commands and notifications to the device). A client whose queue is
	// full loses QoS 0 messages and gets QoS 1 ones later from its inflight
	// store.
	clientWritesPending = 64
	// receiveMaximum is the number of QoS 1 publishes an MQTT 5 client may
	// have unacknowledged; it is told so in CONNACK.
	receiveMaximum = 128
	// maximumInflight bounds the QoS 1 messages kept for a client that has
	// not acknowledged them (commands to a device).
	maximumInflight = 256
	// clientReadBuffer is the read buffer of a connection: it holds one
	// reading or more; larger packets are read through it.
	clientReadBuffer = 1024
	// clientWriteBuffer is the write buffer mochi allocates only while a
	// client has writes queued.
	clientWriteBuffer = 1024
)

// sizeForDevices sets the per-client capacities above.
func sizeForDevices(caps *mqtt.Capabilities) {
	caps.MaximumClientWritesPending = clientWritesPending
	caps.ReceiveMaximum = receiveMaximum
	caps.MaximumInflight = maximumInflight
}
