//! The RBAC oracle: the engine's resolution (apiload-rules' `Rbac` index,
//! read from the same manifests `apiload lint` reads) against the API
//! server's own authorizer, asked with SubjectAccessReviews, on at least
//! 10,000 (ServiceAccount, verb, resource, namespace) questions.
//!
//! The manifests: `../shared/tools/gen-scale-corpus.py --objects 10000`
//! (RBAC, ServiceAccounts, workloads, ConfigMaps; its Services are left out,
//! they add nothing to RBAC) and e2e/fixtures/rbac/ (aggregation, groups,
//! resourceNames, wildcards, subresources).

use crate::checks::SKIP;
use crate::checks::chart::ensure_namespace;
use crate::manifests::{self, kind_of, namespace_of};
use crate::{Result, Suite, ensure};
use apiload_rules::rbac::{PolicyRule, Rbac, Scope, SubjectKind};
use futures::StreamExt;
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, PostParams};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// How many questions the oracle asks at least.
pub const MIN_QUESTIONS: usize = 10_000;

/// One question: may this ServiceAccount do this?
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Question {
    pub sa_namespace: String,
    pub sa_name: String,
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    /// "" asks about every namespace (or a cluster-scoped resource).
    pub namespace: String,
    /// "" asks about the collection.
    pub name: String,
}

impl std::fmt::Display for Question {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let res = if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        };
        let group = if self.group.is_empty() { "core" } else { &self.group };
        write!(
            f,
            "sa {}/{} {} {group}/{res} in {:?} name {:?}",
            self.sa_namespace, self.sa_name, self.verb, self.namespace, self.name
        )
    }
}

/// The engine's answer, from its index: a grant whose scope covers the
/// namespace and whose role (after aggregation) has a rule matching the
/// verb, group, resource/subresource and name, as the authorizer matches.
pub fn engine_allows(rbac: &Rbac, q: &Question) -> bool {
    rbac.grants_of_service_account(&q.sa_namespace, &q.sa_name).iter().any(|g| {
        let in_scope = match g.scope {
            Scope::Cluster => true,
            Scope::Namespace(ns) => !q.namespace.is_empty() && ns == q.namespace,
        };
        in_scope
            && g.role.is_some_and(|r| {
                rbac.rules(r).any(|(_, rule)| {
                    rule.allows_verb(&q.verb)
                        && rule.allows_group(&q.group)
                        && rule.allows_resource(&q.resource, &q.subresource)
                        && (rule.resource_names.is_empty()
                            || (!q.name.is_empty() && rule.resource_names.iter().any(|n| **n == *q.name)))
                })
            })
    })
}

/// Resources the questions ask about besides those the manifests' rules
/// name: (group, resource, subresource, cluster-scoped).
const EXTRA_RESOURCES: &[(&str, &str, &str, bool)] = &[
    ("", "pods", "", false),
    ("", "pods", "log", false),
    ("", "pods", "exec", false),
    ("", "secrets", "", false),
    ("", "configmaps", "", false),
    ("", "services", "", false),
    ("", "endpoints", "", false),
    ("", "events", "", false),
    ("", "serviceaccounts", "token", false),
    ("", "nodes", "", true),
    ("", "nodes", "proxy", true),
    ("", "namespaces", "", true),
    ("", "persistentvolumes", "", true),
    ("apps", "deployments", "", false),
    ("apps", "deployments", "scale", false),
    ("apps", "daemonsets", "", false),
    ("apps", "statefulsets", "scale", false),
    ("apps", "replicasets", "", false),
    ("batch", "jobs", "", false),
    ("coordination.k8s.io", "leases", "", false),
    ("discovery.k8s.io", "endpointslices", "", false),
    ("events.k8s.io", "events", "", false),
    ("rbac.authorization.k8s.io", "clusterroles", "", true),
    ("rbac.authorization.k8s.io", "rolebindings", "", false),
    ("example.apiload.dev", "widgets", "", false),
    ("metrics.k8s.io", "pods", "", false),
];

const VERBS: &[&str] = &["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"];

/// Resources that are cluster-scoped, for resources named by the manifests' rules.
fn cluster_scoped(group: &str, resource: &str) -> bool {
    matches!(
        (group, resource),
        ("", "nodes" | "namespaces" | "persistentvolumes" | "componentstatuses")
            | ("rbac.authorization.k8s.io", "clusterroles" | "clusterrolebindings")
            | ("apiextensions.k8s.io", "customresourcedefinitions")
            | ("storage.k8s.io", "storageclasses" | "csinodes" | "csidrivers" | "volumeattachments")
            | ("admissionregistration.k8s.io", _)
            | ("certificates.k8s.io", "certificatesigningrequests")
            | ("scheduling.k8s.io", "priorityclasses")
            | ("flowcontrol.apiserver.k8s.io", _)
            | ("apiregistration.k8s.io", _)
            | ("node.k8s.io", "runtimeclasses")
            | ("networking.k8s.io", "ingressclasses" | "ipaddresses" | "servicecidrs")
    )
}

/// A small deterministic generator (xorshift64*), so that a failing run
/// can be repeated question for question.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

/// A resource a question can name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Res {
    group: String,
    resource: String,
    subresource: String,
    cluster: bool,
}

/// The questions: for every ServiceAccount, questions about what its own
/// grants mention (so that many answers are "allowed") and about anything
/// else (so that many are "denied"), in its namespace, another namespace,
/// every namespace, and by name where a rule names objects.
fn questions(rbac: &Rbac, accounts: &[(String, String)], namespaces: &[String], min: usize) -> Vec<Question> {
    let mut universe: BTreeSet<Res> = EXTRA_RESOURCES
        .iter()
        .map(|(g, r, s, c)| Res {
            group: g.to_string(),
            resource: r.to_string(),
            subresource: s.to_string(),
            cluster: *c,
        })
        .collect();
    let mut names: BTreeSet<String> = BTreeSet::new();
    for (_, role) in rbac.roles() {
        for rule in &role.rules {
            for g in rule.api_groups.iter().filter(|g| &***g != "*") {
                for r in rule.resources.iter().filter(|r| &***r != "*" && !r.starts_with("*/")) {
                    let (resource, sub) = r.split_once('/').unwrap_or((r, ""));
                    universe.insert(Res {
                        group: g.to_string(),
                        resource: resource.to_string(),
                        subresource: sub.to_string(),
                        cluster: cluster_scoped(g, resource),
                    });
                }
            }
            names.extend(rule.resource_names.iter().map(|n| n.to_string()));
        }
    }
    let universe: Vec<Res> = universe.into_iter().collect();
    let names: Vec<String> = names.into_iter().chain(["not-a-named-object".to_string()]).collect();
    let mut rng = Rng(0x5eed_0017);
    let mut out = BTreeSet::new();
    let mut round = 0;
    while out.len() < min && round < 50 {
        round += 1;
        for (ns, sa) in accounts {
            // The rules this account's grants reach, with the grant's scope;
            // its own bindings first (every account shares the groups' ones).
            let grants = rbac.grants_of_service_account(ns, sa);
            let own: Vec<_> = grants.iter().filter(|g| !matches!(g.subject.kind, SubjectKind::Group(_))).collect();
            let chosen = if own.is_empty() { grants.iter().collect() } else { own };
            let mut reached: Vec<(Option<String>, &PolicyRule)> = Vec::new();
            for g in chosen {
                let scope = match g.scope {
                    Scope::Cluster => None,
                    Scope::Namespace(n) => Some(n.to_string()),
                };
                if let Some(r) = g.role {
                    reached.extend(rbac.rules(r).map(|(_, rule)| (scope.clone(), rule)));
                }
            }
            for focused in [true, true, false, false] {
                let q = if focused && !reached.is_empty() {
                    let (scope, rule) = rng.pick(&reached).clone();
                    focused_question(&mut rng, ns, sa, scope, rule, &universe)
                } else {
                    random_question(&mut rng, ns, sa, &universe, namespaces, &names)
                };
                out.insert(q);
            }
        }
    }
    out.into_iter().collect()
}

fn pick_word(rng: &mut Rng, words: &[Box<str>], otherwise: &str) -> String {
    let w = rng.pick(words);
    if &**w == "*" { otherwise.to_string() } else { w.to_string() }
}

/// A question about what one rule the account reaches names: its verbs,
/// groups, resources and names, in the grant's namespace (or, for a
/// cluster-wide grant, every namespace or the account's own).
fn focused_question(
    rng: &mut Rng,
    ns: &str,
    sa: &str,
    scope: Option<String>,
    rule: &PolicyRule,
    universe: &[Res],
) -> Question {
    let any = rng.pick(universe).clone();
    let any_verb = *rng.pick(VERBS);
    let verb = pick_word(rng, &rule.verbs, any_verb);
    let group = pick_word(rng, &rule.api_groups, &any.group);
    let res = pick_word(rng, &rule.resources, &any.resource);
    let (resource, subresource) = match res.split_once('/') {
        Some(("*", sub)) => (any.resource.clone(), sub.to_string()),
        Some((r, sub)) => (r.to_string(), sub.to_string()),
        None => (res, String::new()),
    };
    let namespace = match scope {
        Some(n) => n,
        None if cluster_scoped(&group, &resource) || rng.next().is_multiple_of(2) => String::new(),
        None => ns.to_string(),
    };
    let name = if !rule.resource_names.is_empty() && !rng.next().is_multiple_of(4) {
        rng.pick(&rule.resource_names).to_string()
    } else {
        String::new()
    };
    Question { sa_namespace: ns.into(), sa_name: sa.into(), verb, group, resource, subresource, namespace, name }
}

/// A question about anything, anywhere.
fn random_question(
    rng: &mut Rng,
    ns: &str,
    sa: &str,
    universe: &[Res],
    namespaces: &[String],
    names: &[String],
) -> Question {
    let res = rng.pick(universe).clone();
    let verb = rng.pick(VERBS).to_string();
    let namespace = if res.cluster {
        String::new()
    } else {
        match rng.next() % 4 {
            0 => String::new(),
            1 => rng.pick(namespaces).clone(),
            _ => ns.to_string(),
        }
    };
    let name = if matches!(verb.as_str(), "list" | "watch" | "create" | "deletecollection") {
        String::new()
    } else if rng.next().is_multiple_of(3) {
        rng.pick(names).clone()
    } else {
        String::new()
    };
    Question {
        sa_namespace: ns.into(),
        sa_name: sa.into(),
        verb,
        group: res.group,
        resource: res.resource,
        subresource: res.subresource,
        namespace,
        name,
    }
}

/// The authorizer's answer: (allowed, reason).
async fn ask(client: &kube::Client, q: &Question) -> Result<(bool, String)> {
    let sar = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(format!("system:serviceaccount:{}:{}", q.sa_namespace, q.sa_name)),
            // The groups the ServiceAccount token authenticator gives.
            groups: Some(vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{}", q.sa_namespace),
                "system:authenticated".into(),
            ]),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(q.verb.clone()),
                group: Some(q.group.clone()),
                resource: Some(q.resource.clone()),
                subresource: Some(q.subresource.clone()).filter(|s| !s.is_empty()),
                namespace: Some(q.namespace.clone()).filter(|s| !s.is_empty()),
                name: Some(q.name.clone()).filter(|s| !s.is_empty()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<SubjectAccessReview> = Api::all(client.clone());
    let mut tries = 0;
    loop {
        match api.create(&PostParams::default(), &sar).await {
            Ok(r) => {
                let st = r.status.unwrap_or_default();
                return Ok((st.allowed, st.reason.unwrap_or_default()));
            }
            // APF may ask a burst to come back later.
            Err(kube::Error::Api(e)) if e.code == 429 && tries < 10 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(200 * tries)).await;
            }
            Err(e) => return Err(format!("SubjectAccessReview for {q}: {e}")),
        }
    }
}

/// Applies files with kubectl, a few at once.
async fn apply_files(s: &Suite, files: &[std::path::PathBuf]) -> Result<usize> {
    let results: Vec<Result<usize>> = futures::stream::iter(files.iter().map(|f| {
        let kubectl = s.kubectl.clone();
        let path = f.display().to_string();
        async move {
            let out = kubectl
                .ok(&["apply", "--server-side", "--field-manager=apiload-e2e", "--force-conflicts", "-f", &path], None)
                .await?;
            Ok(out.stdout.lines().filter(|l| l.ends_with("serverside-applied")).count())
        }
    }))
    .buffer_unordered(3)
    .collect()
    .await;
    results.into_iter().sum()
}

/// Waits until the aggregation controller has filled every aggregated
/// ClusterRole and nothing changes for a few seconds.
async fn aggregation_settled(s: &Suite, names: &[String]) -> Result<()> {
    let api: Api<ClusterRole> = Api::all(s.admin.clone());
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last: Option<BTreeMap<String, String>> = None;
    loop {
        let mut now = BTreeMap::new();
        for n in names {
            let r = api.get(n).await.map_err(|e| format!("ClusterRole {n}: {e}"))?;
            now.insert(n.clone(), serde_json::to_string(&r.rules).unwrap_or_default());
        }
        if last.as_ref() == Some(&now) {
            return Ok(());
        }
        last = Some(now);
        ensure!(Instant::now() < deadline, "the aggregated ClusterRoles did not settle in 120 s");
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

pub async fn oracle_agrees_with_the_authorizer(s: &mut Suite) -> Result<()> {
    let Some(shared) = s.shared.clone() else {
        return Err(format!("{SKIP}../shared is absent: no corpus to load"));
    };
    let corpus = super::scale_corpus(s, &shared).await?;

    // The files, as the engine reads them and as kubectl will apply them.
    let mut texts = Vec::new();
    let mut entries: Vec<_> =
        std::fs::read_dir(&corpus).map_err(|e| e.to_string())?.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries.iter().filter(|p| p.extension().is_some_and(|x| x == "yaml")) {
        texts.push((p.display().to_string(), std::fs::read_to_string(p).map_err(|e| e.to_string())?));
    }
    let fixtures = s.args.repo.join("e2e/fixtures/rbac");
    let mut fixture_files: Vec<_> =
        std::fs::read_dir(&fixtures).map_err(|e| e.to_string())?.flatten().map(|e| e.path()).collect();
    fixture_files.sort();
    for p in &fixture_files {
        texts.push((p.display().to_string(), std::fs::read_to_string(p).map_err(|e| e.to_string())?));
    }

    let mut namespaces = BTreeSet::new();
    let mut to_apply = Vec::new();
    let mut accounts = BTreeSet::new();
    let mut aggregating = Vec::new();
    let apply_dir = s.work("oracle-apply");
    std::fs::create_dir_all(&apply_dir).map_err(|e| e.to_string())?;
    for (i, (name, text)) in texts.iter().enumerate() {
        let docs = manifests::documents(name, text)?;
        let mut keep = Vec::new();
        for d in &docs {
            if let Some(ns) = namespace_of(d) {
                namespaces.insert(ns.to_string());
            }
            match kind_of(d) {
                "Service" => continue,
                "Namespace" => {
                    namespaces.insert(manifests::name_of(d).to_string());
                    continue;
                }
                "ServiceAccount" => {
                    accounts
                        .insert((namespace_of(d).unwrap_or("default").to_string(), manifests::name_of(d).to_string()));
                }
                "ClusterRole" if d.get("aggregationRule").is_some() => {
                    aggregating.push(manifests::name_of(d).to_string())
                }
                _ => {}
            }
            keep.push(d);
        }
        let path = apply_dir.join(format!("{i:03}.yaml"));
        std::fs::write(&path, manifests::stream(&keep)).map_err(|e| e.to_string())?;
        to_apply.push(path);
    }
    for ns in &namespaces {
        ensure_namespace(s, ns).await?;
    }
    let t = Instant::now();
    let applied = apply_files(s, &to_apply).await?;
    let load_seconds = t.elapsed().as_secs_f64();
    eprintln!(
        "e2e:      {applied} objects server-side applied in {load_seconds:.0} s ({} namespaces)",
        namespaces.len()
    );
    ensure!(applied >= 8_000, "only {applied} objects applied");
    aggregating.extend(["admin", "edit", "view"].map(String::from));
    aggregation_settled(s, &aggregating).await?;

    let (_sources, objects) = manifests::engine_objects(&texts)?;
    let mut diagnostics = Vec::new();
    let rbac = Rbac::build(&objects, &mut diagnostics);
    ensure!(
        diagnostics.is_empty(),
        "the engine refused RBAC objects: {:?}",
        diagnostics.iter().map(|d| &d.message).take(5).collect::<Vec<_>>()
    );
    // Every subject the bindings name, the built-in controllers' accounts,
    // and one account no binding names.
    for b in rbac.bindings() {
        for subj in &b.subjects {
            if let Some(apiload_rules::rbac::Principal::ServiceAccount { namespace, name }) =
                apiload_rules::rbac::Principal::of(&subj.kind)
                && !namespace.is_empty()
            {
                accounts.insert((namespace.to_string(), name.to_string()));
            }
        }
    }
    accounts.insert(("oracle-a".into(), "nobody-binds-me".into()));
    let accounts: Vec<(String, String)> = accounts.into_iter().collect();
    let namespaces: Vec<String> = namespaces.into_iter().collect();
    let qs = questions(&rbac, &accounts, &namespaces, MIN_QUESTIONS);
    ensure!(qs.len() >= MIN_QUESTIONS, "only {} distinct questions", qs.len());

    let t = Instant::now();
    let client = s.admin.clone();
    let answers: Vec<Result<(bool, String)>> =
        futures::stream::iter(qs.iter().map(|q| ask(&client, q))).buffered(16).collect().await;
    let ask_seconds = t.elapsed().as_secs_f64();
    let mut mismatches = Vec::new();
    let mut allowed = 0;
    for (q, a) in qs.iter().zip(answers) {
        let (server, reason) = a?;
        allowed += usize::from(server);
        let engine = engine_allows(&rbac, q);
        if engine != server {
            mismatches.push(format!("{q}: server {server} ({reason}), engine {engine}"));
        }
    }
    let report = s.work("rbac-oracle.txt");
    let _ = std::fs::write(&report, mismatches.join("\n"));
    eprintln!(
        "e2e:      {} questions ({allowed} allowed, {} denied) about {} ServiceAccounts in {ask_seconds:.0} s: {} mismatches",
        qs.len(),
        qs.len() - allowed,
        accounts.len(),
        mismatches.len()
    );
    s.measured.insert(
        "rbac_oracle".into(),
        serde_json::json!({
            "objects_applied": applied, "load_seconds": load_seconds, "questions": qs.len(), "allowed": allowed,
            "service_accounts": accounts.len(), "ask_seconds": ask_seconds, "mismatches": mismatches.len(),
        }),
    );
    // The fixtures grant broadly (every ServiceAccount may list
    // EndpointSlices): remove them so that later checks see only the corpus.
    for p in &fixture_files {
        let path = p.display().to_string();
        s.kubectl.ok(&["delete", "-f", &path, "--ignore-not-found", "--wait=false"], None).await?;
    }
    ensure!(
        mismatches.is_empty(),
        "{} answers differ from the authorizer's (all in {}):\n{}",
        mismatches.len(),
        report.display(),
        mismatches.iter().take(25).cloned().collect::<Vec<_>>().join("\n")
    );
    ensure!(
        allowed > qs.len() / 10 && allowed < qs.len() * 9 / 10,
        "a lopsided sample: {allowed} of {} allowed",
        qs.len()
    );
    Ok(())
}
