-- The organisation tree (PostgreSQL). Keep in step with ../sqlite/0001_org.sql.
-- `path` is the materialised path '/root/.../id/' (see hub/src/org/tree.rs): a subtree is
-- one range scan on its index. COLLATE "C" makes comparison bytewise, which the range
-- (path >= '/a/' AND path < '/a0') relies on. `tags` repeats the unit's tags ';'-joined
-- for reading in one query; org_unit_tag holds them one per row for searching.
CREATE TABLE org_unit (
    id        TEXT PRIMARY KEY NOT NULL,
    parent_id TEXT REFERENCES org_unit (id),
    level     TEXT NOT NULL CHECK (level IN ('headquarters', 'city', 'county', 'unit')),
    kind      TEXT NOT NULL,
    name      TEXT NOT NULL,
    tags      TEXT NOT NULL DEFAULT '',
    path      TEXT COLLATE "C" NOT NULL UNIQUE
);
CREATE INDEX org_unit_parent ON org_unit (parent_id);
CREATE INDEX org_unit_level ON org_unit (level, path);
CREATE INDEX org_unit_kind ON org_unit (kind, path);

CREATE TABLE org_unit_tag (
    unit_id TEXT NOT NULL REFERENCES org_unit (id) ON DELETE CASCADE,
    tag     TEXT NOT NULL,
    PRIMARY KEY (unit_id, tag)
);
CREATE INDEX org_unit_tag_tag ON org_unit_tag (tag, unit_id);
