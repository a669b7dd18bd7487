-- Live meetings: the meeting and its audience, experts, announcements, the attendance
-- log, and Q&A (questions, votes, answers) (SQLite). Keep in step with
-- ../postgres/0006_meetings.sql. Times are ms since the Unix epoch. See
-- hub/src/store/meetings.rs and hub/src/store/qa.rs.

-- meeting: status 'scheduled' → 'live' → 'ended'. target is the JSON the audience was
-- resolved from (hub/src/directive/target.rs); the resolved units are in meeting_unit.
-- stream: the relay stream bound when it went live. screen_question: the question shown
-- on screen (at most one).
CREATE TABLE meeting (
    id              TEXT PRIMARY KEY NOT NULL,
    title           TEXT NOT NULL,
    agenda          TEXT NOT NULL,
    starts_at       INTEGER NOT NULL,
    target          TEXT NOT NULL,
    qa_preapproval  BOOLEAN NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('scheduled', 'live', 'ended')),
    stream          TEXT,
    screen_question TEXT,
    created_by      TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    live_at         INTEGER,
    ended_at        INTEGER
);
CREATE INDEX meeting_starts ON meeting (starts_at);

-- meeting_unit: the audience, one row per targeted unit, with the unit's path when the
-- meeting was scheduled (subtree queries are a path prefix) and the headcount its room
-- reported. No foreign key to org_unit: the record outlives a unit's deletion.
CREATE TABLE meeting_unit (
    meeting_id   TEXT NOT NULL REFERENCES meeting (id),
    unit_id      TEXT NOT NULL,
    unit_path    TEXT NOT NULL,
    headcount    INTEGER,
    headcount_by TEXT,
    headcount_at INTEGER,
    PRIMARY KEY (meeting_id, unit_id)
);
CREATE INDEX meeting_unit_path ON meeting_unit (unit_path);
CREATE INDEX meeting_unit_unit ON meeting_unit (unit_id);

-- meeting_expert: accounts that answer questions in the meeting.
CREATE TABLE meeting_expert (
    meeting_id TEXT NOT NULL REFERENCES meeting (id),
    account_id TEXT NOT NULL,
    PRIMARY KEY (meeting_id, account_id)
);
CREATE INDEX meeting_expert_account ON meeting_expert (account_id);

-- meeting_announcement: live announcements, numbered 1, 2, … per meeting.
CREATE TABLE meeting_announcement (
    meeting_id TEXT NOT NULL REFERENCES meeting (id),
    number     INTEGER NOT NULL,
    body       TEXT NOT NULL,
    level      TEXT NOT NULL CHECK (level IN ('info', 'warning', 'urgent')),
    made_by    TEXT NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (meeting_id, number)
);

-- meeting_attendance: the join/leave log, one row per subscription of a connection to
-- meeting:<id> (client_id is the hub's connection id); left_at is NULL while it lasts.
-- unit_id: the unit the connection watches for (from its subscription token).
CREATE TABLE meeting_attendance (
    meeting_id TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    account_id TEXT NOT NULL,
    unit_id    TEXT,
    joined_at  INTEGER NOT NULL,
    left_at    INTEGER,
    PRIMARY KEY (meeting_id, client_id, joined_at)
);

-- meeting_question: status 'pending' (awaiting approval: moderators and the asker see
-- it), 'open', 'answered', 'archived', 'merged' (into merged_into), 'rejected' (the
-- asker and moderators see it), 'deleted' (nobody sees it). anonymous hides the asker
-- from other viewers, never from moderators.
CREATE TABLE meeting_question (
    id          TEXT PRIMARY KEY NOT NULL,
    meeting_id  TEXT NOT NULL REFERENCES meeting (id),
    body        TEXT NOT NULL,
    asked_by    TEXT NOT NULL,
    asker_name  TEXT NOT NULL,
    asker_unit  TEXT,
    anonymous   BOOLEAN NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'open', 'answered', 'archived',
                                                'merged', 'rejected', 'deleted')),
    merged_into TEXT,
    assigned_to TEXT,
    asked_at    INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX meeting_question_meeting ON meeting_question (meeting_id, asked_at);

-- meeting_vote: one vote per account per question (the primary key enforces it).
CREATE TABLE meeting_vote (
    question_id TEXT NOT NULL REFERENCES meeting_question (id),
    account_id  TEXT NOT NULL,
    at          INTEGER NOT NULL,
    PRIMARY KEY (question_id, account_id)
);

-- meeting_answer: a question's answer thread, numbered 1, 2, … per question. private:
-- seen only by the asker, the author and moderators.
CREATE TABLE meeting_answer (
    question_id TEXT NOT NULL REFERENCES meeting_question (id),
    number      INTEGER NOT NULL,
    author      TEXT NOT NULL,
    author_name TEXT NOT NULL,
    body        TEXT NOT NULL,
    private     BOOLEAN NOT NULL,
    at          INTEGER NOT NULL,
    PRIMARY KEY (question_id, number)
);
