//! Text helpers every layer uses: number formatting and glob matching.

/// `5000` → `5,000`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `*` matches any run of characters, `?` one character; case-sensitive.
/// Works on bytes (images and names are ASCII; `?` then matches one byte).
pub fn glob(pattern: &str, text: &str) -> bool {
    // Fast paths for the shapes profiles use (`*suffix`, `prefix*`,
    // `*middle*`, literal): every container is matched against every pattern.
    let inner = |s: &str| !s.contains(['*', '?']);
    match (pattern.strip_prefix('*'), pattern.strip_suffix('*')) {
        (Some(rest), _) if inner(rest) => return text.ends_with(rest),
        (None, Some(rest)) if inner(rest) => return text.starts_with(rest),
        (Some(rest), Some(_)) if !rest.is_empty() && inner(&rest[..rest.len() - 1]) => {
            return text.contains(&rest[..rest.len() - 1]);
        }
        (None, None) if inner(pattern) => return text == pattern,
        _ => {}
    }
    glob_general(pattern, text)
}

fn glob_general(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(5000), "5,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    mod glob_fast_paths {
        use super::super::{glob, glob_general};
        use proptest::prelude::*;

        #[test]
        fn shapes_profiles_use() {
            assert!(glob("*cilium/cilium", "quay.io/cilium/cilium"));
            assert!(!glob("*cilium/cilium", "quay.io/cilium/operator"));
            assert!(glob("otelcol*", "otelcol-contrib"));
            assert!(glob("*fluentd*", "docker.io/fluent/fluentd-kubernetes-daemonset"));
            assert!(glob("kube-proxy", "kube-proxy"));
            assert!(!glob("kube-proxy", "kube-proxy2"));
            assert!(glob("*", ""));
            assert!(glob("**", "x"));
            assert!(glob("a*b?c", "axxbyc"));
        }

        proptest! {
            /// The fast paths agree with the general matcher.
            #[test]
            fn fast_paths_agree(pattern in "[ab*?]{0,6}", text in "[ab]{0,8}") {
                prop_assert_eq!(glob(&pattern, &text), glob_general(&pattern, &text));
            }
        }
    }
}
