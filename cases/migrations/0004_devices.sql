-- The device registry: the devices of the configuration (its seed) and those
-- added through the API or `sanigate device`, with their credentials, shared
-- by every gateway of a PostgreSQL store. attrs holds the device's
-- registration (kind, category, place...) as JSON. managed is 'config' for
-- a row the configuration file owns (kept in step with it at every start and
-- reload) and 'registry' for one added or changed through the API or the
-- command line (the file no longer touches it). During a rotation's grace
-- period previous_hash is accepted until previous_until. Times are Unix
-- milliseconds; 0 is unset.

CREATE TABLE devices (
	id             TEXT PRIMARY KEY,
	kind           TEXT NOT NULL,
	attrs          TEXT NOT NULL,
	password_hash  TEXT NOT NULL DEFAULT '',
	previous_hash  TEXT NOT NULL DEFAULT '',
	previous_until BIGINT NOT NULL DEFAULT 0,
	disabled       INTEGER NOT NULL DEFAULT 0,
	managed        TEXT NOT NULL,
	created_at     BIGINT NOT NULL,
	updated_at     BIGINT NOT NULL
);

-- One row: bumped in the same transaction as every change of devices, so a
-- gateway polls one number to learn that the registry changed.
CREATE TABLE devices_version (
	id      INTEGER PRIMARY KEY,
	version BIGINT NOT NULL
);
INSERT INTO devices_version (id, version) VALUES (1, 0);
