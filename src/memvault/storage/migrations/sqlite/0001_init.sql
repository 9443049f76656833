-- memvault SQLite schema, version 1.
-- versions is append-only: a write inserts a row and closes the previous one (valid_to).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE vectors (
    content_hash TEXT PRIMARY KEY,
    dim          INTEGER NOT NULL,
    embedding    BLOB NOT NULL
);

CREATE TABLE versions (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL,
    version      INTEGER NOT NULL,
    text         TEXT NOT NULL,
    search_text  TEXT NOT NULL,  -- what the indexes see: text plus context (speaker, thread)
    kind         TEXT NOT NULL,
    user_id      TEXT,
    agent_id     TEXT,
    session_id   TEXT,
    cube_id      TEXT,
    metadata     TEXT NOT NULL DEFAULT '{}',
    provenance   TEXT NOT NULL DEFAULT '{}',
    tags         TEXT NOT NULL DEFAULT '[]',
    created_at   REAL NOT NULL,
    event_time   REAL,
    valid_from   REAL NOT NULL,
    valid_to     REAL,
    status       TEXT NOT NULL,
    importance   REAL NOT NULL DEFAULT 0.5,
    expires_at   REAL,
    content_hash TEXT NOT NULL REFERENCES vectors(content_hash),
    UNIQUE (id, version)
);
CREATE UNIQUE INDEX versions_open ON versions(id) WHERE valid_to IS NULL;
CREATE INDEX versions_current_user ON versions(user_id, created_at) WHERE valid_to IS NULL;
CREATE INDEX versions_current_created ON versions(created_at) WHERE valid_to IS NULL;
CREATE INDEX versions_time ON versions(valid_from, valid_to);
CREATE INDEX versions_hash ON versions(content_hash);

-- Lexical index over every version (as_of needs old text too); porter = stemming.
CREATE VIRTUAL TABLE versions_fts USING fts5(
    search_text, tags, content='versions', content_rowid='seq',
    tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER versions_fts_ins AFTER INSERT ON versions BEGIN
    INSERT INTO versions_fts(rowid, search_text, tags) VALUES (new.seq, new.search_text, new.tags);
END;
CREATE TRIGGER versions_fts_del AFTER DELETE ON versions BEGIN
    INSERT INTO versions_fts(versions_fts, rowid, search_text, tags)
        VALUES ('delete', old.seq, old.search_text, old.tags);
END;

CREATE TABLE access (
    id      TEXT PRIMARY KEY,
    count   INTEGER NOT NULL DEFAULT 0,
    last_at REAL
);

CREATE TABLE links (
    src        TEXT NOT NULL,
    dst        TEXT NOT NULL,
    kind       TEXT NOT NULL,
    weight     REAL NOT NULL DEFAULT 1.0,
    created_at REAL NOT NULL,
    PRIMARY KEY (src, dst, kind)
);
CREATE INDEX links_dst ON links(dst);

CREATE TABLE audit (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    at      REAL NOT NULL,
    actor   TEXT,
    action  TEXT NOT NULL,
    item_id TEXT,
    version INTEGER,
    details TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_item ON audit(item_id);
