-- Accounts and unit credentials (PostgreSQL). Keep in step with ../sqlite/0003_accounts.sql.
-- Times are ms since the Unix epoch. The rules are in hub/src/auth/ (roles, scope,
-- password and credential formats); hub/src/store/accounts.rs reads and writes these rows.
--
-- account: a person. `username` is stored lower case and unique. `role` is one of the five
-- roles; `unit_id` is a moderator's scope root, an officer's or member's unit, optional
-- for an expert, NULL for an admin (checked by the store before writing). unit_id has no
-- foreign key to org_unit, like directive_inbox: an account outlives its unit's deletion
-- and then reaches nothing. `password_hash` is an argon2id PHC string, NULL when the
-- account has no password (it cannot log in with one).
CREATE TABLE account (
    id            TEXT PRIMARY KEY NOT NULL,
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    role          TEXT NOT NULL
                  CHECK (role IN ('admin', 'moderator', 'expert', 'officer', 'member')),
    unit_id       TEXT,
    password_hash TEXT,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL,
    last_login_at BIGINT
);
-- officers_of(unit) and listing by unit or role.
CREATE INDEX account_unit_role ON account (unit_id, role);
CREATE INDEX account_role ON account (role);

-- unit_credential: a meeting-room screen's long-lived credential. Only the SHA-256 of its
-- secret is kept (`secret_hash`, lower-case hex); the secret is shown once when issued.
-- A revoked credential keeps its row (revoked_at set) so listings show what existed.
-- `created_by` is the issuing account's id, or 'cli'.
CREATE TABLE unit_credential (
    id           TEXT PRIMARY KEY NOT NULL,
    unit_id      TEXT NOT NULL,
    label        TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    last_used_at BIGINT
);
CREATE INDEX unit_credential_unit ON unit_credential (unit_id, created_at);
