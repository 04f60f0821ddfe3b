-- People who use the console, and their sessions. Passwords are argon2id
-- hashes in PHC form; a session is stored by the SHA-256 of its cookie, so
-- that a copy of the database opens no session.

CREATE TABLE users (
	id            {{ID}},
	name          TEXT NOT NULL,
	password_hash TEXT NOT NULL,
	role          TEXT NOT NULL,
	district      TEXT NOT NULL DEFAULT '',
	unit          TEXT NOT NULL DEFAULT '',
	lang          TEXT NOT NULL DEFAULT 'zh',
	is_admin      INTEGER NOT NULL DEFAULT 0,
	disabled      INTEGER NOT NULL DEFAULT 0,
	created_at    BIGINT NOT NULL,
	updated_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_name ON users (name);

CREATE TABLE sessions (
	id         TEXT PRIMARY KEY,
	user_id    BIGINT NOT NULL REFERENCES users (id),
	csrf       TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- The console's queue sorts by deadline and filters by contractor and
-- severity, with the id as the tie-breaker of its keyset paging; it counts
-- cases per state within a district's or a unit's scope from the index alone.
CREATE INDEX cases_due_id ON cases (close_due, id);
CREATE INDEX cases_unit_state ON cases (unit, state);
CREATE INDEX cases_district_state ON cases (district, state);
CREATE INDEX cases_unit_due ON cases (unit, close_due, id);
CREATE INDEX cases_district_due ON cases (district, close_due, id);
CREATE INDEX cases_contractor ON cases (contractor, id);
CREATE INDEX cases_severity ON cases (severity, id);
