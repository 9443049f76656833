-- memvault SQLite schema, version 4: the statement keys of every version, indexed.
-- Supersession looks up earlier statements of an owner by key (provenance.truth_keys,
-- see memvault.temporal.supersede). Reading the keys out of the JSON of each of the
-- owner's rows cost time per stored memory on every write that states something; this
-- table holds one row per (key, version row), kept by triggers in the same transaction
-- as the versions table, like the FTS index. "key" has no declared type, so it compares
-- exactly as json_each's value did.
CREATE TABLE truth_keys (
    key,
    seq INTEGER NOT NULL
);
CREATE INDEX truth_keys_key ON truth_keys(key, seq);
CREATE INDEX truth_keys_seq ON truth_keys(seq);
INSERT INTO truth_keys(key, seq)
    SELECT j.value, v.seq FROM versions v,
        json_each(CASE WHEN json_valid(v.provenance) THEN v.provenance ELSE '{}' END,
                  '$.truth_keys') j;
CREATE TRIGGER versions_truth_ins AFTER INSERT ON versions BEGIN
    INSERT INTO truth_keys(key, seq)
        SELECT value, new.seq FROM json_each(
            CASE WHEN json_valid(new.provenance) THEN new.provenance ELSE '{}' END,
            '$.truth_keys');
END;
CREATE TRIGGER versions_truth_del AFTER DELETE ON versions BEGIN
    DELETE FROM truth_keys WHERE seq = old.seq;
END;
