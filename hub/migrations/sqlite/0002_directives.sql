-- Directives and each targeted unit's durable inbox (SQLite). Keep in step with
-- ../postgres/0002_directives.sql. Times are ms since the Unix epoch. `target` is JSON
-- (see hub/src/directive/target.rs).
-- directive_inbox: one row per (directive, unit), written in the directive's own
-- transaction; `seq` numbers each unit's directives 1, 2, 3, … (unique per unit), the
-- order an offline unit catches up in. unit_id has no foreign key to org_unit: the
-- record of what was sent outlives a unit's deletion.
CREATE TABLE directive (
    id           TEXT PRIMARY KEY NOT NULL,
    version      INTEGER NOT NULL DEFAULT 1,
    title        TEXT NOT NULL,
    body         TEXT NOT NULL,
    priority     TEXT NOT NULL CHECK (priority IN ('routine', 'important', 'urgent')),
    target       TEXT NOT NULL,
    ack_required BOOLEAN NOT NULL,
    deadline     INTEGER,
    created_by   TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX directive_created ON directive (created_at);

CREATE TABLE directive_inbox (
    directive_id TEXT NOT NULL REFERENCES directive (id),
    unit_id      TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    delivered_at INTEGER,
    read_at      INTEGER,
    acked_at     INTEGER,
    acked_by     TEXT,
    PRIMARY KEY (directive_id, unit_id),
    UNIQUE (unit_id, seq)
);
