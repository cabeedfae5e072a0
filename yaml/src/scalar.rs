//! Plain-scalar resolution as the Kubernetes API server sees YAML.
//!
//! kubectl and the API server turn YAML into JSON with sigs.k8s.io/yaml, which
//! resolves plain (unquoted) scalars with go-yaml v2's YAML 1.1 rules
//! (`resolve.go`): `yes`/`no`/`on`/`off`/`y`/`n` in three spellings are booleans,
//! a leading `0` means octal, `_` is ignored inside numbers. Quoted and block
//! scalars are always strings.

use crate::node::Value;

/// Resolves an untagged plain scalar.
pub fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Value::Bool(true);
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Value::Bool(false);
        }
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        _ => {}
    }
    let first = text.as_bytes()[0];
    if (first.is_ascii_digit() || first == b'+' || first == b'-' || first == b'.')
        && let Some(v) = resolve_number(text)
    {
        return v;
    }
    Value::Str(crate::known::tree_string(text))
}

fn resolve_number(text: &str) -> Option<Value> {
    let plain: String = text.chars().filter(|c| *c != '_').collect();
    if let Some(i) = parse_go_int(&plain) {
        return Some(match i {
            GoInt::Signed(i) => Value::Int(i),
            GoInt::Unsigned(u) => Value::Float(u as f64),
        });
    }
    if is_yaml_float(&plain)
        && let Ok(f) = plain.parse::<f64>()
    {
        return Some(Value::Float(f));
    }
    // go-yaml v2 also accepts "0b…" and "-0b…" binary after the general cases.
    let (neg, digits) = match plain.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, plain.as_str()),
    };
    if let Some(bin) = digits.strip_prefix("0b")
        && let Ok(v) = i64::from_str_radix(bin, 2)
    {
        return Some(Value::Int(if neg { -v } else { v }));
    }
    None
}

enum GoInt {
    Signed(i64),
    Unsigned(u64),
}

/// `strconv.ParseInt(s, 0, 64)`, falling back to `ParseUint(s, 0, 64)`.
fn parse_go_int(s: &str) -> Option<GoInt> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if let Some(d) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        (16, d)
    } else if let Some(d) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
        (8, d)
    } else if let Some(d) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
        (2, d)
    } else if body.len() > 1 && body.starts_with('0') {
        (8, &body[1..])
    } else {
        (10, body)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if neg {
        if magnitude <= i64::MAX as u64 + 1 {
            Some(GoInt::Signed((magnitude as i128).wrapping_neg() as i64))
        } else {
            None
        }
    } else if magnitude <= i64::MAX as u64 {
        Some(GoInt::Signed(magnitude as i64))
    } else if s.starts_with('+') {
        None // ParseUint rejects a sign
    } else {
        Some(GoInt::Unsigned(magnitude))
    }
}

/// go-yaml v2's `yamlStyleFloat`: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Resolves a scalar carrying a core-schema tag (`!!str`, `!!int`, ...).
/// `None` when the text does not fit the tag.
pub fn resolve_tagged(suffix: &str, text: &str) -> Option<Value> {
    match suffix {
        "str" | "binary" | "timestamp" => Some(Value::Str(text.into())),
        "null" => match resolve_plain(text) {
            Value::Null => Some(Value::Null),
            _ => None,
        },
        "bool" => match resolve_plain(text) {
            v @ Value::Bool(_) => Some(v),
            _ => None,
        },
        "int" => match resolve_plain(text) {
            v @ Value::Int(_) => Some(v),
            _ => None,
        },
        "float" => match resolve_plain(text) {
            Value::Int(i) => Some(Value::Float(i as f64)),
            v @ Value::Float(_) => Some(v),
            _ => None,
        },
        _ => Some(resolve_plain(text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Value {
        resolve_plain(s)
    }

    #[test]
    fn yaml11_booleans() {
        for t in ["yes", "Yes", "YES", "on", "On", "ON", "y", "Y", "true", "True", "TRUE"] {
            assert_eq!(r(t), Value::Bool(true), "{t}");
        }
        for f in ["no", "No", "NO", "off", "Off", "OFF", "n", "N", "false", "False", "FALSE"] {
            assert_eq!(r(f), Value::Bool(false), "{f}");
        }
        assert_eq!(r("yEs"), Value::Str("yEs".into()));
        assert_eq!(r("tRUE"), Value::Str("tRUE".into()));
    }

    #[test]
    fn nulls() {
        for n in ["", "~", "null", "Null", "NULL"] {
            assert_eq!(r(n), Value::Null);
        }
        assert_eq!(r("nULL"), Value::Str("nULL".into()));
    }

    #[test]
    fn integers_as_go_reads_them() {
        assert_eq!(r("42"), Value::Int(42));
        assert_eq!(r("-7"), Value::Int(-7));
        assert_eq!(r("+7"), Value::Int(7));
        assert_eq!(r("0755"), Value::Int(0o755));
        assert_eq!(r("0x1F"), Value::Int(31));
        assert_eq!(r("0o17"), Value::Int(15));
        assert_eq!(r("0b101"), Value::Int(5));
        assert_eq!(r("-0b101"), Value::Int(-5));
        assert_eq!(r("1_000"), Value::Int(1000));
        assert_eq!(r("-9223372036854775808"), Value::Int(i64::MIN));
        assert_eq!(r("18446744073709551615"), Value::Float(18446744073709551615u64 as f64));
        // Not an octal number, but a float by the float pattern.
        assert_eq!(r("08"), Value::Float(8.0));
    }

    #[test]
    fn floats_and_strings() {
        assert_eq!(r("1.5"), Value::Float(1.5));
        assert_eq!(r(".5"), Value::Float(0.5));
        assert_eq!(r("1e3"), Value::Float(1000.0));
        assert_eq!(r("1."), Value::Float(1.0));
        assert!(matches!(r(".nan"), Value::Float(f) if f.is_nan()));
        assert_eq!(r("-.inf"), Value::Float(f64::NEG_INFINITY));
        for s in ["1.2.3", "v1", "1e", "0x", "-", ".", "10m", "100Mi", "1:2", "0.0.0.0:8080"] {
            assert_eq!(r(s), Value::Str(s.into()), "{s}");
        }
    }

    #[test]
    fn tags() {
        assert_eq!(resolve_tagged("str", "yes"), Some(Value::Str("yes".into())));
        assert_eq!(resolve_tagged("int", "12"), Some(Value::Int(12)));
        assert_eq!(resolve_tagged("int", "abc"), None);
        assert_eq!(resolve_tagged("float", "2"), Some(Value::Float(2.0)));
        assert_eq!(resolve_tagged("bool", "on"), Some(Value::Bool(true)));
    }
}
