-- memvault PostgreSQL schema, version 3 (mirrors migrations/sqlite/0003_governance.sql):
-- governance state (principals, API keys, teams, grants) in the store itself, so that a
-- change and its audit row share a transaction (and every app host sees the same keys).
-- Rows are closed (revoked_at, valid_to), never deleted: the tables are a history.

CREATE TABLE principals (
    name        text PRIMARY KEY,   -- bound to one scope by its first key
    user_id     text NOT NULL,
    agent_id    text,
    admin       integer NOT NULL DEFAULT 0,  -- may read server-wide metrics
    created_at  double precision NOT NULL
);

CREATE TABLE api_keys (
    key_id      text PRIMARY KEY,
    principal   text NOT NULL,
    user_id     text NOT NULL,
    agent_id    text,
    name        text,
    secret_hash text NOT NULL,      -- SHA-256 of the token; the token is never stored
    created_at  double precision NOT NULL,
    revoked_at  double precision
);
CREATE INDEX api_keys_principal ON api_keys(principal);

CREATE TABLE grants (
    grant_id    text PRIMARY KEY,
    grantee     text NOT NULL,      -- a principal name, or team:<name>
    owner_user  text NOT NULL,      -- the memories it covers belong to this user ...
    owner_agent text,               -- ... (and this agent, if set)
    cube_id     text,               -- a whole cube of the owner's, or
    item_id     text,               -- one memory; neither: all of the owner's memory
    permission  text NOT NULL,      -- read | write
    redact      text NOT NULL,      -- JSON list of fields hidden from the grantee
    granted_by  text,
    created_at  double precision NOT NULL,
    valid_from  double precision NOT NULL,
    valid_to    double precision,               -- set by a revocation: grants are closed, never deleted
    revoked_by  text
);
CREATE INDEX grants_grantee ON grants(grantee, valid_to);
CREATE INDEX grants_owner ON grants(owner_user);

CREATE TABLE team_members (
    team        text NOT NULL,
    member      text NOT NULL,
    valid_from  double precision NOT NULL,
    valid_to    double precision,
    added_by    text,
    removed_by  text
);
CREATE INDEX team_members_member ON team_members(member, valid_to);
CREATE INDEX team_members_team ON team_members(team, valid_to);
