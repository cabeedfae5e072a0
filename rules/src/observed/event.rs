//! One audit event as the engine reads it, and what its request URI says.
//!
//! The front end decodes the `audit.k8s.io/v1` Event (JSON lines written by
//! `--audit-log-path`) and hands over the fields below, borrowed from its
//! line. The schema is `Event` in
//! `staging/src/k8s.io/apiserver/pkg/apis/audit/v1/types.go`: `stage`,
//! `auditID`, `requestURI` (the query included), `verb`, `user`
//! (`authentication/v1.UserInfo`: `username`, `extra`), `sourceIPs`,
//! `userAgent`, `objectRef` (`resource`, `subresource`, `namespace`, `name`,
//! `apiGroup`; absent for non-resource requests), `responseStatus.code`,
//! `requestReceivedTimestamp` and `stageTimestamp` (`metav1.MicroTime`,
//! RFC 3339 with microseconds). All of them are logged at the Metadata level.

/// `Stage` of `audit.k8s.io/v1`: where in the request's handling the event
/// was written. Long-running requests (watches, `exec`, `log -f`) get a
/// `ResponseStarted` event when they begin and a `ResponseComplete` one when
/// they end; other requests `ResponseComplete` only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    RequestReceived,
    ResponseStarted,
    ResponseComplete,
    Panic,
}

impl Stage {
    pub fn parse(s: &str) -> Option<Stage> {
        Some(match s {
            "RequestReceived" => Stage::RequestReceived,
            "ResponseStarted" => Stage::ResponseStarted,
            "ResponseComplete" => Stage::ResponseComplete,
            "Panic" => Stage::Panic,
            _ => return None,
        })
    }
}

/// The fields of one audit event that say what was called, by whom.
#[derive(Clone, Copy, Debug)]
pub struct Event<'a> {
    pub stage: Stage,
    pub audit_id: &'a str,
    /// The Kubernetes verb (`list`, `watch`, `get`, …), or the lower-cased
    /// HTTP method of a non-resource request.
    pub verb: &'a str,
    pub request_uri: &'a str,
    pub username: &'a str,
    /// `user.extra["authentication.kubernetes.io/pod-name"]`: the pod a bound
    /// ServiceAccount token was issued for (every projected token).
    pub pod_name: Option<&'a str>,
    /// `user.extra["authentication.kubernetes.io/node-name"]`: the node of
    /// that pod (Kubernetes 1.30+, ServiceAccountTokenPodNodeInfo). Both keys
    /// are defined in `staging/src/k8s.io/apiserver/pkg/authentication/serviceaccount/util.go`.
    pub node_name: Option<&'a str>,
    /// The last of `sourceIPs`: the connection's address.
    pub source_ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub object_ref: Option<ObjectRef<'a>>,
    /// `responseStatus.code`.
    pub code: Option<u16>,
    pub request_received: &'a str,
    pub stage_timestamp: &'a str,
}

/// `objectRef` of an event: what the request is about. For a LIST or WATCH
/// with a `metadata.name=` field selector the API server sets `name` from the
/// selector (`RequestInfoFactory.NewRequestInfo`,
/// `staging/src/k8s.io/apiserver/pkg/endpoints/request/requestinfo.go`).
#[derive(Clone, Copy, Debug, Default)]
pub struct ObjectRef<'a> {
    pub resource: &'a str,
    pub subresource: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    /// Empty for the core group.
    pub api_group: &'a str,
}

/// `system:serviceaccount:NS:NAME` → `(NS, NAME)`
/// (`MakeUsername` in the serviceaccount package above).
pub fn service_account(username: &str) -> Option<(&str, &str)> {
    let rest = username.strip_prefix("system:serviceaccount:")?;
    let (ns, name) = rest.split_once(':')?;
    (!ns.is_empty() && !name.is_empty() && !name.contains(':')).then_some((ns, name))
}

/// What a LIST asked of the resource version (kubernetes.io, "API
/// Concepts", semantics for get and list): `resourceVersion` unset is the
/// most recent state (a consistent read, from etcd before
/// ConsistentListFromCache); `"0"` is any state, served by the watch cache;
/// another value is "not older than" it, or exactly it with
/// `resourceVersionMatch=Exact` (or, without a match, when the LIST is
/// paginated by `limit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ListSemantics {
    MostRecent,
    Any,
    NotOlderThan,
    Exact,
}

impl ListSemantics {
    pub fn as_str(self) -> &'static str {
        match self {
            ListSemantics::MostRecent => "unset",
            ListSemantics::Any => "0",
            ListSemantics::NotOlderThan => "not-older-than",
            ListSemantics::Exact => "exact",
        }
    }
}

/// What the request URI says beyond `objectRef`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Query {
    pub path: String,
    pub field_selector: Option<String>,
    pub label_selector: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
    pub limit: bool,
    pub continue_token: bool,
}

impl Query {
    /// Reads a request URI (`/api/v1/pods?fieldSelector=spec.nodeName%3Dn1&resourceVersion=0`).
    pub fn parse(uri: &str) -> Query {
        let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
        let mut q = Query { path: path.to_string(), ..Query::default() };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "fieldSelector" => q.field_selector = Some(percent_decode(value)).filter(|s| !s.is_empty()),
                "labelSelector" => q.label_selector = Some(percent_decode(value)).filter(|s| !s.is_empty()),
                "resourceVersion" => q.resource_version = Some(percent_decode(value)),
                "resourceVersionMatch" => q.resource_version_match = Some(percent_decode(value)),
                "limit" => q.limit = value != "0" && !value.is_empty(),
                "continue" => q.continue_token = !value.is_empty(),
                _ => {}
            }
        }
        q
    }

    /// The semantics of a LIST with this query.
    pub fn list_semantics(&self) -> ListSemantics {
        match (self.resource_version.as_deref(), self.resource_version_match.as_deref()) {
            (None | Some(""), _) => ListSemantics::MostRecent,
            (Some("0"), _) => ListSemantics::Any,
            (Some(_), Some("Exact")) => ListSemantics::Exact,
            (Some(_), Some(_)) => ListSemantics::NotOlderThan,
            // Before KEP-2523's resourceVersionMatch, a paginated LIST at a
            // resource version was exact.
            (Some(_), None) if self.limit => ListSemantics::Exact,
            (Some(_), None) => ListSemantics::NotOlderThan,
        }
    }
}

/// Percent-decoding of a query value (`+` is a space, as Go's
/// `url.ParseQuery` reads it). Invalid escapes are kept as they are.
pub fn percent_decode(v: &str) -> String {
    if !v.contains(['%', '+']) {
        return v.to_string();
    }
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// One requirement of a field or label selector: `key=value`, `key==value`,
/// `key!=value`, or (labels) a set-based one kept as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    /// `=` (also for `==`), `!=`, or empty for a set-based or existence requirement.
    pub op: &'static str,
    pub value: String,
    /// The requirement as written, for set-based ones.
    pub text: String,
}

/// Splits a selector into its requirements, at commas outside parentheses
/// (`env in (a,b),tier=web`). Field selector values escape commas as `\,`.
pub fn requirements(selector: &str) -> Vec<Requirement> {
    let mut parts = Vec::new();
    let (mut depth, mut start, mut escaped) = (0i32, 0usize, false);
    for (i, c) in selector.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth <= 0 => {
                parts.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&selector[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (key, op, value) = if let Some((k, v)) = p.split_once("!=") {
                (k, "!=", v)
            } else if let Some((k, v)) = p.split_once("==") {
                (k, "=", v)
            } else if let Some((k, v)) = p.split_once('=') {
                (k, "=", v)
            } else {
                (p, "", "")
            };
            Requirement { key: key.trim().into(), op, value: value.trim().into(), text: p.into() }
        })
        .collect()
}

/// RFC 3339 (`2026-12-01T22:54:36.354200Z`, or with a `+hh:mm` offset) as
/// seconds since the Unix epoch.
pub fn timestamp_seconds(t: &str) -> Option<f64> {
    let b = t.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, min, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || h > 23 || min > 59 || s > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac = 0.0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let mut scale = 0.1;
        while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            frac += f64::from(c - b'0') * scale;
            scale /= 10.0;
            i += 1;
        }
    }
    let offset = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if b.len() == i + 6 && b[i + 3] == b':' => {
            let o = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            if sign == b'+' { o } else { -o }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's `days_from_civil`).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3_600 + min * 60 + s - offset) as f64 + frac)
}

/// Seconds since the epoch as RFC 3339 in UTC, to the second.
pub fn format_timestamp(secs: f64) -> String {
    let total = secs.floor() as i64;
    let (days, rem) = (total.div_euclid(86_400), total.rem_euclid(86_400));
    // `civil_from_days`.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_uri() {
        let q = Query::parse(
            "/api/v1/pods?&fieldSelector=spec.nodeName%3Dnode-0000&resourceVersion=0&resourceVersionMatch=NotOlderThan",
        );
        assert_eq!(q.path, "/api/v1/pods");
        assert_eq!(q.field_selector.as_deref(), Some("spec.nodeName=node-0000"));
        assert_eq!(q.list_semantics(), ListSemantics::Any);
        assert_eq!(Query::parse("/api/v1/pods?limit=500").list_semantics(), ListSemantics::MostRecent);
        assert_eq!(Query::parse("/api/v1/pods?limit=500&resourceVersion=12").list_semantics(), ListSemantics::Exact);
        assert_eq!(
            Query::parse("/api/v1/pods?resourceVersion=12&resourceVersionMatch=Exact").list_semantics(),
            ListSemantics::Exact
        );
        assert_eq!(Query::parse("/api/v1/pods?resourceVersion=12").list_semantics(), ListSemantics::NotOlderThan);
    }

    #[test]
    fn decoding_keeps_what_it_cannot_read() {
        assert_eq!(percent_decode("a%3Db+c"), "a=b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%E2%9C%93"), "✓");
        assert_eq!(percent_decode("%FF"), "\u{fffd}");
    }

    #[test]
    fn selector_requirements() {
        let r = requirements("spec.nodeName=n1,status.phase!=Succeeded");
        assert_eq!((r[0].key.as_str(), r[0].op, r[0].value.as_str()), ("spec.nodeName", "=", "n1"));
        assert_eq!((r[1].key.as_str(), r[1].op, r[1].value.as_str()), ("status.phase", "!=", "Succeeded"));
        let l = requirements("env in (a,b),tier==web,!canary");
        assert_eq!(l.len(), 3);
        assert_eq!((l[0].op, l[0].text.as_str()), ("", "env in (a,b)"));
        assert_eq!((l[1].key.as_str(), l[1].op), ("tier", "="));
        assert_eq!((l[2].op, l[2].text.as_str()), ("", "!canary"));
        assert!(requirements("").is_empty());
    }

    #[test]
    fn service_account_users() {
        assert_eq!(service_account("system:serviceaccount:ns:agent"), Some(("ns", "agent")));
        assert_eq!(service_account("system:node:n1"), None);
        assert_eq!(service_account("system:serviceaccount:ns"), None);
        assert_eq!(service_account("system:serviceaccount:a:b:c"), None);
    }

    #[test]
    fn timestamps() {
        assert_eq!(timestamp_seconds("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(timestamp_seconds("2026-12-01T21:30:00.500000Z"), Some(1_796_160_600.5));
        assert_eq!(timestamp_seconds("2026-12-01T22:30:00.5+01:00"), Some(1_796_160_600.5));
        assert_eq!(timestamp_seconds("2026-12-01T21:30:00"), None);
        assert_eq!(timestamp_seconds("yesterday"), None);
        assert_eq!(timestamp_seconds("2026-13-01T21:30:00Z"), None);
        assert_eq!(format_timestamp(1_796_160_600.5), "2026-12-01T21:30:00Z");
        assert_eq!(format_timestamp(951_868_801.0), "2000-03-01T00:00:01Z");
    }
}
