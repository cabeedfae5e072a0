//! TOML (Vector, Telegraf) into a span-carrying tree.

use super::{ConfigError, entry, map, seq, span, string};
use apiload_yaml::{Node, Value};
use toml::de::{DeTable, DeValue};

pub fn parse(text: &str) -> Result<Node, ConfigError> {
    let table = DeTable::parse(text)
        .map_err(|e| ConfigError::new(e.span().map_or(0, |s| s.start), format!("TOML: {}", e.message())))?;
    let s = table.span();
    Ok(table_node(table.get_ref(), span(s.start, s.end)))
}

fn table_node(t: &DeTable<'_>, whole: apiload_yaml::Span) -> Node {
    let entries = t
        .iter()
        .map(|(k, v)| {
            let ks = k.span();
            entry(k.get_ref(), span(ks.start, ks.end), value_node(v.get_ref(), v.span()))
        })
        .collect();
    map(entries, whole)
}

fn value_node(v: &DeValue<'_>, r: std::ops::Range<usize>) -> Node {
    let sp = span(r.start, r.end);
    match v {
        DeValue::String(s) => string(s, sp),
        DeValue::Integer(i) => match i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()) {
            Ok(n) => Node::new(Value::Int(n), sp),
            Err(_) => string(i.as_str(), sp),
        },
        DeValue::Float(f) => match f.as_str().replace('_', "").parse::<f64>() {
            Ok(x) => Node::new(Value::Float(x), sp),
            Err(_) => string(f.as_str(), sp),
        },
        DeValue::Boolean(b) => Node::new(Value::Bool(*b), sp),
        DeValue::Datetime(d) => string(&d.to_string(), sp),
        DeValue::Array(items) => seq(items.iter().map(|i| value_node(i.get_ref(), i.span())).collect(), sp),
        DeValue::Table(t) => table_node(t, sp),
    }
}
