-- memvault SQLite schema, version 3: governance state (principals, API keys, teams,
-- grants) in the store itself, so that a change and its audit row share a transaction.
-- Rows are closed (revoked_at, valid_to), never deleted: the tables are a history.

CREATE TABLE principals (
    name        TEXT PRIMARY KEY,   -- bound to one scope by its first key
    user_id     TEXT NOT NULL,
    agent_id    TEXT,
    admin       INTEGER NOT NULL DEFAULT 0,  -- may read server-wide metrics
    created_at  REAL NOT NULL
);

CREATE TABLE api_keys (
    key_id      TEXT PRIMARY KEY,
    principal   TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    agent_id    TEXT,
    name        TEXT,
    secret_hash TEXT NOT NULL,      -- SHA-256 of the token; the token is never stored
    created_at  REAL NOT NULL,
    revoked_at  REAL
);
CREATE INDEX api_keys_principal ON api_keys(principal);

CREATE TABLE grants (
    grant_id    TEXT PRIMARY KEY,
    grantee     TEXT NOT NULL,      -- a principal name, or team:<name>
    owner_user  TEXT NOT NULL,      -- the memories it covers belong to this user ...
    owner_agent TEXT,               -- ... (and this agent, if set)
    cube_id     TEXT,               -- a whole cube of the owner's, or
    item_id     TEXT,               -- one memory; neither: all of the owner's memory
    permission  TEXT NOT NULL,      -- read | write
    redact      TEXT NOT NULL,      -- JSON list of fields hidden from the grantee
    granted_by  TEXT,
    created_at  REAL NOT NULL,
    valid_from  REAL NOT NULL,
    valid_to    REAL,               -- set by a revocation: grants are closed, never deleted
    revoked_by  TEXT
);
CREATE INDEX grants_grantee ON grants(grantee, valid_to);
CREATE INDEX grants_owner ON grants(owner_user);

CREATE TABLE team_members (
    team        TEXT NOT NULL,
    member      TEXT NOT NULL,
    valid_from  REAL NOT NULL,
    valid_to    REAL,
    added_by    TEXT,
    removed_by  TEXT
);
CREATE INDEX team_members_member ON team_members(member, valid_to);
CREATE INDEX team_members_team ON team_members(team, valid_to);
