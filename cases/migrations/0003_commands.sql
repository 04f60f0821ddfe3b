-- Commands sent to devices over MQTT and their states: queued (stored and
-- handed to the broker), delivered (the device's session acknowledged the
-- QoS 1 publish), acknowledged or failed (the device's answer), expired
-- (no answer before the deadline). Times are Unix milliseconds; 0 is unset.

CREATE TABLE device_commands (
	id           {{ID}},
	device       TEXT NOT NULL,
	type         TEXT NOT NULL,
	params       TEXT NOT NULL,
	state        TEXT NOT NULL,
	detail       TEXT NOT NULL DEFAULT '',
	requested_by TEXT NOT NULL,
	created_at   BIGINT NOT NULL,
	deadline     BIGINT NOT NULL,
	delivered_at BIGINT NOT NULL DEFAULT 0,
	finished_at  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX device_commands_device ON device_commands (device, id);
CREATE INDEX device_commands_open ON device_commands (state, deadline);
