-- memvault SQLite schema, version 2: valid time beside transaction time.
-- valid_from/valid_to stay what they were: when a version row was the memory's current
-- record (transaction time). valid_at/invalid_at say when what the version states held
-- in the world (valid time): the message timestamp, an explicit event_time or a date the
-- text states; invalid_at is set when a later statement supersedes it (never a delete).
ALTER TABLE versions ADD COLUMN valid_at REAL;
ALTER TABLE versions ADD COLUMN invalid_at REAL;
-- Existing rows: a first version held from its event time (else from when it was
-- written); a later version from when it was written, as transaction time said before.
UPDATE versions SET valid_at = CASE WHEN version = 1 THEN coalesce(event_time, valid_from)
                                    ELSE valid_from END;
CREATE INDEX versions_valid ON versions(id, valid_at);
