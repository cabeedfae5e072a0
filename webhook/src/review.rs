//! One review, from decoded request to answer: convert the object, fetch the
//! ConfigMaps the analysis reads (live mode), plan against the cluster state,
//! judge off the async runtime within the deadline, decide by mode, and
//! remember what was admitted. No rule logic lives here: the engine judges.

use crate::admission::{Request, Response};
use crate::cluster::Cluster;
use crate::config::{Analysis, SOURCE_NEW, SOURCE_OLD};
use crate::convert;
use crate::decide::{self, Mode};
use crate::live::ConfigMaps;
use crate::metrics::Metrics;
use apiload_rules::review::{Change, ObjectKey, Plan, Verdict};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Everything a review needs, shared by all requests.
pub struct App {
    pub mode: Mode,
    pub analysis: Analysis,
    pub cluster: Arc<Cluster>,
    pub metrics: Arc<Metrics>,
    /// Live mode: ConfigMaps are read on demand.
    pub config_maps: Option<ConfigMaps>,
    pub deadline: Duration,
    /// The analysis; [`judge`] except in tests of the failure paths.
    pub judge: Judge,
    /// Plans of at most this many objects are judged on the request's own
    /// task (a few hundred microseconds); larger ones (a binding to
    /// `system:authenticated` reaches every workload) go to the blocking
    /// pool, where the deadline can cut them short.
    pub inline_limit: usize,
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
}

/// An internal failure (a panic in the engine): the caller answers 500 and
/// the API server applies the webhook's failurePolicy.
pub struct Internal(pub String);

fn allow_with(uid: &str, kind: &str, subject: String, decision: &'static str, warning: Option<String>) -> Answer {
    let mut response = Response::allow(uid);
    response.warnings.extend(warning);
    Answer { response, decision, kind: kind.to_string(), subject, findings: Vec::new() }
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
    Answer { response: d.response, decision, kind, subject, findings }
}

/// The whole review: prepare, read the ConfigMaps it needs (live mode),
/// plan, judge within the deadline, finish.
pub async fn review(app: Arc<App>, request: Request) -> Result<Answer, Internal> {
    let deadline = Instant::now() + app.deadline;
    let pending = match prepare(request) {
        Prepared::Done(answer) => return Ok(answer),
        Prepared::Judge(p) => p,
    };
    if let Some(cms) = &app.config_maps {
        let keys = app.cluster.read().config_maps_read(&pending.change, &app.analysis.profiles);
        cms.refresh(&keys, &app.cluster, &app.metrics, deadline).await;
    }
    let plan = app.cluster.read().plan(&pending.change, &app.analysis.profiles);
    let missed = |pending: Pending, app: &App| {
        let warning =
            format!("apiload: the review of {} did not finish within {:?}; allowed", pending.subject, app.deadline);
        allow_with(&pending.uid, &pending.kind, pending.subject, "deadline", Some(warning))
    };
    if plan.size() <= app.inline_limit {
        if Instant::now() >= deadline {
            return Ok(missed(pending, &app));
        }
        let judged = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (app.judge)(&app, plan)));
        return match judged {
            Ok(verdict) => Ok(finish(&app, pending, &verdict)),
            Err(_) => Err(Internal(format!("the analysis of {} failed", pending.subject))),
        };
    }
    let judged = {
        let app = app.clone();
        tokio::task::spawn_blocking(move || (app.judge)(&app, plan))
    };
    match tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), judged).await {
        Ok(Ok(verdict)) => Ok(finish(&app, pending, &verdict)),
        Ok(Err(e)) => Err(Internal(format!("the analysis of {} failed: {e}", pending.subject))),
        Err(_) => Ok(missed(pending, &app)),
    }
}

/// Analyses a plan (made under the state's read lock; this runs without it).
pub fn judge(app: &App, plan: Plan) -> Verdict {
    let profiles = &app.analysis.profiles;
    let options = app.analysis.options_for(app.cluster.nodes());
    let exemptions = app.analysis.exemptions_on(apiload::setup::today());
    plan.judge(&app.analysis.sources, profiles, &options, &exemptions)
}
