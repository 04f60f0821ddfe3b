-- The case store, one schema for SQLite and PostgreSQL. Times are Unix
-- milliseconds (0 = not yet), booleans are 0/1 integers, so that both
-- databases read them alike. {{ID}} becomes each database's auto-increment key.

CREATE TABLE cases (
	id               {{ID}},
	case_key         TEXT NOT NULL,
	is_open          INTEGER NOT NULL DEFAULT 1,
	type             TEXT NOT NULL,
	severity         TEXT NOT NULL,
	state            TEXT NOT NULL,
	device           TEXT NOT NULL DEFAULT '',
	kind             TEXT NOT NULL DEFAULT '',
	place            TEXT NOT NULL DEFAULT '',
	district         TEXT NOT NULL DEFAULT '',
	contractor       TEXT NOT NULL DEFAULT '',
	category         TEXT NOT NULL DEFAULT '',
	site             TEXT NOT NULL DEFAULT '',
	route            TEXT NOT NULL DEFAULT '',
	lat              DOUBLE PRECISION NOT NULL DEFAULT 0,
	lon              DOUBLE PRECISION NOT NULL DEFAULT 0,
	has_pos          INTEGER NOT NULL DEFAULT 0,
	geometry         TEXT NOT NULL DEFAULT '',
	summary          TEXT NOT NULL DEFAULT '',
	unit             TEXT NOT NULL DEFAULT '',
	hits             INTEGER NOT NULL DEFAULT 1,
	first_seen       BIGINT NOT NULL DEFAULT 0,
	last_seen        BIGINT NOT NULL DEFAULT 0,
	filed_at         BIGINT NOT NULL DEFAULT 0,
	dispatched_at    BIGINT NOT NULL DEFAULT 0,
	accepted_at      BIGINT NOT NULL DEFAULT 0,
	handled_at       BIGINT NOT NULL DEFAULT 0,
	closed_at        BIGINT NOT NULL DEFAULT 0,
	accept_due       BIGINT NOT NULL DEFAULT 0,
	close_due        BIGINT NOT NULL DEFAULT 0,
	accept_missed    INTEGER NOT NULL DEFAULT 0,
	close_missed     INTEGER NOT NULL DEFAULT 0,
	overdue          INTEGER NOT NULL DEFAULT 0,
	rework_count     INTEGER NOT NULL DEFAULT 0,
	extended         INTEGER NOT NULL DEFAULT 0,
	recurrence       INTEGER NOT NULL DEFAULT 0,
	verified_by_data INTEGER NOT NULL DEFAULT 0,
	updated_at       BIGINT NOT NULL DEFAULT 0
);

-- One open case per key: concurrent gateways raising the same violation meet
-- here, and the loser merges into the winner's case.
CREATE UNIQUE INDEX cases_open_key ON cases (case_key) WHERE is_open = 1;
CREATE INDEX cases_key ON cases (case_key, id);
CREATE INDEX cases_type ON cases (type, id);
CREATE INDEX cases_state ON cases (state, id);
CREATE INDEX cases_district ON cases (district, id);
CREATE INDEX cases_unit ON cases (unit, id);
CREATE INDEX cases_filed ON cases (filed_at);
CREATE INDEX cases_close_due ON cases (close_due);
CREATE INDEX cases_closed ON cases (closed_at);

CREATE TABLE case_history (
	id         {{ID}},
	case_id    BIGINT NOT NULL REFERENCES cases (id),
	at         BIGINT NOT NULL,
	actor      TEXT NOT NULL,
	action     TEXT NOT NULL,
	from_state TEXT NOT NULL,
	to_state   TEXT NOT NULL,
	unit       TEXT NOT NULL DEFAULT '',
	note       TEXT NOT NULL DEFAULT '',
	evidence   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX case_history_case ON case_history (case_id, id);

CREATE TABLE case_evidence (
	id            {{ID}},
	case_id       BIGINT NOT NULL REFERENCES cases (id),
	at            BIGINT NOT NULL,
	violation_key TEXT NOT NULL DEFAULT '',
	body          TEXT NOT NULL
);
CREATE INDEX case_evidence_case ON case_evidence (case_id, id);

-- Violation keys seen per case, so that a replayed violation is not counted
-- as a repeat.
CREATE TABLE case_occurrences (
	case_id       BIGINT NOT NULL REFERENCES cases (id),
	violation_key TEXT NOT NULL,
	PRIMARY KEY (case_id, violation_key)
);

CREATE TABLE outbox (
	id           {{ID}},
	case_id      BIGINT NOT NULL,
	unit         TEXT NOT NULL,
	channel      TEXT NOT NULL,
	target       TEXT NOT NULL,
	event        TEXT NOT NULL,
	payload      TEXT NOT NULL,
	created_at   BIGINT NOT NULL,
	next_attempt BIGINT NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	delivered_at BIGINT NOT NULL DEFAULT 0,
	last_error   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX outbox_pending ON outbox (next_attempt) WHERE delivered_at = 0;
CREATE INDEX outbox_case ON outbox (case_id);

CREATE TABLE outbox_attempts (
	id          {{ID}},
	outbox_id   BIGINT NOT NULL REFERENCES outbox (id),
	at          BIGINT NOT NULL,
	ok          INTEGER NOT NULL,
	status      INTEGER NOT NULL DEFAULT 0,
	error       TEXT NOT NULL DEFAULT '',
	duration_ms BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX outbox_attempts_outbox ON outbox_attempts (outbox_id, id);
