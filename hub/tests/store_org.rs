//! The store's conformance suite for the org tree: every test runs against SQLite (a
//! temporary file) and PostgreSQL (a fresh schema per test, dropped afterwards, so tests
//! run in parallel and leave nothing behind).
//!
//! The backends and the skip rule are in `store_common`.

#[macro_use]
mod store_common;

use rootcast_hub::org::exchange::Format;
use rootcast_hub::org::{Kind, Level, OrgError, Unit, UnitFilter, UnitSpec, demo};
use rootcast_hub::store::{BackendKind, DemoLoad, ImportReport, Store, StoreError, StoreOptions};
use store_common::TestDb;

conformance!(
    migrations_are_idempotent,
    create_read_delete,
    creation_is_checked,
    subtree_and_ancestors,
    move_subtree,
    move_rejects_cycles_and_bad_levels,
    search_by_kind_tag_level_and_subtree,
    import_reports_every_error_and_applies_nothing,
    import_updates_and_moves,
    csv_and_yaml_round_trip,
    demo_organisation_counts_and_idempotent_load,
);

fn spec(id: &str, parent: Option<&str>, level: Level, kind: Kind, tags: &[&str]) -> UnitSpec {
    UnitSpec {
        id: id.into(),
        parent: parent.map(Into::into),
        level,
        kind,
        name: format!("名称 {id}"),
        tags: tags.iter().map(|t| (*t).into()).collect(),
    }
}

/// hq → c1 (k1 → s1, s2; k2), c10, c1-x; ids chosen so that a prefix match on ids would
/// wrongly mix "c1" with "c10" and "c1-x".
async fn small_tree(store: &Store) {
    use Kind::{CityOffice, CountyOffice, Enterprise, Station, University};
    use Level::{City, County, Unit};
    for spec in [
        spec(
            "hq",
            None,
            Level::Headquarters,
            Kind::Headquarters,
            &["省级"],
        ),
        spec("c1", Some("hq"), City, CityOffice, &["关中"]),
        spec("c10", Some("hq"), City, CityOffice, &["陕北"]),
        spec("c1-x", Some("hq"), City, CityOffice, &[]),
        spec("k1", Some("c1"), County, CountyOffice, &[]),
        spec("k2", Some("c1"), County, CountyOffice, &[]),
        spec("s1", Some("k1"), Unit, Station, &["青春驿站", "a"]),
        spec("s2", Some("k1"), Unit, Enterprise, &["a"]),
        spec("u1", Some("c10"), Unit, University, &["高校"]),
    ] {
        store.create_unit(&spec).await.expect("create");
    }
}

fn ids(units: &[Unit]) -> Vec<&str> {
    units.iter().map(|unit| unit.id.as_str()).collect()
}

/// The newest migration's version: the highest `NNNN` of the `NNNN_name.sql` files.
fn latest_migration() -> i64 {
    let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite");
    std::fs::read_dir(folder)
        .expect("the migrations folder")
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".sql")?.split('_').next()?.parse().ok()
        })
        .max()
        .expect("at least one migration")
}

async fn migrations_are_idempotent(db: TestDb) {
    let store = db.open().await;
    assert_eq!(store.schema_version().await.unwrap(), latest_migration());
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    store
        .create_unit(&spec(
            "hq",
            None,
            Level::Headquarters,
            Kind::Headquarters,
            &[],
        ))
        .await
        .unwrap();
    store.close().await;
    let again = db.open().await;
    assert_eq!(again.schema_version().await.unwrap(), latest_migration());
    assert_eq!(
        again.unit_count().await.unwrap(),
        1,
        "data survives a reopen"
    );
    let expected = if db.options.url.starts_with("sqlite") {
        BackendKind::Sqlite
    } else {
        BackendKind::Postgres
    };
    assert_eq!(again.backend(), expected);
}

async fn create_read_delete(db: TestDb) {
    let store = db.open().await;
    small_tree(&store).await;
    let s1 = store.unit("s1").await.unwrap().unwrap();
    assert_eq!(s1.parent.as_deref(), Some("k1"));
    assert_eq!((s1.level, s1.kind), (Level::Unit, Kind::Station));
    assert_eq!(s1.name, "名称 s1");
    assert_eq!(s1.tags, ["青春驿站", "a"]);
    assert_eq!(s1.path, "/hq/c1/k1/s1/");
    assert!(store.unit("nope").await.unwrap().is_none());
    assert!(matches!(
        store.require_unit("nope").await,
        Err(StoreError::UnitNotFound(id)) if id == "nope"
    ));
    assert_eq!(ids(&store.children("c1").await.unwrap()), ["k1", "k2"]);
    // Path order is bytewise: "/hq/c1-x/" < "/hq/c1/" because '-' < '/'.
    assert_eq!(
        ids(&store.children("hq").await.unwrap()),
        ["c1-x", "c1", "c10"]
    );
    assert!(store.children("s1").await.unwrap().is_empty());

    let error = store.delete_leaf("k1").await.unwrap_err();
    assert!(
        matches!(&error, StoreError::HasChildren { id, children: 2 } if id == "k1"),
        "{error}"
    );
    store.delete_leaf("s1").await.unwrap();
    assert!(store.unit("s1").await.unwrap().is_none());
    assert_eq!(ids(&store.children("k1").await.unwrap()), ["s2"]);
    let tagged = UnitFilter {
        tag: Some("青春驿站".into()),
        ..UnitFilter::default()
    };
    assert!(
        store.search(&tagged).await.unwrap().is_empty(),
        "tags go with the unit"
    );
    assert!(matches!(
        store.delete_leaf("s1").await,
        Err(StoreError::UnitNotFound(_))
    ));
    assert_eq!(store.unit_count().await.unwrap(), 8);
}

async fn creation_is_checked(db: TestDb) {
    let store = db.open().await;
    small_tree(&store).await;
    let error = store
        .create_unit(&spec(
            "k1",
            Some("c1"),
            Level::County,
            Kind::CountyOffice,
            &[],
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::UnitExists(id) if id == "k1"),
        "{error}"
    );
    let error = store
        .create_unit(&spec(
            "k9",
            Some("nowhere"),
            Level::County,
            Kind::CountyOffice,
            &[],
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::UnitNotFound(id) if id == "nowhere"),
        "{error}"
    );
    let error = store
        .create_unit(&spec(
            "hq2",
            None,
            Level::Headquarters,
            Kind::Headquarters,
            &[],
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::Invalid(OrgError::SecondRoot { .. })),
        "{error}"
    );
    let error = store
        .create_unit(&spec("c9", Some("k1"), Level::City, Kind::CityOffice, &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::Invalid(OrgError::LevelOrder { .. })),
        "{error}"
    );
    assert!(
        error.to_string().contains("must be below its parent's"),
        "{error}"
    );
    let error = store
        .create_unit(&spec("bad id", Some("k1"), Level::Unit, Kind::Station, &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::Invalid(OrgError::BadIdChar(_))),
        "{error}"
    );
    assert_eq!(store.unit_count().await.unwrap(), 9, "nothing was written");
}

async fn subtree_and_ancestors(db: TestDb) {
    let store = db.open().await;
    small_tree(&store).await;
    assert_eq!(
        ids(&store.subtree("c1").await.unwrap()),
        ["c1", "k1", "s1", "s2", "k2"]
    );
    assert_eq!(ids(&store.subtree("s2").await.unwrap()), ["s2"]);
    assert_eq!(store.subtree("hq").await.unwrap().len(), 9);
    assert_eq!(
        ids(&store.ancestors("s1").await.unwrap()),
        ["hq", "c1", "k1"]
    );
    assert!(store.ancestors("hq").await.unwrap().is_empty());
    assert!(matches!(
        store.subtree("nope").await,
        Err(StoreError::UnitNotFound(_))
    ));
}

async fn move_subtree(db: TestDb) {
    let store = db.open().await;
    small_tree(&store).await;
    let moved = store.move_unit("k1", "c10").await.unwrap();
    assert_eq!(moved.parent.as_deref(), Some("c10"));
    assert_eq!(moved.path, "/hq/c10/k1/");
    assert_eq!(ids(&store.subtree("c1").await.unwrap()), ["c1", "k2"]);
    assert_eq!(
        ids(&store.subtree("c10").await.unwrap()),
        ["c10", "k1", "s1", "s2", "u1"]
    );
    assert_eq!(
        store.unit("s1").await.unwrap().unwrap().path,
        "/hq/c10/k1/s1/"
    );
    assert_eq!(
        ids(&store.ancestors("s2").await.unwrap()),
        ["hq", "c10", "k1"]
    );
    assert_eq!(store.unit("k1").await.unwrap().unwrap(), moved);
    // A unit may also move up a level (a station straight under a city).
    let s2 = store.move_unit("s2", "c1").await.unwrap();
    assert_eq!(s2.path, "/hq/c1/s2/");
    // Moving to where it is already changes nothing.
    assert_eq!(store.move_unit("s2", "c1").await.unwrap(), s2);
}

async fn move_rejects_cycles_and_bad_levels(db: TestDb) {
    let store = db.open().await;
    small_tree(&store).await;
    let before = store.export(Format::Csv).await.unwrap();
    for (unit, parent) in [("c1", "k1"), ("c1", "s1"), ("k1", "k1"), ("hq", "s2")] {
        let error = store.move_unit(unit, parent).await.unwrap_err();
        assert!(
            matches!(error, StoreError::Invalid(OrgError::Cycle { .. })),
            "{unit} under {parent}: {error}"
        );
        assert!(error.to_string().contains("cycle"), "{error}");
    }
    let error = store.move_unit("k1", "k2").await.unwrap_err();
    assert!(
        matches!(error, StoreError::Invalid(OrgError::LevelOrder { .. })),
        "{error}"
    );
    assert!(matches!(
        store.move_unit("k1", "nowhere").await,
        Err(StoreError::UnitNotFound(_))
    ));
    assert_eq!(
        store.export(Format::Csv).await.unwrap(),
        before,
        "nothing changed"
    );
}

async fn search_by_kind_tag_level_and_subtree(db: TestDb) {
    let store = db.open().await;
    small_tree(&store).await;
    let search = async |filter: UnitFilter| {
        ids(&store.search(&filter).await.unwrap())
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        search(UnitFilter {
            level: Some(Level::City),
            ..UnitFilter::default()
        })
        .await,
        ["c1-x", "c1", "c10"]
    );
    assert_eq!(
        search(UnitFilter {
            kind: Some(Kind::University),
            ..UnitFilter::default()
        })
        .await,
        ["u1"]
    );
    assert_eq!(
        search(UnitFilter {
            tag: Some("a".into()),
            ..UnitFilter::default()
        })
        .await,
        ["s1", "s2"]
    );
    assert_eq!(
        search(UnitFilter {
            level: Some(Level::Unit),
            within: Some("c10".into()),
            ..UnitFilter::default()
        })
        .await,
        ["u1"]
    );
    assert_eq!(
        search(UnitFilter {
            tag: Some("a".into()),
            kind: Some(Kind::Enterprise),
            within: Some("c1".into()),
            ..UnitFilter::default()
        })
        .await,
        ["s2"]
    );
    assert_eq!(
        search(UnitFilter {
            limit: Some(2),
            ..UnitFilter::default()
        })
        .await,
        ["hq", "c1-x"]
    );
    assert!(
        search(UnitFilter {
            tag: Some("'; DROP TABLE org_unit; --".into()),
            ..UnitFilter::default()
        })
        .await
        .is_empty()
    );
    assert_eq!(store.unit_count().await.unwrap(), 9);
}

async fn import_reports_every_error_and_applies_nothing(db: TestDb) {
    let store = db.open().await;
    // Field errors, found while parsing.
    let csv = "id,parent,level,kind,name,tags\n\
               hq,,headquarters,headquarters,总部,\n\
               c1,hq,metropolis,city_office,西安,\n\
               c2,hq,city,city_office,宝鸡,\n\
               c3,hq,city,city_office\n";
    let error = store.import(Format::Csv, csv).await.unwrap_err();
    let StoreError::Import(errors) = &error else {
        panic!("expected an import error, got {error}");
    };
    let lines: Vec<usize> = errors.0.iter().map(|e| e.line).collect();
    assert_eq!(lines, [3, 5], "{error}");
    assert!(
        error
            .to_string()
            .contains("line 3: unknown level \"metropolis\""),
        "{error}"
    );
    assert_eq!(store.unit_count().await.unwrap(), 0, "nothing applied");

    // Tree errors, found once every row parses: the valid rows are not applied either.
    let csv = "id,parent,level,kind,name,tags\n\
               hq,,headquarters,headquarters,总部,\n\
               c1,hq,city,city_office,西安,\n\
               k1,nowhere,county,county_office,雁塔区,\n\
               k2,k3,county,county_office,A,\n\
               k3,k2,county,county_office,B,\n\
               c1,hq,city,city_office,Again,\n\
               hq2,,headquarters,headquarters,Second,\n";
    let error = store.import(Format::Csv, csv).await.unwrap_err();
    let StoreError::Import(errors) = &error else {
        panic!("expected an import error, got {error}");
    };
    let mut lines: Vec<usize> = errors.0.iter().map(|e| e.line).collect();
    lines.dedup(); // a cycle also breaks the level order: two problems on its lines
    assert_eq!(lines, [4, 5, 6, 7, 8], "{error}");
    let text = error.to_string();
    for expected in [
        "line 4: unit \"k1\": unknown parent \"nowhere\"",
        "line 5: unit \"k2\" would be its own ancestor",
        "line 7: duplicate id \"c1\" (first given on line 3)",
        "line 8: the organisation already has a headquarters",
    ] {
        assert!(text.contains(expected), "{expected:?} not in {text}");
    }
    assert_eq!(store.unit_count().await.unwrap(), 0, "nothing applied");

    let yaml = "units:\n  - id: hq\n    level: headquarters\n    kind: headquarters\n    name: 总部\n  - id: c1\n    parent: hq\n    level: city\n    kind: city\n    name: 西安\n";
    let error = store.import(Format::Yaml, yaml).await.unwrap_err();
    assert!(
        error.to_string().contains("line 6: unknown kind \"city\""),
        "{error}"
    );
    assert_eq!(store.unit_count().await.unwrap(), 0, "nothing applied");
}

async fn import_updates_and_moves(db: TestDb) {
    let store = db.open().await;
    small_tree(&store).await;
    // Rename c1, move k1 (with s1 and s2) under c10, add a station under k1.
    let csv = "id,parent,level,kind,name,tags\n\
               c1,hq,city,city_office,西安市,关中;省会\n\
               k1,c10,county,county_office,名称 k1,\n\
               s9,k1,unit,station,新驿站,青春驿站\n";
    let report = store.import(Format::Csv, csv).await.unwrap();
    assert_eq!(
        report,
        ImportReport {
            inserted: 1,
            updated: 4,
            unchanged: 0
        }
    );
    let c1 = store.unit("c1").await.unwrap().unwrap();
    assert_eq!((c1.name.as_str(), c1.tags.len()), ("西安市", 2));
    assert_eq!(
        ids(&store.subtree("c10").await.unwrap()),
        ["c10", "k1", "s1", "s2", "s9", "u1"]
    );
    assert_eq!(
        store.unit("s2").await.unwrap().unwrap().path,
        "/hq/c10/k1/s2/"
    );
    let again = store.import(Format::Csv, csv).await.unwrap();
    assert_eq!((again.inserted, again.updated, again.unchanged), (0, 0, 3));
}

async fn csv_and_yaml_round_trip(db: TestDb) {
    let store = db.open().await;
    small_tree(&store).await;
    store.load_demo().await.unwrap(); // another organisation is there: writes nothing
    let units = store.all_units().await.unwrap();
    for format in [Format::Csv, Format::Yaml] {
        let text = store.export(format).await.unwrap();
        // Into the same store: nothing changes.
        let report = store.import(format, &text).await.unwrap();
        assert_eq!((report.inserted, report.updated), (0, 0), "{format}");
        assert_eq!(report.unchanged, units.len());
        // Into an empty store of the other kind: the same units, and the same export.
        let other = Store::open(&StoreOptions::new("sqlite::memory:"))
            .await
            .unwrap();
        let report = other.import(format, &text).await.unwrap();
        assert_eq!(report.inserted, units.len(), "{format}");
        assert_eq!(other.all_units().await.unwrap(), units, "{format}");
        assert_eq!(other.export(format).await.unwrap(), text, "{format}");
    }
}

async fn demo_organisation_counts_and_idempotent_load(db: TestDb) {
    let store = db.open().await;
    assert_eq!(
        store.load_demo().await.unwrap(),
        DemoLoad::Loaded(demo::TOTAL)
    );
    let count = async |level: Level, kind: Option<Kind>| {
        let filter = UnitFilter {
            level: Some(level),
            kind,
            ..UnitFilter::default()
        };
        store.search(&filter).await.unwrap().len()
    };
    assert_eq!(count(Level::Headquarters, None).await, 1);
    assert_eq!(count(Level::City, None).await, 12);
    assert_eq!(count(Level::County, None).await, 106);
    assert_eq!(count(Level::Unit, Some(Kind::University)).await, 83);
    assert_eq!(count(Level::Unit, Some(Kind::Enterprise)).await, 178);
    assert_eq!(count(Level::Unit, Some(Kind::Station)).await, 718);
    let cities = store.children(demo::ROOT_ID).await.unwrap();
    let names: Vec<&str> = cities.iter().map(|c| c.name.as_str()).collect();
    for city in [
        "西安市",
        "宝鸡市",
        "咸阳市",
        "延安市",
        "榆林市",
        "杨凌示范区",
        "韩城市",
    ] {
        assert!(names.contains(&city), "{city} missing from {names:?}");
    }
    let xian = cities.iter().find(|c| c.name == "西安市").unwrap();
    assert!(store.subtree(&xian.id).await.unwrap().len() > 100);

    let before = store.export(Format::Csv).await.unwrap();
    assert_eq!(store.load_demo().await.unwrap(), DemoLoad::AlreadyPresent);
    assert_eq!(store.unit_count().await.unwrap(), demo::TOTAL as i64);
    assert_eq!(store.export(Format::Csv).await.unwrap(), before);
}
