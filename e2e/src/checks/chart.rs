//! The chart on a real API server: every values combination the chart's
//! tests render (charts/tests/render.py, Helm v4) server-side applied with
//! strict field validation, read back, and removed.

use crate::manifests::{self, group_of, kind_of};
use crate::{Result, Suite, ensure};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The chart rendered once per run, by the chart tests' own renderer.
pub async fn rendered(s: &mut Suite) -> Result<&apiload_chart_tests::Rendered> {
    if s.chart.is_none() {
        let dir = s.work("chart-render");
        let r = tokio::task::spawn_blocking(move || {
            std::panic::catch_unwind(|| apiload_chart_tests::render(&dir))
                .map_err(|p| p.downcast_ref::<String>().cloned().unwrap_or_else(|| "render.py failed".to_string()))
        })
        .await
        .map_err(|e| e.to_string())??;
        s.chart = Some(r);
    }
    Ok(s.chart.as_ref().expect("rendered above"))
}

/// Whether the API server serves `group` (the core group always).
pub async fn group_served(client: &kube::Client, group: &str) -> Result<bool> {
    if group.is_empty() {
        return Ok(true);
    }
    let req = http::Request::get(format!("/apis/{group}")).body(Vec::new()).map_err(|e| e.to_string())?;
    match client.request_text(req).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(false),
        Err(e) => Err(format!("discovery of {group}: {e}")),
    }
}

/// Server-side applies `objects` with kubectl, strict field validation,
/// and fails on any error or warning the server sends.
pub async fn apply(s: &Suite, label: &str, objects: &[&Value]) -> Result<()> {
    let file = s.work(&format!("apply-{label}.yaml"));
    std::fs::write(&file, manifests::stream(objects)).map_err(|e| e.to_string())?;
    let path = file.display().to_string();
    let out = s
        .kubectl
        .ok(
            &[
                "apply",
                "--server-side",
                "--field-manager=apiload-e2e",
                "--force-conflicts",
                "--validate=strict",
                "-f",
                &path,
            ],
            None,
        )
        .await?;
    let warnings = out.warnings();
    ensure!(warnings.is_empty(), "{label}: the API server warned:\n{}", warnings.join("\n"));
    let applied = out.stdout.lines().filter(|l| l.ends_with("serverside-applied")).count();
    ensure!(applied == objects.len(), "{label}: {applied} of {} objects applied:\n{}", objects.len(), out.stdout);
    Ok(())
}

pub async fn ensure_namespace(s: &Suite, name: &str) -> Result<()> {
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    let text = ns.to_string();
    s.kubectl.ok(&["apply", "--server-side", "--field-manager=apiload-e2e", "-f", "-"], Some(&text)).await.map(|_| ())
}

pub async fn every_values_combination_applies(s: &mut Suite) -> Result<()> {
    let cases: Vec<(String, String, String)> =
        rendered(s).await?.cases.iter().map(|c| (c.name.clone(), c.namespace.clone(), c.manifest.clone())).collect();
    ensure!(cases.len() >= 9, "only {} values combinations rendered", cases.len());
    let mut served_groups = BTreeMap::new();
    let mut not_applied: BTreeMap<String, usize> = BTreeMap::new();
    let mut applied = 0;
    for (name, namespace, manifest) in &cases {
        let docs = manifests::documents(name, manifest)?;
        let mut objects = Vec::new();
        for d in &docs {
            let group = group_of(d).to_string();
            if !served_groups.contains_key(&group) {
                served_groups.insert(group.clone(), group_served(&s.admin, &group).await?);
            }
            if served_groups[&group] {
                objects.push(d);
            } else {
                *not_applied.entry(format!("{}.{group}", kind_of(d))).or_default() += 1;
            }
        }
        ensure!(
            objects.iter().any(|o| kind_of(o) == "ValidatingWebhookConfiguration"),
            "{name}: no webhook configuration"
        );
        ensure_namespace(s, namespace).await?;
        apply(s, &format!("chart-{name}"), &objects).await?;
        // Read back what the server stored, then remove it before the next
        // combination (the `everything` case fails closed: it must not stay).
        let file = s.work(&format!("apply-chart-{name}.yaml")).display().to_string();
        let got = s.kubectl.ok(&["get", "-f", &file, "-o", "name"], None).await?;
        ensure!(
            got.stdout.lines().count() == objects.len(),
            "{name}: read back {} of {}",
            got.stdout.lines().count(),
            objects.len()
        );
        s.kubectl.ok(&["delete", "-f", &file, "--wait=true", "--timeout=60s"], None).await?;
        applied += objects.len();
    }
    eprintln!(
        "e2e:      {} values combinations, {applied} objects applied; not applied (no CRD on this server): {not_applied:?}",
        cases.len()
    );
    s.measured.insert("chart_objects_applied".into(), applied.into());
    s.measured.insert("chart_objects_not_applied".into(), json!(not_applied));
    Ok(())
}
