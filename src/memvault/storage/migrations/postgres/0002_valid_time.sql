-- memvault PostgreSQL schema, version 2: valid time beside transaction time (see the
-- SQLite script of the same number for the meaning of the columns).
ALTER TABLE versions ADD COLUMN valid_at double precision;
ALTER TABLE versions ADD COLUMN invalid_at double precision;
UPDATE versions SET valid_at = CASE WHEN version = 1 THEN coalesce(event_time, valid_from)
                                    ELSE valid_from END;
CREATE INDEX versions_valid ON versions(id, valid_at);
