//! Prometheus text exposition, as the API server's and the webhook's
//! `/metrics` serve it: samples with their labels, summed by filter.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let (name, labels, rest) = match line.find('{') {
        Some(open) => {
            let close = line.rfind('}')?;
            (&line[..open], parse_labels(&line[open + 1..close])?, &line[close + 1..])
        }
        None => {
            let (n, r) = line.split_once(' ')?;
            (n, BTreeMap::new(), r)
        }
    };
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample { name: name.to_string(), labels, value })
}

fn parse_labels(text: &str) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let key = rest[..eq].trim().trim_start_matches(',').trim().to_string();
        let after = rest[eq + 1..].strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = Some(i);
                    break;
                }
                c => value.push(c),
            }
        }
        let end = end?;
        out.insert(key, value);
        rest = after[end + 1..].trim_start_matches(',').trim();
    }
    Some(out)
}

/// The sum of the samples named `name` whose labels include every pair of `filter`.
pub fn sum(samples: &[Sample], name: &str, filter: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name && filter.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
        .map(|s| s.value)
        .sum()
}

/// `after - before` of [`sum`].
pub fn delta(before: &[Sample], after: &[Sample], name: &str, filter: &[(&str, &str)]) -> f64 {
    sum(after, name, filter) - sum(before, name, filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP apiserver_watch_events_total [ALPHA] Number of events sent in watch clients
# TYPE apiserver_watch_events_total counter
apiserver_watch_events_total{component="apiserver",group="",kind="Pod",version="v1"} 120
apiserver_watch_events_total{component="apiserver",group="",kind="Node",version="v1"} 7
apiserver_response_sizes_sum{component="apiserver",group="",resource="pods",scope="cluster",subresource="",verb="LIST",version="v1"} 1.5e+06
process_resident_memory_bytes 2.5e+08
weird{a="x\"y",b="c,d"} +Inf
"#;

    #[test]
    fn sums_by_labels() {
        let s = parse(TEXT);
        assert_eq!(s.len(), 5);
        assert_eq!(sum(&s, "apiserver_watch_events_total", &[]), 127.0);
        assert_eq!(sum(&s, "apiserver_watch_events_total", &[("kind", "Pod")]), 120.0);
        assert_eq!(sum(&s, "apiserver_response_sizes_sum", &[("verb", "LIST"), ("resource", "pods")]), 1.5e6);
        assert_eq!(sum(&s, "process_resident_memory_bytes", &[]), 2.5e8);
        assert_eq!(s[4].labels["a"], "x\"y");
        assert_eq!(s[4].labels["b"], "c,d");
        assert!(s[4].value.is_infinite());
    }
}
