-- Fencing tokens of the detectors that raise violations (cluster mode: one
-- row per stream partition, holding the greatest lease revision seen). A
-- raise under a smaller token is refused: its detector lost the partition.

CREATE TABLE case_fences (
	scope TEXT PRIMARY KEY,
	token BIGINT NOT NULL
);
