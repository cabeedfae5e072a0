//! Fuzzes the webhook's review path without the network: any body is either
//! refused as malformed (a 400) or answered with an AdmissionReview that
//! carries the request's uid — decoded, converted, planned against a cluster
//! state, judged, decided and encoded, with admissions recorded — and
//! nothing panics.

#![no_main]

use apiload_webhook::admission;
use apiload_webhook::cluster::Cluster;
use apiload_webhook::config::Analysis;
use apiload_webhook::decide::Mode;
use apiload_webhook::metrics::Metrics;
use apiload_webhook::review::{self, App, Prepared};
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use std::sync::Arc;

const STATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/webhook/state");

fn app(mode: Mode) -> App {
    let cluster = Arc::new(Cluster::new(true));
    apiload_webhook::static_state::load(&[STATE.to_string()], &cluster);
    let analysis = Analysis::load(None, &[], None).expect("default analysis");
    App::new(mode, analysis, cluster, Arc::new(Metrics::new()), 1)
}

thread_local! {
    // (runs since the state was fresh, the app): admissions accumulate in
    // the state, so it is renewed now and then to keep memory flat.
    static APP: RefCell<(u32, Option<App>)> = const { RefCell::new((0, None)) };
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(request) = admission::decode(bytes) else { return };
    let uid = request.uid.clone();
    APP.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.1.is_none() || cell.0 >= 512 {
            let mode = [Mode::Enforce, Mode::Warn, Mode::Audit][bytes.len() % 3];
            *cell = (0, Some(app(mode)));
        }
        cell.0 += 1;
        let app = cell.1.as_ref().unwrap();
        let answer = match review::prepare(request) {
            Prepared::Done(answer) => answer,
            Prepared::Judge(pending) => {
                let plan = app.cluster.read().plan(&pending.change, &app.analysis.profiles);
                let verdict = review::judge(app, plan);
                review::finish(app, pending, &verdict)
            }
        };
        assert_eq!(answer.response.uid, uid);
        assert_eq!(answer.response.allowed, answer.response.status.is_none());
        let encoded: serde_json::Value = serde_json::from_slice(&answer.response.encode()).expect("valid JSON");
        assert_eq!(encoded["response"]["uid"].as_str(), Some(uid.as_str()));
        let _ = app.metrics.render(&app.cluster);
    });
});
