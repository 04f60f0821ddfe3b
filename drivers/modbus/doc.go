// Package modbus polls field equipment that speaks Modbus (toilet controllers,
// weighbridges, solar compactor bins) and turns each poll into a
// telemetry.Reading, so that the same detectors and dashboards serve Modbus
// and MQTT devices.
//
// A device is described by a register map in the vocabulary of Telegraf's
// Modbus input and the ThingsBoard gateway: function (coil, discrete, holding,
// input), address, data type, byte and word order, scale and offset. Maps are
// written inline in the configuration or taken from a shipped profile (see
// profiles/README.md). Three transports are served: Modbus TCP, RTU over a
// serial line and RTU framing over TCP (serial servers, 4G DTUs).
//
// The Poller reads each device on its own goroutine, merging neighbouring
// registers into as few requests as the protocol allows. On a timeout, a
// transaction id mismatch or an I/O error it closes the connection and redials
// with exponential backoff, because the client library keeps using a
// connection that a late reply has put one transaction behind (goburrow/modbus
// issues 64 and 103) and never redials after a failed write (goburrow/modbus
// pull request 99). Update changes the set of polled devices while the Poller
// runs, for a configuration reload: devices whose settings did not change
// poll on undisturbed.
package modbus
