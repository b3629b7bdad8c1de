//! Reads idem.toml into plain values that keep their byte spans, so every later error
//! can name the line and column. It knows TOML and positions, never what a field means.

use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A value and, when toml knows it, its byte span in the file (implicit tables, such as
/// `task` in `[task.build]`, have none).
#[derive(Debug, Clone)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Option<Range<usize>>,
}

impl<T> Spanned<T> {
    pub fn get_ref(&self) -> &T {
        &self.value
    }
}

/// A TOML value whose keys and elements carry their spans.
#[derive(Debug, Clone)]
pub enum Value {
    String(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
    Datetime,
    Array(Vec<Spanned<Value>>),
    Table(Table),
}

/// Keys in file order (TOML forbids duplicates, so order is all a map would add).
pub type Table = Vec<(Spanned<String>, Spanned<Value>)>;

impl Value {
    /// The TOML type name, for "expected X, found Y" messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Boolean(_) => "a boolean",
            Value::Datetime => "a date-time",
            Value::Array(_) => "an array",
            Value::Table(_) => "a table",
        }
    }
}

// toml hands out spans through serde_spanned's private protocol: a struct with these
// names, seen as a map of start, end and value. `toml::Spanned` cannot be used here
// because it fails on values that have no span; the unit tests below pin the protocol.
const SPANNED_NAME: &str = "$__serde_spanned_private_Spanned";
const START_FIELD: &str = "$__serde_spanned_private_start";
const END_FIELD: &str = "$__serde_spanned_private_end";
const VALUE_FIELD: &str = "$__serde_spanned_private_value";
const SPANNED_FIELDS: &[&str] = &[START_FIELD, END_FIELD, VALUE_FIELD];
/// The key under which toml hands over a date-time as a one-entry map.
const DATETIME_KEY: &str = "$__toml_private_datetime";

impl<'de> Deserialize<'de> for Spanned<Value> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct(SPANNED_NAME, SPANNED_FIELDS, ValueVisitor)
    }
}

impl<'de> Deserialize<'de> for Spanned<String> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct(SPANNED_NAME, SPANNED_FIELDS, KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(d.deserialize_any(ValueVisitor)?.value)
    }
}

fn plain<T>(value: T) -> Spanned<T> {
    Spanned { value, span: None }
}

/// Reads the rest of a spanned map once its first key (`start`) was seen.
fn rest_of_spanned<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
    map: &mut A,
) -> Result<Spanned<T>, A::Error> {
    let start: usize = map.next_value()?;
    let mut end = start;
    let mut value = None;
    while let Some(key) = map.next_key::<String>()? {
        match key.as_str() {
            END_FIELD => end = map.next_value()?,
            VALUE_FIELD => value = Some(map.next_value()?),
            _ => return Err(de::Error::unknown_field(&key, SPANNED_FIELDS)),
        }
    }
    let value = value.ok_or_else(|| de::Error::missing_field(VALUE_FIELD))?;
    Ok(Spanned {
        value,
        span: Some(start..end),
    })
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Spanned<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(plain(v.to_string()))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        match map.next_key::<String>()? {
            Some(k) if k == START_FIELD => rest_of_spanned(&mut map),
            _ => Err(de::Error::custom("expected a key")),
        }
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Spanned<Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a TOML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(plain(Value::Boolean(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(plain(Value::Integer(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        i64::try_from(v)
            .map(|i| plain(Value::Integer(i)))
            .map_err(|_| E::custom("integer out of range"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(plain(Value::Float(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(plain(Value::String(v.to_string())))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Value>>()? {
            items.push(item);
        }
        Ok(plain(Value::Array(items)))
    }
    /// A spanned wrapper, a date-time, or a table without a span.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut table = Table::new();
        let mut next = map.next_key::<Spanned<String>>()?;
        if let Some(first) = &next {
            if first.value == START_FIELD {
                return rest_of_spanned(&mut map);
            }
            if first.value == DATETIME_KEY {
                map.next_value::<de::IgnoredAny>()?;
                return Ok(plain(Value::Datetime));
            }
        }
        while let Some(key) = next {
            let value = map.next_value::<Spanned<Value>>()?;
            table.push((key, value));
            next = map.next_key::<Spanned<String>>()?;
        }
        Ok(plain(Value::Table(table)))
    }
}

/// A TOML syntax error: the message and where it is.
#[derive(Debug)]
pub struct SyntaxError {
    pub message: String,
    pub span: Option<Range<usize>>,
}

/// Parses a whole file; its top level is a table.
pub fn parse(text: &str) -> Result<Table, SyntaxError> {
    match toml::from_str::<Spanned<Value>>(text).map(|v| v.value) {
        Ok(Value::Table(t)) => Ok(t),
        Ok(_) => Err(SyntaxError {
            message: "the file is not a TOML table".into(),
            span: None,
        }),
        Err(e) => Err(SyntaxError {
            message: e
                .message()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("; "),
            span: e.span(),
        }),
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_keep_their_spans() {
        let text = "[task.build]\nrun = \"make\"\nfiles = [\"a\", 1]\n";
        let top = parse(text).unwrap();
        let (k, v) = &top[0];
        assert_eq!(k.get_ref(), "task");
        let Value::Table(tasks) = v.get_ref() else {
            panic!("task is a table")
        };
        let Value::Table(build) = tasks[0].1.get_ref() else {
            panic!("build is a table")
        };
        let (files_key, files) = &build[1];
        assert_eq!(
            line_col(text, files_key.span.clone().unwrap().start),
            (3, 1)
        );
        let Value::Array(items) = files.get_ref() else {
            panic!("files is an array")
        };
        assert_eq!(
            line_col(text, items[1].span.clone().unwrap().start),
            (3, 15)
        );
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let e = parse("[task.x]\nrun = \n").unwrap_err();
        assert_eq!(line_col("[task.x]\nrun = \n", e.span.unwrap().start).0, 2);
    }

    #[test]
    fn datetimes_are_a_type_not_a_table() {
        let top = parse("d = 1979-05-27T07:32:00Z\n").unwrap();
        assert!(matches!(top[0].1.get_ref(), Value::Datetime));
    }
}
