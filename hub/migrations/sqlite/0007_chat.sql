-- Meeting chat with moderation (SQLite). Keep in step with ../postgres/0007_chat.sql.
-- Times are ms since the Unix epoch. See hub/src/store/chat.rs. Meeting ids are plain
-- text with no foreign key to the meeting tables: chat only needs the id the meetings
-- service vouched for, and its record outlives whatever happens to the meeting.

-- chat_message: every accepted message, written before it is pushed; id numbers them in
-- the order they were accepted (never reused). state: 'visible'
-- (shown to all), 'held' (the word filter held it; only moderators see it until one
-- approves — it becomes 'visible' — or rejects it — 'rejected'), 'deleted' (removed by a
-- moderator or its author; deleted_by/deleted_at say who and when). held_word: the filter
-- word that held it. reviewed_by/reviewed_at: who approved or rejected a held message.
-- Refused messages (blocked word, too long, slow mode, …) are never stored.
CREATE TABLE chat_message (
    id           INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    meeting_id   TEXT NOT NULL,
    account_id   TEXT NOT NULL,
    display_name TEXT NOT NULL,
    unit_id      TEXT,
    body         TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('visible', 'held', 'deleted', 'rejected')),
    held_word    TEXT,
    created_at   INTEGER NOT NULL,
    reviewed_by  TEXT,
    reviewed_at  INTEGER,
    deleted_by   TEXT,
    deleted_at   INTEGER
);
CREATE INDEX chat_message_meeting ON chat_message (meeting_id, state, id);

-- chat_sanction: a member's current sanction in one meeting's chat, at most one (a new
-- one replaces it; lifting removes it; the audit log keeps every step). kind: 'timeout'
-- (no posting until `until_at`) or 'ban' (no posting in this meeting, `until_at` NULL).
CREATE TABLE chat_sanction (
    meeting_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('timeout', 'ban')),
    until_at   INTEGER,
    reason     TEXT NOT NULL,
    by_account TEXT NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (meeting_id, account_id),
    CHECK ((kind = 'ban') = (until_at IS NULL))
);

-- chat_settings: a meeting's chat settings once a moderator changed them (until then the
-- configuration's defaults apply). slow_mode_seconds: least time between two messages of
-- one member (0: off); enabled: members may post.
CREATE TABLE chat_settings (
    meeting_id        TEXT PRIMARY KEY NOT NULL,
    slow_mode_seconds INTEGER NOT NULL CHECK (slow_mode_seconds >= 0),
    enabled           BOOLEAN NOT NULL,
    updated_by        TEXT NOT NULL,
    updated_at        INTEGER NOT NULL
);
