//! One review, from body to answer: decode, convert the object, fetch the
//! ConfigMaps the analysis reads (live mode), plan against the cluster state,
//! judge, decide by mode, and remember what was admitted. No rule logic
//! lives here: the engine judges.
//!
//! One deadline covers all of it, from the request's arrival (reading the
//! body, waiting for a worker of the bounded [`Pool`], the ConfigMap reads,
//! the analysis): a review that misses it is allowed with a warning. An
//! object too large to analyse in time ([`ReviewLimits`]) is allowed with a
//! warning at once.

use crate::admission::{self, Decoded, Request, Response};
use crate::cluster::Cluster;
use crate::config::{Analysis, SOURCE_NEW, SOURCE_OLD};
use crate::convert;
use crate::decide::{self, Mode};
use crate::live::ConfigMaps;
use crate::metrics::Metrics;
use crate::pool::{self, Lane, Missed, Pool};
use apiload_rules::review::{Change, ObjectKey, Plan, Verdict};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Sizes past which a review is not analysed (allowed with a warning).
#[derive(Clone, Copy, Debug)]
pub struct ReviewLimits {
    /// JSON bytes of the object (or its old form). The API server refuses
    /// request bodies over 3 MiB and etcd objects over 1.5 MiB by default,
    /// so a larger object cannot be stored unless the cluster raised both.
    pub max_object_bytes: usize,
    /// Values in the object's tree (every scalar, list and map).
    pub max_object_fields: usize,
}

impl Default for ReviewLimits {
    fn default() -> ReviewLimits {
        ReviewLimits { max_object_bytes: 3 << 20, max_object_fields: 1_000_000 }
    }
}

/// Bodies up to this size are decoded on the request's task (microseconds);
/// larger ones on the pool's large lane.
pub const INLINE_DECODE_BYTES: usize = 64 * 1024;

/// Plans up to this many objects are judged on the request's task: the
/// reviews of bench.py's mix plan 3–10 objects and judge in about 130 µs
/// (BENCHMARKS.md), far below what a deadline guards against.
pub const INLINE_PLAN_OBJECTS: usize = 64;

/// Everything a review needs, shared by all requests.
pub struct App {
    pub mode: Mode,
    pub analysis: Analysis,
    pub cluster: Arc<Cluster>,
    pub metrics: Arc<Metrics>,
    /// Live mode: ConfigMaps are read on demand.
    pub config_maps: Option<ConfigMaps>,
    /// The deadline of one review, from its arrival.
    pub deadline: Duration,
    /// The analysis; [`judge`] except in tests of the failure paths.
    pub judge: Judge,
    pub pool: Pool,
    pub limits: ReviewLimits,
    /// Plans of at most this many objects are judged on the request's
    /// task; larger ones on the pool ([`INLINE_PLAN_OBJECTS`]; 0: all on
    /// the pool, as tests of the pool's deadline need).
    pub inline_plan_objects: usize,
}

impl App {
    /// An app with the engine's analysis and a pool of `workers`.
    pub fn new(mode: Mode, analysis: Analysis, cluster: Arc<Cluster>, metrics: Arc<Metrics>, workers: usize) -> App {
        App {
            mode,
            analysis,
            cluster,
            metrics,
            config_maps: None,
            deadline: Duration::from_secs(2),
            judge,
            pool: Pool::new(workers),
            limits: ReviewLimits::default(),
            inline_plan_objects: INLINE_PLAN_OBJECTS,
        }
    }
}

/// Runs the analysis of one planned change.
pub type Judge = fn(&App, Plan) -> Verdict;

/// The answer and what to log about it.
pub struct Answer {
    pub response: Response,
    pub decision: &'static str,
    pub kind: String,
    pub subject: String,
    pub findings: Vec<String>,
    /// Time spent waiting for a worker.
    pub queued: Duration,
    /// Who asked what, for the log.
    pub operation: String,
    pub user: String,
    pub dry_run: bool,
}

impl Answer {
    fn about(mut self, request: &Request) -> Answer {
        self.operation = request.operation.clone();
        self.user = request.user_info.as_ref().map(|u| u.username.clone()).unwrap_or_default();
        self.dry_run = request.is_dry_run();
        self
    }
}

fn allow_with(uid: &str, kind: &str, subject: String, decision: &'static str, warning: Option<String>) -> Answer {
    let mut response = Response::allow(uid);
    response.warnings.extend(warning);
    Answer {
        response,
        decision,
        kind: kind.to_string(),
        subject,
        findings: Vec::new(),
        queued: Duration::ZERO,
        operation: String::new(),
        user: String::new(),
        dry_run: false,
    }
}

/// A review that needs the analysis: the change, and who asked.
pub struct Pending {
    pub uid: String,
    pub kind: String,
    pub subject: String,
    pub dry_run: bool,
    pub change: Change,
}

/// What [`prepare`] makes of a request.
pub enum Prepared {
    /// Answered without analysis (not CREATE/UPDATE, a subresource, an
    /// object that is not a Kubernetes object).
    Done(Answer),
    Judge(Pending),
}

/// Turns a decoded request into a change to judge, or answers it outright.
pub fn prepare(request: Request) -> Prepared {
    let uid = request.uid.clone();
    let kind = request.kind.kind.clone();
    let subject = format!(
        "{} {}{}",
        kind,
        request.namespace.as_deref().map(|n| format!("{n}/")).unwrap_or_default(),
        request.name.as_deref().unwrap_or("")
    );
    if !matches!(request.operation.as_str(), "CREATE" | "UPDATE") {
        return Prepared::Done(allow_with(&uid, &kind, subject, "skipped", None));
    }
    if request.sub_resource.as_deref().is_some_and(|s| !s.is_empty()) {
        return Prepared::Done(allow_with(&uid, &kind, subject, "skipped", None));
    }
    let api_version = request.kind.api_version();
    let namespace = request.namespace.clone().unwrap_or_default();
    let dry_run = request.is_dry_run();
    let Some(object) = request.object.filter(|o| !o.is_null()) else {
        let warning = "apiload: the review has no object to analyse; allowed".to_string();
        return Prepared::Done(allow_with(&uid, &kind, subject, "not_analysed", Some(warning)));
    };
    let new = match convert::object(object, SOURCE_NEW, &api_version, &kind, &namespace) {
        Ok(o) => o,
        Err(e) => {
            let warning = format!("apiload: cannot analyse {subject}: {e}; allowed");
            return Prepared::Done(allow_with(&uid, &kind, subject, "not_analysed", Some(warning)));
        }
    };
    let old = request
        .old_object
        .filter(|o| !o.is_null())
        .and_then(|o| convert::object(o, SOURCE_OLD, &api_version, &kind, &namespace).ok());
    Prepared::Judge(Pending { uid, kind, subject: new.display(), dry_run, change: Change { old, new } })
}

/// Decides on a judged review and remembers what was admitted.
pub fn finish(app: &App, pending: Pending, verdict: &Verdict) -> Answer {
    let Pending { uid, kind, subject, dry_run, change } = pending;
    let d = decide::decide(&uid, &subject, app.mode, verdict);
    for (rule, outcome) in &d.outcomes {
        app.metrics.finding(rule, outcome.as_str());
    }
    let decision = if verdict.not_judged.is_some() {
        "not_analysed"
    } else if d.response.allowed {
        "allowed"
    } else {
        "denied"
    };
    if d.response.allowed && !dry_run {
        let watched = crate::kinds::is_watched(&change.new.kind);
        if let Some(cms) = &app.config_maps
            && &*change.new.kind == "ConfigMap"
        {
            cms.admitted(ObjectKey::of(&change.new));
        }
        app.cluster.record_admitted(change.new, watched);
    }
    let findings = verdict.findings.iter().map(|f| format!("{} {} {}", f.rule.id, f.severity, f.message)).collect();
    Answer {
        response: d.response,
        decision,
        kind,
        subject,
        findings,
        queued: Duration::ZERO,
        operation: String::new(),
        user: String::new(),
        dry_run,
    }
}

/// Why a body got no AdmissionReview back.
pub enum Refused {
    /// Not an AdmissionReview (400).
    Malformed(String),
    /// A large body could not even be decoded before the deadline: no
    /// `uid` to answer with (503; the API server applies the failurePolicy).
    Overloaded,
    /// A panic in the engine (500).
    Internal(String),
}

fn subject_of(request: &Request) -> String {
    format!(
        "{} {}{}",
        request.kind.kind,
        request.namespace.as_deref().map(|n| format!("{n}/")).unwrap_or_default(),
        request.name.as_deref().unwrap_or("")
    )
}

/// Values in a JSON tree, counted until `max` is passed.
fn fields_over(json: &serde_json::Value, max: usize) -> bool {
    let mut n = 0usize;
    let mut stack = vec![json];
    while let Some(v) = stack.pop() {
        n += 1;
        if n > max {
            return true;
        }
        match v {
            serde_json::Value::Array(items) => stack.extend(items),
            serde_json::Value::Object(map) => stack.extend(map.values()),
            _ => {}
        }
    }
    false
}

/// Decoding a large body, for the pool.
fn decode_job(body: axum::body::Bytes, max_bytes: usize) -> impl FnOnce() -> Result<Decoded, admission::DecodeError> {
    move || admission::decode_within(&body, max_bytes)
}

/// The whole review of a body, within `deadline`: decode, prepare, read the
/// ConfigMaps it needs (live mode), plan, judge, finish.
pub async fn review(app: Arc<App>, body: axum::body::Bytes, deadline: Instant) -> Result<Answer, Refused> {
    let lane = if body.len() > INLINE_DECODE_BYTES { Lane::Large } else { Lane::Small };
    let max_bytes = app.limits.max_object_bytes;
    let decoded = match lane {
        Lane::Small => admission::decode_within(&body, max_bytes),
        Lane::Large => match app.pool.run(lane, deadline, decode_job(body.clone(), max_bytes)).await {
            Ok(done) => done.value,
            // Not even decoded in time: allowed with a warning when the uid
            // can be read without decoding, else the failurePolicy decides.
            Err(Missed::Deadline) => match admission::peek_uid(&body) {
                Some(uid) => {
                    let warning = format!(
                        "apiload: the review ({} bytes) could not be taken up within {:?}; allowed",
                        body.len(),
                        app.deadline
                    );
                    return Ok(allow_with(&uid, "", String::new(), "deadline", Some(warning)));
                }
                None => return Err(Refused::Overloaded),
            },
            Err(Missed::Panicked(m)) => return Err(Refused::Internal(m)),
        },
    };
    let request = match decoded {
        Ok(Decoded::Review(r)) => r,
        Ok(Decoded::TooBig { request, bytes }) => {
            let subject = subject_of(&request);
            let warning = format!(
                "apiload: {subject} is {bytes} bytes of JSON, over the {max_bytes}-byte limit of analysis \
                 (--max-object-bytes); allowed without analysis"
            );
            return Ok(allow_with(&request.uid, &request.kind.kind, subject, "too_big", Some(warning)).about(&request));
        }
        Err(e) => return Err(Refused::Malformed(e.0)),
    };
    // Who asked what, for the log, whatever becomes of the review.
    let about = request.without_objects();
    let (uid, kind, subject) = (request.uid.clone(), request.kind.kind.clone(), subject_of(&request));
    let missed = |app: &App, queued: Duration| {
        let warning = format!("apiload: the review of {subject} did not finish within {:?}; allowed", app.deadline);
        let mut a = allow_with(&uid, &kind, subject.clone(), "deadline", Some(warning));
        a.queued = queued;
        a
    };
    // Convert and prepare: a small body on the request's task (its size
    // bounds the work), a large one on a worker.
    let max_fields = app.limits.max_object_fields;
    let prepare_job = {
        let app2 = app.clone();
        move || {
            if request.object.as_ref().is_some_and(|o| fields_over(o, max_fields))
                || request.old_object.as_ref().is_some_and(|o| fields_over(o, max_fields))
            {
                return Err(());
            }
            let prepared = prepare(request);
            let keys = match (&prepared, &app2.config_maps) {
                (Prepared::Judge(p), Some(_)) => {
                    app2.cluster.read().config_maps_read(&p.change, &app2.analysis.profiles)
                }
                _ => Vec::new(),
            };
            Ok((prepared, keys))
        }
    };
    let prepared = match lane {
        Lane::Small => pool::inline(deadline, prepare_job),
        Lane::Large => app.pool.run(lane, deadline, prepare_job).await,
    };
    let (pending, keys, mut queued) = match prepared {
        Ok(done) => match done.value {
            Ok((Prepared::Done(answer), _)) => return Ok(Answer { queued: done.queued, ..answer }.about(&about)),
            Ok((Prepared::Judge(p), keys)) => (p, keys, done.queued),
            Err(()) => {
                let warning = format!(
                    "apiload: {subject} has more than {max_fields} values (--max-object-fields); allowed without analysis"
                );
                let mut a = allow_with(&uid, &kind, subject.clone(), "too_big", Some(warning));
                a.queued = done.queued;
                return Ok(a.about(&about));
            }
        },
        Err(Missed::Deadline) => return Ok(missed(&app, Duration::ZERO).about(&about)),
        Err(Missed::Panicked(m)) => return Err(Refused::Internal(format!("the analysis of {subject} failed: {m}"))),
    };
    if let Some(cms) = &app.config_maps
        && !keys.is_empty()
    {
        cms.refresh(&keys, &app.cluster, &app.metrics, deadline).await;
    }
    let judged = judge_on_task_or_pool(&app, lane, pending, deadline).await;
    match judged {
        Ok(done) => {
            queued += done.queued;
            Ok(Answer { queued, ..done.value }.about(&about))
        }
        Err(Missed::Deadline) => Ok(missed(&app, queued).about(&about)),
        Err(Missed::Panicked(m)) => Err(Refused::Internal(format!("the analysis of {subject} failed: {m}"))),
    }
}

/// Plans and judges a prepared review. A small review of a kind whose plan
/// stays local is planned on the request's task, and judged there too when
/// its plan is small ([`App::inline_plan_objects`]); everything else —
/// large bodies, roles and bindings (whose plans can hold every workload of
/// the cluster), large plans — on the pool, under the deadline.
async fn judge_on_task_or_pool(
    app: &Arc<App>,
    lane: Lane,
    pending: Pending,
    deadline: Instant,
) -> Result<pool::Done<Answer>, Missed> {
    if lane == Lane::Large || may_concern_every_workload(&pending.change.new.kind) {
        let app2 = app.clone();
        return app
            .pool
            .run(lane, deadline, move || {
                let plan = app2.cluster.read().plan(&pending.change, &app2.analysis.profiles);
                let verdict = (app2.judge)(&app2, plan);
                finish(&app2, pending, &verdict)
            })
            .await;
    }
    let plan = pool::inline(deadline, || app.cluster.read().plan(&pending.change, &app.analysis.profiles))?.value;
    let inline = plan.size() <= app.inline_plan_objects;
    let judge = {
        let app2 = app.clone();
        move || {
            let verdict = (app2.judge)(&app2, plan);
            finish(&app2, pending, &verdict)
        }
    };
    if inline { pool::inline(deadline, judge) } else { app.pool.run(lane, deadline, judge).await }
}

/// Kinds whose change can concern any workload of the cluster: a role or
/// a binding (to `system:authenticated`, say) reaches every workload its
/// principals run, so planning it is not bounded by the review's size.
fn may_concern_every_workload(kind: &str) -> bool {
    matches!(kind, "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding")
}

/// Analyses a plan (made under the state's read lock; this runs without it).
pub fn judge(app: &App, plan: Plan) -> Verdict {
    let profiles = &app.analysis.profiles;
    let options = app.analysis.options_for(app.cluster.nodes());
    let exemptions = app.analysis.exemptions_on(apiload_rules::setup::today());
    plan.judge(&app.analysis.sources, profiles, &options, &exemptions)
}
