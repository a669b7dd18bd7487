-- The directive jobs the nodes run on a clock (PostgreSQL). Keep in step with
-- ../sqlite/0005_directive_jobs.sql. Times are ms since the Unix epoch.
--
-- directive_nudge: reminders and escalations sent for directives awaiting
-- acknowledgement, one row per nudge. The primary key makes each happen once, even with
-- several nodes looking for due nudges at the same time (the node whose insert succeeds
-- sends it). kind: 'reminder' (to the unit; number counts 1, 2, …), 'parent' and
-- 'grandparent' (escalations; number is 1).
CREATE TABLE directive_nudge (
    directive_id TEXT NOT NULL REFERENCES directive (id),
    unit_id      TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('reminder', 'parent', 'grandparent')),
    number       BIGINT NOT NULL,
    sent_at      BIGINT NOT NULL,
    PRIMARY KEY (directive_id, unit_id, kind, number)
);

-- scheduled_directive: a directive to send at send_at, as composed (target as JSON, see
-- hub/src/directive/target.rs). When it is due a node sends it under the same id; the
-- directive table's primary key makes the send happen once. state: 'pending', 'sent',
-- 'cancelled'.
CREATE TABLE scheduled_directive (
    id           TEXT PRIMARY KEY NOT NULL,
    title        TEXT NOT NULL,
    body         TEXT NOT NULL,
    priority     TEXT NOT NULL,
    target       TEXT NOT NULL,
    ack_required BOOLEAN NOT NULL,
    deadline     BIGINT,
    created_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    send_at      BIGINT NOT NULL,
    state        TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'cancelled')),
    done_at      BIGINT
);
CREATE INDEX scheduled_directive_due ON scheduled_directive (state, send_at);
