//! Import and export formats for the org tree: CSV and YAML. Pure: text in, rows out.
//!
//! Both formats carry the same six fields per unit, and both are read whole before
//! anything is applied: [`parse_csv`] and [`parse_yaml`] report every malformed row with
//! its line number, then [`plan_import`](super::tree::plan_import) checks the rows against
//! the tree (unknown parents, cycles, duplicates, levels), again reporting every problem.
//! Export writes units in path order (parents first); reading an export back gives the
//! same units.
//!
//! # Fields
//! | field | meaning |
//! | --- | --- |
//! | `id` | the unit's id: 1–64 ASCII letters, digits, `-`, `_`, `.` |
//! | `parent` | the parent's id; empty (CSV) or `null`/absent (YAML) for the headquarters |
//! | `level` | `headquarters`, `city`, `county` or `unit` |
//! | `kind` | `headquarters`, `city_office`, `county_office`, `university`, `enterprise`, `station`, `school`, `community`, `agency` or `other` |
//! | `name` | display name, 1–200 characters, any script |
//! | `tags` | free tags; CSV: one field, tags separated by `;`; YAML: a list |
//!
//! # CSV
//! UTF-8 (a leading byte-order mark is ignored), comma-separated, RFC 4180 quoting, a
//! header row naming the six columns in any order; whitespace around fields is trimmed.
//! ```text
//! id,parent,level,kind,name,tags
//! sx,,headquarters,headquarters,陕西省总部,province
//! xian,sx,city,city_office,西安市,capital;city
//! ```
//!
//! # YAML
//! A mapping with one key, `units`, holding a list of mappings with the fields above
//! (`parent` and `tags` may be left out). Anchors and aliases are not accepted.
//! ```yaml
//! units:
//!   - id: sx
//!     level: headquarters
//!     kind: headquarters
//!     name: 陕西省总部
//!     tags: [province]
//!   - id: xian
//!     parent: sx
//!     level: city
//!     kind: city_office
//!     name: 西安市
//! ```

use std::fmt;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::TScalarStyle;

use super::tree::{ImportErrors, ImportRow, RowError};
use super::{Kind, Level, Unit, UnitSpec};

/// The CSV columns, in the order export writes them.
pub const CSV_COLUMNS: [&str; 6] = ["id", "parent", "level", "kind", "name", "tags"];

/// The two exchange formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Yaml,
}

impl Format {
    /// `csv`, or `yaml`/`yml`; for a file, pass its extension.
    pub fn parse(text: &str) -> Option<Format> {
        match text.to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "yaml" | "yml" => Some(Format::Yaml),
            _ => None,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Csv => "csv",
            Format::Yaml => "yaml",
        })
    }
}

/// Parses an import in `format`.
pub fn parse(format: Format, text: &str) -> Result<Vec<ImportRow>, ImportErrors> {
    match format {
        Format::Csv => parse_csv(text),
        Format::Yaml => parse_yaml(text),
    }
}

/// Writes units in `format`.
pub fn write(format: Format, units: &[Unit]) -> String {
    match format {
        Format::Csv => write_csv(units),
        Format::Yaml => write_yaml(units),
    }
}

/// The six fields of a row as text, before they are typed.
#[derive(Default)]
struct RawFields {
    id: Option<String>,
    parent: Option<String>,
    level: Option<String>,
    kind: Option<String>,
    name: Option<String>,
    tags: Vec<String>,
}

impl RawFields {
    fn into_spec(self) -> Result<UnitSpec, String> {
        let mut problems = Vec::new();
        let mut required = |field: &str, value: Option<String>| match value {
            Some(value) if !value.is_empty() => value,
            _ => {
                problems.push(format!("{field} is missing"));
                String::new()
            }
        };
        let id = required("id", self.id);
        let level = required("level", self.level);
        let kind = required("kind", self.kind);
        let name = required("name", self.name);
        let level = if level.is_empty() {
            None
        } else {
            Level::parse(&level)
                .map_err(|e| problems.push(e.to_string()))
                .ok()
        };
        let kind = if kind.is_empty() {
            None
        } else {
            Kind::parse(&kind)
                .map_err(|e| problems.push(e.to_string()))
                .ok()
        };
        match (level, kind) {
            (Some(level), Some(kind)) if problems.is_empty() => Ok(UnitSpec {
                id,
                parent: self.parent.filter(|parent| !parent.is_empty()),
                level,
                kind,
                name,
                tags: self.tags,
            }),
            _ => Err(problems.join("; ")),
        }
    }
}

/// Parses CSV (see the module docs). Every problem is reported with its line.
pub fn parse_csv(text: &str) -> Result<Vec<ImportRow>, ImportErrors> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = match reader.headers() {
        Ok(header) => header.clone(),
        Err(error) => return Err(ImportErrors(vec![RowError::new(1, error)])),
    };
    let mut columns = [None; CSV_COLUMNS.len()];
    let mut errors = Vec::new();
    for (index, name) in header.iter().enumerate() {
        match CSV_COLUMNS.iter().position(|column| *column == name) {
            Some(slot) if columns[slot].is_none() => columns[slot] = Some(index),
            Some(_) => errors.push(RowError::new(1, format!("column {name:?} appears twice"))),
            None => errors.push(RowError::new(
                1,
                format!(
                    "unknown column {name:?}; the columns are {}",
                    CSV_COLUMNS.join(", ")
                ),
            )),
        }
    }
    for (slot, column) in columns.iter().enumerate() {
        if column.is_none() && !matches!(CSV_COLUMNS[slot], "parent" | "tags") {
            errors.push(RowError::new(
                1,
                format!("the header has no {:?} column", CSV_COLUMNS[slot]),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ImportErrors(errors));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let line = error.position().map_or(0, |p| p.line() as usize);
                errors.push(RowError::new(line, error));
                continue;
            }
        };
        let line = record
            .position()
            .map_or(0, |p| line_at(text, p.byte() as usize));
        if record.iter().all(str::is_empty) {
            continue; // a blank line
        }
        if record.len() != header.len() {
            errors.push(RowError::new(
                line,
                format!(
                    "{} fields, but the header has {}",
                    record.len(),
                    header.len()
                ),
            ));
            continue;
        }
        let field = |slot: usize| columns[slot].map(|index| record[index].to_owned());
        let fields = RawFields {
            id: field(0),
            parent: field(1),
            level: field(2),
            kind: field(3),
            name: field(4),
            tags: field(5)
                .unwrap_or_default()
                .split(';')
                .map(str::trim)
                .filter(|tag| !tag.is_empty())
                .map(str::to_owned)
                .collect(),
        };
        match fields.into_spec() {
            Ok(spec) => rows.push(ImportRow { line, spec }),
            Err(message) => errors.push(RowError::new(line, message)),
        }
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(ImportErrors(errors))
    }
}

/// The line of the first character at or after `byte` that is not a line break. The csv
/// reader places a record after blank lines at the first of those lines.
fn line_at(text: &str, byte: usize) -> usize {
    let bytes = text.as_bytes();
    let mut start = byte.min(bytes.len());
    while start < bytes.len() && matches!(bytes[start], b'\n' | b'\r') {
        start += 1;
    }
    1 + bytes[..start].iter().filter(|&&b| b == b'\n').count()
}

/// Writes units as CSV with the header [`CSV_COLUMNS`], in the order given.
pub fn write_csv(units: &[Unit]) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    // Writing records of strings into a Vec<u8> cannot fail: there is no IO to go wrong.
    writer
        .write_record(CSV_COLUMNS)
        .expect("csv into memory cannot fail");
    for unit in units {
        let tags = unit.tags.join(";");
        writer
            .write_record([
                unit.id.as_str(),
                unit.parent.as_deref().unwrap_or(""),
                unit.level.as_str(),
                unit.kind.as_str(),
                unit.name.as_str(),
                tags.as_str(),
            ])
            .expect("csv into memory cannot fail");
    }
    let bytes = writer.into_inner().expect("csv into memory cannot fail");
    // Every field was a &str, so the output is UTF-8.
    String::from_utf8(bytes).expect("csv of UTF-8 fields is UTF-8")
}

/// A YAML node with the line it starts on.
struct Node {
    line: usize,
    value: NodeValue,
}

enum NodeValue {
    Scalar(String, TScalarStyle),
    Sequence(Vec<Node>),
    Mapping(Vec<(Node, Node)>),
}

impl Node {
    fn is_null(&self) -> bool {
        matches!(&self.value, NodeValue::Scalar(text, TScalarStyle::Plain)
            if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    fn describe(&self) -> &'static str {
        match self.value {
            NodeValue::Scalar(..) => "a scalar",
            NodeValue::Sequence(_) => "a list",
            NodeValue::Mapping(_) => "a mapping",
        }
    }
}

/// Reads the first document of `text` into nodes; an error carries its line.
fn read_yaml(text: &str) -> Result<Option<Node>, RowError> {
    let mut parser = Parser::new_from_str(text);
    // Open containers: (line, items or keys-and-values so far, is_mapping).
    let mut stack: Vec<(usize, Vec<Node>, bool)> = Vec::new();
    loop {
        let (event, marker) = parser
            .next_token()
            .map_err(|error| RowError::new(error.marker().line(), error.info()))?;
        let line = marker.line();
        let node = match event {
            Event::StreamEnd | Event::DocumentEnd => return Ok(None),
            Event::SequenceStart(..) => {
                stack.push((line, Vec::new(), false));
                continue;
            }
            Event::MappingStart(..) => {
                stack.push((line, Vec::new(), true));
                continue;
            }
            Event::Alias(_) => {
                return Err(RowError::new(line, "aliases (*name) are not accepted"));
            }
            Event::Scalar(text, style, ..) => Node {
                line,
                value: NodeValue::Scalar(text, style),
            },
            Event::SequenceEnd | Event::MappingEnd => {
                let Some((start, items, is_mapping)) = stack.pop() else {
                    return Err(RowError::new(line, "unbalanced YAML structure"));
                };
                let value = if is_mapping {
                    let mut pairs = Vec::with_capacity(items.len() / 2);
                    let mut items = items.into_iter();
                    while let (Some(key), Some(value)) = (items.next(), items.next()) {
                        pairs.push((key, value));
                    }
                    NodeValue::Mapping(pairs)
                } else {
                    NodeValue::Sequence(items)
                };
                Node { line: start, value }
            }
            _ => continue,
        };
        match stack.last_mut() {
            Some((_, items, _)) => items.push(node),
            None => return Ok(Some(node)),
        }
    }
}

/// Parses YAML (see the module docs). Every problem is reported with its line.
pub fn parse_yaml(text: &str) -> Result<Vec<ImportRow>, ImportErrors> {
    let one = |line: usize, message: &str| ImportErrors(vec![RowError::new(line, message)]);
    let root = read_yaml(text).map_err(|error| ImportErrors(vec![error]))?;
    let Some(root) = root else {
        return Ok(Vec::new());
    };
    let NodeValue::Mapping(pairs) = root.value else {
        return Err(one(
            root.line,
            "expected a mapping with the key `units` at the top",
        ));
    };
    let mut units = None;
    for (key, value) in pairs {
        match &key.value {
            NodeValue::Scalar(name, _) if name == "units" => units = Some(value),
            _ => {
                return Err(one(
                    key.line,
                    "unknown top-level key; the only key is `units`",
                ));
            }
        }
    }
    let Some(units) = units else {
        return Err(one(root.line, "the key `units` is missing"));
    };
    let items = match units.value {
        NodeValue::Sequence(items) => items,
        _ if units.is_null() => Vec::new(),
        _ => return Err(one(units.line, "`units` must be a list")),
    };
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for item in items {
        match yaml_unit(item) {
            Ok(row) => rows.push(row),
            Err(error) => errors.push(error),
        }
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(ImportErrors(errors))
    }
}

fn yaml_unit(item: Node) -> Result<ImportRow, RowError> {
    let line = item.line;
    let NodeValue::Mapping(pairs) = item.value else {
        return Err(RowError::new(
            line,
            format!(
                "a unit must be a mapping of {}, not {}",
                CSV_COLUMNS.join(", "),
                item.describe()
            ),
        ));
    };
    let mut fields = RawFields::default();
    let mut problems = Vec::new();
    for (key, value) in pairs {
        let NodeValue::Scalar(name, _) = &key.value else {
            problems.push("keys must be plain names".to_owned());
            continue;
        };
        let scalar = |value: &Node| match &value.value {
            NodeValue::Scalar(text, _) if !value.is_null() => Ok(Some(text.trim().to_owned())),
            NodeValue::Scalar(..) => Ok(None),
            _ => Err(format!(
                "{name} must be a single value, not {}",
                value.describe()
            )),
        };
        let result = match name.as_str() {
            "id" => scalar(&value).map(|v| fields.id = v),
            "parent" => scalar(&value).map(|v| fields.parent = v),
            "level" => scalar(&value).map(|v| fields.level = v),
            "kind" => scalar(&value).map(|v| fields.kind = v),
            "name" => scalar(&value).map(|v| fields.name = v),
            "tags" => match value.value {
                NodeValue::Sequence(tags) => tags
                    .iter()
                    .map(|tag| scalar(tag).map(Option::unwrap_or_default))
                    .collect::<Result<Vec<_>, _>>()
                    .map(|tags| fields.tags = tags),
                _ if value.is_null() => Ok(()),
                _ => Err("tags must be a list, e.g. [a, b]".to_owned()),
            },
            other => Err(format!(
                "unknown field {other:?}; the fields are {}",
                CSV_COLUMNS.join(", ")
            )),
        };
        if let Err(problem) = result {
            problems.push(problem);
        }
    }
    if !problems.is_empty() {
        return Err(RowError::new(line, problems.join("; ")));
    }
    fields
        .into_spec()
        .map(|spec| ImportRow { line, spec })
        .map_err(|message| RowError::new(line, message))
}

/// A YAML double-quoted scalar. JSON string syntax is a subset of YAML's double-quoted
/// style, so serde_json's escaping is exact.
fn quoted(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// Writes units as YAML (see the module docs), in the order given.
pub fn write_yaml(units: &[Unit]) -> String {
    let mut out = String::from("units:\n");
    if units.is_empty() {
        out = "units: []\n".to_owned();
    }
    for unit in units {
        out.push_str(&format!("  - id: {}\n", quoted(&unit.id)));
        match &unit.parent {
            Some(parent) => out.push_str(&format!("    parent: {}\n", quoted(parent))),
            None => out.push_str("    parent: null\n"),
        }
        out.push_str(&format!("    level: {}\n", unit.level));
        out.push_str(&format!("    kind: {}\n", unit.kind));
        out.push_str(&format!("    name: {}\n", quoted(&unit.name)));
        let tags: Vec<String> = unit.tags.iter().map(|tag| quoted(tag)).collect();
        out.push_str(&format!("    tags: [{}]\n", tags.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org::tree::{child_path, root_path};

    fn sample() -> Vec<Unit> {
        let hq = Unit {
            id: "sx".into(),
            parent: None,
            level: Level::Headquarters,
            kind: Kind::Headquarters,
            name: "陕西省总部".into(),
            tags: vec!["province".into()],
            path: root_path("sx"),
        };
        let city = Unit {
            id: "xian".into(),
            parent: Some("sx".into()),
            level: Level::City,
            kind: Kind::CityOffice,
            name: "西安市 \"古都\", 'x' #1: {a}".into(),
            tags: vec!["capital".into(), "城市".into()],
            path: child_path("/sx/", "xian"),
        };
        vec![hq, city]
    }

    fn specs(rows: Vec<ImportRow>) -> Vec<UnitSpec> {
        rows.into_iter().map(|row| row.spec).collect()
    }

    #[test]
    fn csv_round_trip() {
        let units = sample();
        let text = write_csv(&units);
        assert!(
            text.starts_with("id,parent,level,kind,name,tags\n"),
            "{text}"
        );
        let parsed = specs(parse_csv(&text).unwrap());
        assert_eq!(parsed, units.iter().map(Unit::spec).collect::<Vec<_>>());
    }

    #[test]
    fn yaml_round_trip() {
        let units = sample();
        let text = write_yaml(&units);
        let parsed = specs(parse_yaml(&text).unwrap());
        assert_eq!(parsed, units.iter().map(Unit::spec).collect::<Vec<_>>());
        assert_eq!(parse_yaml(&write_yaml(&[])).unwrap(), vec![]);
    }

    #[test]
    fn csv_reports_each_bad_row_with_its_line() {
        let text = "\u{feff}kind,id,parent,level,name,tags\n\
                    headquarters,sx,,headquarters,总部,\n\
                    \n\
                    city_office,xian,sx,metropolis,西安,\n\
                    city_office,baoji,sx,city\n\
                    \"multi\nline\",x,sx,city,名,\n\
                    ,y,sx,city,名,\n";
        let errors = parse_csv(text).unwrap_err().0;
        let got: Vec<(usize, &str)> = errors
            .iter()
            .map(|e| (e.line, e.message.as_str()))
            .collect();
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[0].0, 4, "{got:?}");
        assert!(got[0].1.contains("unknown level \"metropolis\""));
        assert_eq!(got[1].0, 5);
        assert!(got[1].1.contains("4 fields, but the header has 6"));
        assert_eq!(got[2].0, 6);
        assert!(got[2].1.contains("unknown kind"));
        assert_eq!(got[3], (8, "kind is missing"));
    }

    #[test]
    fn csv_header_problems() {
        let errors = parse_csv("id,parent,level,colour,name\n").unwrap_err().0;
        let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
        assert!(
            messages[0].contains("unknown column \"colour\""),
            "{messages:?}"
        );
        assert!(messages[1].contains("no \"kind\" column"), "{messages:?}");
        assert!(errors.iter().all(|e| e.line == 1));
        assert_eq!(parse_csv("id,level,kind,name\n").unwrap(), vec![]);
    }

    #[test]
    fn yaml_reports_each_bad_unit_with_its_line() {
        let text = "units:\n\
                    \x20 - id: sx\n\
                    \x20   level: headquarters\n\
                    \x20   kind: headquarters\n\
                    \x20   name: 总部\n\
                    \x20 - id: xian\n\
                    \x20   parent: sx\n\
                    \x20   level: town\n\
                    \x20   colour: red\n\
                    \x20 - just a string\n\
                    \x20 - {id: a, parent: sx, level: city, kind: city_office}\n";
        let errors = parse_yaml(text).unwrap_err().0;
        let got: Vec<(usize, &str)> = errors
            .iter()
            .map(|e| (e.line, e.message.as_str()))
            .collect();
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0].0, 6);
        assert!(got[0].1.contains("unknown field \"colour\""), "{got:?}");
        assert_eq!(got[1].0, 10);
        assert!(got[1].1.contains("must be a mapping"));
        assert_eq!(got[2], (11, "name is missing"));
    }

    #[test]
    fn yaml_syntax_and_shape_errors() {
        let error = parse_yaml("units:\n  - id: [unclosed\n").unwrap_err().0;
        assert_eq!(error.len(), 1);
        assert!(error[0].line >= 2, "{error:?}");
        let error = parse_yaml("- id: a\n").unwrap_err().0;
        assert!(error[0].message.contains("`units`"));
        let error = parse_yaml("units: &a [*a]\n").unwrap_err().0;
        assert!(error[0].message.contains("aliases"));
        assert_eq!(parse_yaml("").unwrap(), vec![]);
    }
}
