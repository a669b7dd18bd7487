-- Corrections and retraction, per-unit inbox entries, acknowledgements per version,
-- feedback threads and the tamper-evident audit log (SQLite). Keep in step with
-- ../postgres/0004_directive_history_feedback_audit.sql. Times are ms since the Unix
-- epoch. Existing data from 0002 migrates: every directive becomes its version 1, every
-- inbox row a `sent` entry of version 1, every acknowledgement an acknowledgement of
-- version 1.

-- directive holds the current version (its `version` column counts 1, 2, …); a
-- retracted directive keeps its content and gets retracted_at/retracted_by.
ALTER TABLE directive ADD COLUMN retracted_at INTEGER;
ALTER TABLE directive ADD COLUMN retracted_by TEXT;

-- directive_version: every version's full content, the current one included, written in
-- the transaction that sends or corrects. changed_by/changed_at: who sent (version 1) or
-- corrected it and when; note: the corrector's explanation ('' for version 1).
CREATE TABLE directive_version (
    directive_id TEXT NOT NULL REFERENCES directive (id),
    version      INTEGER NOT NULL CHECK (version >= 1),
    title        TEXT NOT NULL,
    body         TEXT NOT NULL,
    priority     TEXT NOT NULL CHECK (priority IN ('routine', 'important', 'urgent')),
    ack_required BOOLEAN NOT NULL,
    deadline     INTEGER,
    changed_by   TEXT NOT NULL,
    changed_at   INTEGER NOT NULL,
    note         TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (directive_id, version)
);
INSERT INTO directive_version (directive_id, version, title, body, priority, ack_required,
                               deadline, changed_by, changed_at, note)
    SELECT id, version, title, body, priority, ack_required, deadline, created_by,
           created_at, ''
    FROM directive;

-- directive_inbox stays one row per (directive, unit): the unit's state for the version
-- in `version` (reset when a correction arrives); its seq is now the unit's latest entry
-- for the directive.
ALTER TABLE directive_inbox ADD COLUMN version INTEGER NOT NULL DEFAULT 1;

-- directive_inbox_entry: a unit's inbox as an ordered sequence, seq 1, 2, 3, … per unit
-- (the primary key forbids duplicates; writers are serialised so there are no gaps).
-- kind: 'sent' (version 1), 'corrected' (a later version), 'retracted'. An offline unit
-- catches up by reading every entry after the last seq it saw.
CREATE TABLE directive_inbox_entry (
    unit_id      TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    directive_id TEXT NOT NULL REFERENCES directive (id),
    version      INTEGER NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('sent', 'corrected', 'retracted')),
    at           INTEGER NOT NULL,
    PRIMARY KEY (unit_id, seq)
);
CREATE INDEX directive_inbox_entry_directive ON directive_inbox_entry (directive_id, unit_id);
INSERT INTO directive_inbox_entry (unit_id, seq, directive_id, version, kind, at)
    SELECT i.unit_id, i.seq, i.directive_id, 1, 'sent', d.created_at
    FROM directive_inbox i JOIN directive d ON d.id = i.directive_id;

-- directive_ack: every acknowledgement ever made, per version, written in the same
-- transaction as the state change. A correction resets directive_inbox, never this.
CREATE TABLE directive_ack (
    directive_id TEXT NOT NULL REFERENCES directive (id),
    unit_id      TEXT NOT NULL,
    version      INTEGER NOT NULL,
    acked_at     INTEGER NOT NULL,
    acked_by     TEXT NOT NULL,
    PRIMARY KEY (directive_id, unit_id, version)
);
INSERT INTO directive_ack (directive_id, unit_id, version, acked_at, acked_by)
    SELECT directive_id, unit_id, 1, acked_at, COALESCE(acked_by, '')
    FROM directive_inbox WHERE acked_at IS NOT NULL;

-- feedback_thread: a reply or problem report opened by a unit, optionally about a
-- directive. unit_path (the unit's materialised path) and parent_id are recorded at
-- creation, so headquarters and the parent see the thread at once (subtree queries are
-- a path prefix). status: 'open', 'answered', 'closed' (rules in
-- hub/src/directive/feedback.rs). No foreign key to org_unit: the record outlives a
-- unit's deletion.
CREATE TABLE feedback_thread (
    id           TEXT PRIMARY KEY NOT NULL,
    unit_id      TEXT NOT NULL,
    unit_path    TEXT NOT NULL,
    parent_id    TEXT,
    directive_id TEXT REFERENCES directive (id),
    kind         TEXT NOT NULL CHECK (kind IN ('reply', 'problem')),
    subject      TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('open', 'answered', 'closed')),
    opened_by    TEXT NOT NULL,
    opened_at    INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    closed_by    TEXT,
    closed_at    INTEGER
);
CREATE INDEX feedback_thread_path ON feedback_thread (unit_path);
CREATE INDEX feedback_thread_directive ON feedback_thread (directive_id);
CREATE INDEX feedback_thread_parent ON feedback_thread (parent_id);

-- feedback_message: the thread's messages, numbered 1, 2, … per thread. author_unit: the
-- unit the author speaks for, NULL for headquarters.
CREATE TABLE feedback_message (
    thread_id   TEXT NOT NULL REFERENCES feedback_thread (id),
    number      INTEGER NOT NULL,
    author      TEXT NOT NULL,
    author_unit TEXT,
    body        TEXT NOT NULL,
    at          INTEGER NOT NULL,
    PRIMARY KEY (thread_id, number)
);

-- audit_log: append-only, one row per recorded action, written in the transaction of
-- the change it records. hash = SHA-256(prev_hash ‖ canonical encoding of the entry),
-- hex; the first entry's prev_hash is the genesis value (64 zeros). See hub/src/audit.rs.
-- detail is JSON text, hashed exactly as stored.
CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY NOT NULL,
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
