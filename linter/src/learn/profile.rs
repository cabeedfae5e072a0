//! Profiles learned from the log (`apiload learn --out DIR`): one per
//! workload image, in the profile format of docs/profiles.md, matched by the
//! image's repository and saying what the workload was seen to call, so that
//! `apiload lint --profiles DIR` knows the agent without its audit log.

use super::{Entry, copies_phrase};
use apiload_rules::calls::{ApiCall, CallScope};
use apiload_rules::observed::{Observations, Seen, event::format_timestamp};
use apiload_rules::profile::ProfileSet;
use apiload_rules::source::{Location, SourceId};
use std::collections::BTreeMap;
use std::path::Path;

/// Id prefix of learned profiles: a profile with it may be replaced by a
/// new learning, one without is someone's knowledge of the agent.
const PREFIX: &str = "learned-";

/// Writes a profile for every entry's image into `dir`; records the file
/// (or why there is none) in each entry.
pub fn write_all(dir: &Path, entries: &mut [Entry<'_>], o: &Observations) -> Result<(), ()> {
    let mut by_image: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, e) in entries.iter_mut().enumerate() {
        let Some(w) = &e.workload else { continue };
        let Some(image) = &w.image else {
            e.profile = Some(Err("its containers name no image".into()));
            continue;
        };
        if let Some(run) = w
            .analysis
            .behaviour
            .agents
            .iter()
            .find(|r| *r.container == *w.container && !r.profile.id.starts_with(PREFIX))
        {
            e.profile = Some(Err(format!(
                "its image is recognised by profile `{}` ({}), which reads the agent's configuration; a learned profile would replace it for every workload of that agent. `apiload lint --audit-log` joins the observation with the profile instead",
                run.profile.id, run.profile.name
            )));
            continue;
        }
        let repo = apiload_rules::profile::context::split_image(image).0.to_string();
        by_image.entry(repo).or_default().push(i);
    }
    if by_image.is_empty() {
        return Ok(());
    }
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("error: cannot create {}: {e}", dir.display());
        return Err(());
    }
    let today = apiload_rules::setup::today();
    let mut ids: Vec<String> = Vec::new();
    let mut failed = false;
    for (repo, members) in by_image {
        let mut id = format!("{PREFIX}{}", kebab(repo.rsplit('/').next().unwrap_or(&repo)));
        let base = id.clone();
        let mut n = 2;
        while ids.contains(&id) {
            id = format!("{base}-{n}");
            n += 1;
        }
        ids.push(id.clone());
        let text = render(&id, &repo, &members.iter().map(|&i| &entries[i]).collect::<Vec<_>>(), o, &today);
        let path = dir.join(format!("{id}.yaml"));
        // What is written must read back as a profile, as `--profiles` will.
        let result = match ProfileSet::builtin().add_text(&path.display().to_string(), &text) {
            Err(errors) => Err(format!("the learned profile does not read back: {errors:?}")),
            Ok(()) => std::fs::write(&path, &text)
                .map(|_| path.clone())
                .map_err(|e| format!("cannot write {}: {e}", path.display())),
        };
        if let Err(e) = &result {
            eprintln!("error: {e}");
            failed = true;
        }
        for &i in &members {
            entries[i].profile = Some(result.clone());
        }
    }
    if failed { Err(()) } else { Ok(()) }
}

fn kebab(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').to_string();
    if out.is_empty() { "agent".into() } else { out }
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn nowhere() -> Location {
    Location::new(SourceId(0), apiload_yaml::Span::new(0, 0))
}

/// The calls one entry's copies were seen to make, as the engine models them.
fn calls_of(e: &Entry<'_>, o: &Observations) -> Vec<ApiCall> {
    Seen { account: e.account, source: &o.source, copies: e.copies.clone() }.api_calls(nowhere())
}

/// Whether an observed request shape is one the call was made of.
fn made(seen: &apiload_rules::observed::ObservedCall, call: &ApiCall) -> bool {
    let s = &seen.shape;
    seen.allowed()
        && s.path.is_none()
        && s.subresource.is_empty()
        && s.group == call.group
        && s.resource == call.resource
        && matches!(&*s.verb, "list" | "watch" | "get")
        && std::mem::discriminant(&seen.scope()) == std::mem::discriminant(&call.scope)
}

fn signature(calls: &[ApiCall]) -> Vec<String> {
    let mut v: Vec<String> = calls
        .iter()
        .map(|c| {
            let o = c.origin.as_ref();
            format!(
                "{} {} {} {} {:?} {:?} {:?} {:?}",
                c.display(),
                c.list,
                c.watch,
                c.get,
                c.scope,
                o.map(|o| o.central),
                o.and_then(|o| o.every).map(|e| e.round() as i64),
                o.map(|o| o.consistent_list)
            )
        })
        .collect();
    v.sort();
    v
}

fn render(id: &str, repo: &str, members: &[&Entry<'_>], o: &Observations, today: &str) -> String {
    let (from, to) = members
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(f, t), e| (f.min(e.account.first), t.max(e.account.last)));
    let window = format!("{} to {}", format_timestamp(from), format_timestamp(to));
    let names: Vec<String> = members.iter().filter_map(|e| e.workload.as_ref().map(|w| w.display.clone())).collect();
    let calls: Vec<Vec<ApiCall>> = members.iter().map(|e| calls_of(e, o)).collect();
    let same = calls.windows(2).all(|w| signature(&w[0]) == signature(&w[1]));
    let mut y = String::new();
    y.push_str("# Learned by `apiload learn` from the API server's audit log: what the workloads below were\n");
    y.push_str("# seen to call, and nothing else. Edit it as any profile (docs/profiles.md); learning again\n");
    y.push_str("# replaces it.\n");
    y.push_str(&format!("#   log:       {}\n#   requests:  {window}\n#   learned:   {today}\n", o.source));
    for e in members {
        if let Some(w) = &e.workload {
            y.push_str(&format!(
                "#   workload:  {} (ServiceAccount {}, container {}), {} seen\n",
                w.display,
                e.account.display(),
                w.container,
                copies_phrase(e.account, e.copies.len())
            ));
        }
    }
    y.push_str(&format!("id: {id}\n"));
    let short = repo.rsplit('/').next().unwrap_or(repo);
    y.push_str(&format!("name: {}\n", quote(&format!("{short} (learned)"))));
    y.push_str(&format!(
        "description: {}\n",
        quote(&format!(
            "What {} was seen to call in the audit log {} ({window}); learned on {today}.",
            names.join(", "),
            o.source
        ))
    ));
    y.push_str(&format!("sources:\n  - {}\n", quote(&format!("audit log {}, {window}", o.source))));
    y.push_str(&format!("match:\n  images: [{}]\n", quote(repo)));
    let mut uses: Vec<(String, String, Option<String>, Vec<&ApiCall>)> = Vec::new();
    let groups: Vec<(usize, &Vec<ApiCall>)> =
        if same { vec![(0, &calls[0])] } else { calls.iter().enumerate().collect() };
    for (i, cs) in groups {
        let e = members[i];
        let (use_id, what, when) = match (&e.workload, same) {
            (Some(w), false) => (
                kebab(&format!("{}-{}", w.kind, w.name)),
                format!("client of {} seen in the audit log", w.display),
                Some(format!(
                    "{{all: [{{path: \"$.workload.kind\", equals: {}}}, {{path: \"$.workload.name\", equals: {}}}]}}",
                    quote(&w.kind),
                    quote(&w.name)
                )),
            ),
            _ => ("observed".to_string(), "client seen in the audit log".to_string(), None),
        };
        let (central, per_copy): (Vec<&ApiCall>, Vec<&ApiCall>) =
            cs.iter().partition(|c| c.origin.as_ref().is_some_and(|o| o.central));
        uses.push((use_id.clone(), what.clone(), when.clone(), per_copy));
        if !central.is_empty() {
            uses.push((format!("{use_id}-leader"), format!("{what}, as the elected leader"), when, central));
        }
    }
    if uses.iter().all(|(_, _, _, cs)| cs.is_empty()) {
        y.push_str("# No LIST, WATCH or GET of a collection's objects was seen.\nuses: []\n");
        return y;
    }
    y.push_str("uses:\n");
    for (use_id, what, when, cs) in uses {
        if cs.is_empty() {
            continue;
        }
        y.push_str(&format!("  - id: {use_id}\n    description: {}\n", quote(&what)));
        if let Some(w) = when {
            y.push_str("    # Other workloads of this image were seen to call otherwise.\n");
            y.push_str(&format!("    when: {w}\n"));
        }
        if use_id.ends_with("-leader") {
            y.push_str("    # One pod of several made these calls, and the pods hold a Lease: the leader.\n");
            y.push_str("    central_when: {path: \"$.workload.kind\"}\n");
        }
        y.push_str("    calls:\n");
        for c in cs {
            let o = c.origin.as_ref();
            for e in members {
                for seen in e.calls.iter().filter(|s| made(s, c)) {
                    let node = seen.node.as_ref().map_or(String::new(), |n| format!("; node scope: {}", n.describe()));
                    y.push_str(&format!(
                        "      # {}: {}{node}\n",
                        seen.describe(),
                        super::summary::rates(e.account, seen)
                    ));
                }
            }
            y.push_str(&format!("      - resource: {}\n", c.display()));
            let verbs: Vec<&str> = [("list", c.list), ("watch", c.watch), ("get", c.get)]
                .iter()
                .filter(|(_, on)| *on)
                .map(|(v, _)| *v)
                .collect();
            y.push_str(&format!("        verbs: [{}]\n", verbs.join(", ")));
            match &c.scope {
                CallScope::Cluster => {}
                CallScope::Node => y.push_str("        scope: node\n"),
                CallScope::Object => y.push_str("        scope: object\n"),
                CallScope::Namespaces(ns) => {
                    let own = members
                        .iter()
                        .all(|e| e.workload.as_ref().is_some_and(|w| ns.len() == 1 && *ns[0] == *w.namespace));
                    if !own {
                        // The format names namespaces by a path into the
                        // workload; one namespace costs what one does.
                        y.push_str(&format!(
                            "        # seen in namespace{} {}; written as the workload's own, as the format names namespaces only by a path into the workload\n",
                            if ns.len() == 1 { "" } else { "s" },
                            ns.join(", ")
                        ));
                    }
                    y.push_str("        namespaces: \"$.workload.namespace\"\n");
                }
            }
            if let Some(every) = o.and_then(|o| o.every) {
                y.push_str(&format!("        every: {}\n", (every * 10.0).round() / 10.0));
            }
            if o.is_some_and(|o| o.consistent_list) {
                y.push_str("        # Its LISTs left resourceVersion unset: the most recent state, a quorum read before 1.31.\n");
                y.push_str("        consistent_list_when: {path: \"$.workload.kind\"}\n");
            }
        }
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_kebab_case() {
        assert_eq!(kebab("Node_Agent.v2"), "node-agent-v2");
        assert_eq!(kebab("..."), "agent");
    }
}
