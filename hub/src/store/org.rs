//! The org tree in the store: [`Store`] methods over the `org_unit` and `org_unit_tag`
//! tables. The rules and the path arithmetic are in [`crate::org`]; this file only reads
//! and writes rows.

use crate::org::exchange::{self, Format};
use crate::org::tree::{self, ImportPlan, ImportRow};
use crate::org::{Kind, Level, Unit, UnitFilter, UnitSpec, demo};

use super::{BeginWrite, Store, StoreError, with_pool};

/// A unit row as selected: id, parent_id, level, kind, name, tags, path.
type UnitRow = (
    String,
    Option<String>,
    String,
    String,
    String,
    String,
    String,
);

/// `SELECT` of [`UnitRow`] from `org_unit u`, followed by the given clause.
macro_rules! select_units {
    ($rest:literal) => {
        concat!(
            "SELECT u.id, u.parent_id, u.level, u.kind, u.name, u.tags, u.path FROM org_unit u ",
            $rest
        )
    };
}

/// The outcome of an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportReport {
    /// Units created.
    pub inserted: usize,
    /// Units changed, including descendants whose path changed because an ancestor moved.
    pub updated: usize,
    /// Rows that matched the store already.
    pub unchanged: usize,
}

/// What [`Store::load_demo`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoLoad {
    /// The demo organisation was written: this many units.
    Loaded(usize),
    /// Its headquarters is there already; nothing was written.
    AlreadyPresent,
    /// The store holds another organisation (this many units); nothing was written.
    OtherOrganisation(i64),
}

fn to_unit(row: UnitRow) -> Result<Unit, StoreError> {
    let (id, parent, level, kind, name, tags, path) = row;
    let corrupt = |what: String| StoreError::Corrupt(format!("unit {id:?}: {what}"));
    Ok(Unit {
        level: Level::parse(&level).map_err(|e| corrupt(e.to_string()))?,
        kind: Kind::parse(&kind).map_err(|e| corrupt(e.to_string()))?,
        tags: tags
            .split(';')
            .filter(|tag| !tag.is_empty())
            .map(str::to_owned)
            .collect(),
        id,
        parent,
        name,
        path,
    })
}

fn to_units(rows: Vec<UnitRow>) -> Result<Vec<Unit>, StoreError> {
    rows.into_iter().map(to_unit).collect()
}

/// Inserts (`insert`) or rewrites one unit and its tags inside a transaction.
macro_rules! write_unit {
    ($tx:expr, $unit:expr, insert: $insert:expr) => {{
        let unit: &Unit = $unit;
        let sql = if $insert {
            "INSERT INTO org_unit (id, parent_id, level, kind, name, tags, path) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)"
        } else {
            "UPDATE org_unit SET parent_id = $2, level = $3, kind = $4, name = $5, tags = $6, \
             path = $7 WHERE id = $1"
        };
        sqlx::query(sql)
            .bind(&unit.id)
            .bind(&unit.parent)
            .bind(unit.level.as_str())
            .bind(unit.kind.as_str())
            .bind(&unit.name)
            .bind(unit.tags.join(";"))
            .bind(&unit.path)
            .execute(&mut *$tx)
            .await?;
        if !$insert {
            sqlx::query("DELETE FROM org_unit_tag WHERE unit_id = $1")
                .bind(&unit.id)
                .execute(&mut *$tx)
                .await?;
        }
        for tag in &unit.tags {
            sqlx::query("INSERT INTO org_unit_tag (unit_id, tag) VALUES ($1, $2)")
                .bind(&unit.id)
                .bind(tag)
                .execute(&mut *$tx)
                .await?;
        }
    }};
}

impl Store {
    /// The unit with this id, if any.
    pub async fn unit(&self, id: &str) -> Result<Option<Unit>, StoreError> {
        let row: Option<UnitRow> = with_pool!(self, |pool| {
            sqlx::query_as(select_units!("WHERE u.id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        row.map(to_unit).transpose()
    }

    /// The unit with this id, or [`StoreError::UnitNotFound`].
    pub async fn require_unit(&self, id: &str) -> Result<Unit, StoreError> {
        self.unit(id)
            .await?
            .ok_or_else(|| StoreError::UnitNotFound(id.to_owned()))
    }

    /// How many units the store holds.
    pub async fn unit_count(&self) -> Result<i64, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM org_unit")
                .fetch_one(pool)
                .await?
        }))
    }

    /// Every unit, in path order (each parent before its children).
    pub async fn all_units(&self) -> Result<Vec<Unit>, StoreError> {
        let rows: Vec<UnitRow> = with_pool!(self, |pool| {
            sqlx::query_as(select_units!("ORDER BY u.path"))
                .fetch_all(pool)
                .await?
        });
        to_units(rows)
    }

    /// The direct children of a unit, by id.
    pub async fn children(&self, id: &str) -> Result<Vec<Unit>, StoreError> {
        self.require_unit(id).await?;
        let rows: Vec<UnitRow> = with_pool!(self, |pool| {
            sqlx::query_as(select_units!("WHERE u.parent_id = $1 ORDER BY u.path"))
                .bind(id)
                .fetch_all(pool)
                .await?
        });
        to_units(rows)
    }

    /// A unit and all its descendants, in path order (the unit first).
    pub async fn subtree(&self, id: &str) -> Result<Vec<Unit>, StoreError> {
        let root = self.require_unit(id).await?;
        let (low, high) = tree::subtree_range(&root.path);
        let rows: Vec<UnitRow> = with_pool!(self, |pool| {
            sqlx::query_as(select_units!(
                "WHERE u.path >= $1 AND u.path < $2 ORDER BY u.path"
            ))
            .bind(&low)
            .bind(&high)
            .fetch_all(pool)
            .await?
        });
        to_units(rows)
    }

    /// A unit's ancestors, the root first and its parent last.
    pub async fn ancestors(&self, id: &str) -> Result<Vec<Unit>, StoreError> {
        let unit = self.require_unit(id).await?;
        let ids = unit.ancestor_ids();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=ids.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "{} WHERE u.id IN ({}) ORDER BY u.path",
            select_units!(""),
            placeholders.join(", ")
        );
        let rows: Vec<UnitRow> = with_pool!(self, |pool| {
            let mut query = sqlx::query_as(&sql);
            for id in &ids {
                query = query.bind(*id);
            }
            query.fetch_all(pool).await?
        });
        to_units(rows)
    }

    /// Units matching every set field of `filter`, in path order.
    pub async fn search(&self, filter: &UnitFilter) -> Result<Vec<Unit>, StoreError> {
        let mut sql = select_units!("WHERE 1 = 1").to_owned();
        let mut binds: Vec<String> = Vec::new();
        let mut bind = |sql: &mut String, condition: &str, value: String| {
            binds.push(value);
            sql.push_str(&condition.replace('?', &format!("${}", binds.len())));
        };
        if let Some(level) = filter.level {
            bind(&mut sql, " AND u.level = ?", level.as_str().to_owned());
        }
        if let Some(kind) = filter.kind {
            bind(&mut sql, " AND u.kind = ?", kind.as_str().to_owned());
        }
        if let Some(tag) = &filter.tag {
            bind(
                &mut sql,
                " AND EXISTS (SELECT 1 FROM org_unit_tag t WHERE t.unit_id = u.id AND t.tag = ?)",
                tag.clone(),
            );
        }
        if let Some(within) = &filter.within {
            let root = self.require_unit(within).await?;
            let (low, high) = tree::subtree_range(&root.path);
            bind(&mut sql, " AND u.path >= ?", low);
            bind(&mut sql, " AND u.path < ?", high);
        }
        sql.push_str(" ORDER BY u.path");
        if let Some(limit) = filter.limit {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        let rows: Vec<UnitRow> = with_pool!(self, |pool| {
            let mut query = sqlx::query_as(&sql);
            for value in &binds {
                query = query.bind(value);
            }
            query.fetch_all(pool).await?
        });
        to_units(rows)
    }

    /// Creates a unit under an existing parent (or the headquarters of an empty store).
    pub async fn create_unit(&self, spec: &UnitSpec) -> Result<Unit, StoreError> {
        spec.validate()?;
        let _write = self.tree_lock.lock().await;
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let exists: Option<String> =
                sqlx::query_scalar("SELECT id FROM org_unit WHERE id = $1")
                    .bind(&spec.id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if exists.is_some() {
                return Err(StoreError::UnitExists(spec.id.clone()));
            }
            let path = match &spec.parent {
                Some(parent_id) => {
                    let row: Option<UnitRow> = sqlx::query_as(select_units!("WHERE u.id = $1"))
                        .bind(parent_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    let parent =
                        to_unit(row.ok_or_else(|| StoreError::UnitNotFound(parent_id.clone()))?)?;
                    tree::check_parent(&spec.id, spec.level, &parent)?;
                    tree::child_path(&parent.path, &spec.id)
                }
                None => {
                    let root: Option<String> =
                        sqlx::query_scalar("SELECT id FROM org_unit WHERE parent_id IS NULL")
                            .fetch_optional(&mut *tx)
                            .await?;
                    if let Some(existing) = root {
                        return Err(crate::org::OrgError::SecondRoot {
                            existing,
                            new: spec.id.clone(),
                        }
                        .into());
                    }
                    tree::root_path(&spec.id)
                }
            };
            let unit = Unit {
                id: spec.id.clone(),
                parent: spec.parent.clone(),
                level: spec.level,
                kind: spec.kind,
                name: spec.name.clone(),
                tags: spec.tags.clone(),
                path,
            };
            write_unit!(tx, &unit, insert: true);
            tx.commit().await?;
            Ok(unit)
        })
    }

    /// Moves a unit, with its whole subtree, under `new_parent`. Moving a unit under
    /// itself or one of its descendants is [`OrgError::Cycle`](crate::org::OrgError::Cycle).
    pub async fn move_unit(&self, id: &str, new_parent: &str) -> Result<Unit, StoreError> {
        let _write = self.tree_lock.lock().await;
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let mut fetch = async |id: &str| -> Result<Unit, StoreError> {
                let row: Option<UnitRow> = sqlx::query_as(select_units!("WHERE u.id = $1"))
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                to_unit(row.ok_or_else(|| StoreError::UnitNotFound(id.to_owned()))?)
            };
            let unit = fetch(id).await?;
            let parent = fetch(new_parent).await?;
            let new_path = tree::check_move(&unit, &parent)?;
            if new_path == unit.path {
                return Ok(unit);
            }
            let (low, high) = tree::subtree_range(&unit.path);
            sqlx::query(
                "UPDATE org_unit SET path = $1 || substr(path, length($2) + 1) \
                 WHERE path >= $2 AND path < $3",
            )
            .bind(&new_path)
            .bind(&low)
            .bind(&high)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE org_unit SET parent_id = $1 WHERE id = $2")
                .bind(new_parent)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Unit {
                parent: Some(new_parent.to_owned()),
                path: new_path,
                ..unit
            })
        })
    }

    /// Deletes a unit that has no children.
    pub async fn delete_leaf(&self, id: &str) -> Result<(), StoreError> {
        let _write = self.tree_lock.lock().await;
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let exists: Option<String> =
                sqlx::query_scalar("SELECT id FROM org_unit WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if exists.is_none() {
                return Err(StoreError::UnitNotFound(id.to_owned()));
            }
            let children: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM org_unit WHERE parent_id = $1")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
            if children > 0 {
                return Err(StoreError::HasChildren {
                    id: id.to_owned(),
                    children,
                });
            }
            sqlx::query("DELETE FROM org_unit_tag WHERE unit_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM org_unit WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Imports CSV or YAML text (formats in [`crate::org::exchange`]): the whole text is
    /// checked first, every problem reported with its line ([`StoreError::Import`]), and
    /// only then applied, in one transaction.
    pub async fn import(&self, format: Format, text: &str) -> Result<ImportReport, StoreError> {
        let rows = exchange::parse(format, text)?;
        self.import_rows(&rows).await
    }

    /// Imports parsed rows: existing ids are updated (and moved with their subtree when
    /// the parent changes), new ids created, units not mentioned left alone.
    pub async fn import_rows(&self, rows: &[ImportRow]) -> Result<ImportReport, StoreError> {
        let _write = self.tree_lock.lock().await;
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let existing: Vec<UnitRow> = sqlx::query_as(select_units!("ORDER BY u.path"))
                .fetch_all(&mut *tx)
                .await?;
            let existing = to_units(existing)?;
            let plan: ImportPlan = tree::plan_import(&existing, rows)?;
            for unit in &plan.inserts {
                write_unit!(tx, unit, insert: true);
            }
            for unit in &plan.updates {
                write_unit!(tx, unit, insert: false);
            }
            tx.commit().await?;
            Ok(ImportReport {
                inserted: plan.inserts.len(),
                updated: plan.updates.len(),
                unchanged: plan.unchanged,
            })
        })
    }

    /// Every unit as CSV or YAML, parents first; importing it back changes nothing.
    pub async fn export(&self, format: Format) -> Result<String, StoreError> {
        Ok(exchange::write(format, &self.all_units().await?))
    }

    /// Loads the demo organisation ([`crate::org::demo`]) into an empty store. Writes
    /// nothing when its headquarters is there already, or when the store holds another
    /// organisation; so it is safe to call at every start.
    pub async fn load_demo(&self) -> Result<DemoLoad, StoreError> {
        if self.unit(demo::ROOT_ID).await?.is_some() {
            return Ok(DemoLoad::AlreadyPresent);
        }
        let count = self.unit_count().await?;
        if count > 0 {
            return Ok(DemoLoad::OtherOrganisation(count));
        }
        let rows: Vec<ImportRow> = demo::units()
            .into_iter()
            .enumerate()
            .map(|(index, spec)| ImportRow {
                line: index + 1,
                spec,
            })
            .collect();
        let report = self.import_rows(&rows).await?;
        // Another process may have loaded it between the check and the write: then
        // every row matched and nothing was inserted.
        Ok(if report.inserted == 0 {
            DemoLoad::AlreadyPresent
        } else {
            DemoLoad::Loaded(report.inserted)
        })
    }
}
