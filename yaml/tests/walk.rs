//! The one walker (`files::walk`) on the trees that used to hurt: symbolic
//! link cycles, self-links, FIFOs, and a repository with a Helm chart and a
//! Kustomize overlay next to plain manifests.

#![cfg(unix)]

use apiload_yaml::files::{Skip, Walk, not_a_manifest, read_regular_bounded, walk};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "apiload-walk-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    fn walk(&self) -> Walk {
        walk(&[self.0.display().to_string()])
    }

    fn rel(&self, p: &Path) -> String {
        p.strip_prefix(&self.0).unwrap().display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const SA: &str = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: a\n";

fn mkfifo(p: &Path) {
    let ok = Command::new("mkfifo").arg(p).status().expect("mkfifo").success();
    assert!(ok, "mkfifo {}", p.display());
}

#[test]
fn a_link_back_to_a_parent_is_reported_once_and_each_file_read_once() {
    let s = Scratch::new("cycle");
    s.write("a.yaml", SA);
    s.write("sub/b.yaml", SA);
    symlink(".", s.0.join("loop")).unwrap();
    symlink("..", s.0.join("sub/up")).unwrap();
    let w = s.walk();
    let files: Vec<String> = w.files.iter().map(|f| s.rel(f)).collect();
    assert_eq!(files, ["a.yaml", "sub/b.yaml"]);
    let skipped: Vec<(String, &str)> = w.skipped.iter().map(|k| (s.rel(&k.path), k.why.code())).collect();
    assert_eq!(skipped, [("loop".to_string(), "link-cycle"), ("sub/up".to_string(), "link-cycle")]);
    assert!(w.errors.is_empty(), "{:?}", w.errors);
}

#[test]
fn self_links_do_not_make_the_walk_exponential() {
    // Three links to the folder itself: without a record of real folders each
    // level multiplies the walk by three.
    let s = Scratch::new("self");
    s.write("x.yaml", SA);
    for l in ["l1", "l2", "l3"] {
        symlink(&s.0, s.0.join(l)).unwrap();
    }
    let started = Instant::now();
    let w = s.walk();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(w.files.len(), 1, "{:?}", w.files);
    assert_eq!(w.skipped.len(), 3, "{:?}", w.skipped);
    assert!(w.skipped.iter().all(|k| matches!(k.why, Skip::LinkCycle(_))), "{:?}", w.skipped);
}

#[test]
fn a_link_to_a_folder_read_elsewhere_is_read_once() {
    let s = Scratch::new("twice");
    s.write("base/x.yaml", SA);
    symlink(s.0.join("base"), s.0.join("alias")).unwrap();
    symlink(s.0.join("base/x.yaml"), s.0.join("x-link.yaml")).unwrap();
    let w = s.walk();
    // Found under its own name, though `alias` sorts first.
    let files: Vec<String> = w.files.iter().map(|f| s.rel(f)).collect();
    assert_eq!(files, ["base/x.yaml"]);
    let skipped: Vec<(String, &str)> = w.skipped.iter().map(|k| (s.rel(&k.path), k.why.code())).collect();
    assert_eq!(skipped, [("alias".to_string(), "already-read"), ("x-link.yaml".to_string(), "already-read")]);
}

#[test]
fn links_into_a_folder_that_another_link_reaches_read_each_folder_once() {
    let s = Scratch::new("nested-links");
    let outside = Scratch::new("outside");
    outside.write("x/y.yaml", SA);
    outside.write("x/c/z.yaml", SA);
    symlink(outside.0.join("x/c"), s.0.join("a-inner")).unwrap();
    symlink(outside.0.join("x"), s.0.join("b-outer")).unwrap();
    let w = s.walk();
    let files: Vec<String> = w.files.iter().map(|f| s.rel(f)).collect();
    assert_eq!(files, ["a-inner/z.yaml", "b-outer/y.yaml"], "{:?}", w.skipped);
    assert_eq!(w.skipped.len(), 1, "b-outer/c was read as a-inner: {:?}", w.skipped);
}

#[test]
fn fifos_in_a_folder_are_skipped_with_a_note_and_never_opened() {
    let s = Scratch::new("fifo");
    s.write("a.yaml", SA);
    mkfifo(&s.0.join("pipe.yaml"));
    mkfifo(&s.0.join("other-pipe"));
    // A walk that opened the FIFO would block here for ever; bound it.
    let (tx, rx) = std::sync::mpsc::channel();
    let root = s.0.display().to_string();
    std::thread::spawn(move || {
        let _ = tx.send(walk(&[root]));
    });
    let w = rx.recv_timeout(Duration::from_secs(20)).expect("the walk blocked on a FIFO");
    assert_eq!(w.files.len(), 1);
    assert_eq!(w.skipped.len(), 1, "only the one named like a manifest is worth a note: {:?}", w.skipped);
    assert_eq!(w.skipped[0].why, Skip::NotAFile("a FIFO"));
    assert!(w.skipped[0].why.is_notable());
    // And the reader for servers refuses one named explicitly, without waiting on it.
    let err = read_regular_bounded(&s.0.join("pipe.yaml"), 1024).unwrap_err();
    assert!(err.to_string().contains("a FIFO"), "{err}");
}

#[test]
fn a_repository_with_a_chart_and_a_kustomization_yields_only_its_manifests() {
    let s = Scratch::new("repo");
    s.write("deploy/app.yaml", SA);
    s.write("deploy/kustomization.yaml", "resources: [app.yaml]\n");
    s.write("overlays/prod/kustomization.yml", "resources: [../../deploy]\n");
    s.write("overlays/prod/patch.yaml", SA);
    s.write("charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n");
    s.write("charts/web/values.yaml", "replicas: 2\n");
    s.write("charts/web/values-prod.yaml", "replicas: 5\n");
    s.write("charts/web/values.schema.json", "{}\n");
    s.write("charts/web/templates/deployment.yaml", "apiVersion: apps/v1\nkind: Deployment\n{{ .Values.x }}\n");
    s.write("charts/web/crds/crd.yaml", SA);
    s.write("docker-compose.yml", "services: {}\n");
    s.write("mkdocs.yml", "site_name: x\n");
    s.write(".github/workflows/ci.yml", "on: push\n");
    s.write("node_modules/x/package.json", "{}\n");
    // Outside a chart, values files are manifests like any other.
    s.write("values.yaml", SA);
    let w = s.walk();
    let files: Vec<String> = w.files.iter().map(|f| s.rel(f)).collect();
    assert_eq!(files, ["charts/web/crds/crd.yaml", "deploy/app.yaml", "overlays/prod/patch.yaml", "values.yaml"]);
    let mut skipped: Vec<(String, &str)> = w.skipped.iter().map(|k| (s.rel(&k.path), k.why.code())).collect();
    skipped.sort();
    assert_eq!(
        skipped,
        [
            ("charts/web/Chart.yaml".to_string(), "helm-chart"),
            ("charts/web/templates".to_string(), "helm-chart"),
            ("charts/web/values-prod.yaml".to_string(), "helm-chart"),
            ("charts/web/values.schema.json".to_string(), "helm-chart"),
            ("charts/web/values.yaml".to_string(), "helm-chart"),
            ("deploy/kustomization.yaml".to_string(), "kustomize"),
            ("docker-compose.yml".to_string(), "other-tool"),
            ("mkdocs.yml".to_string(), "other-tool"),
            ("overlays/prod/kustomization.yml".to_string(), "kustomize"),
        ]
    );
    assert!(w.skipped.iter().all(|k| !k.why.is_notable()), "counted, not noted");

    // Named explicitly (as a pre-commit hook names changed files), the same rules hold.
    for (name, code) in [
        ("charts/web/Chart.yaml", Some("helm-chart")),
        ("charts/web/templates/deployment.yaml", Some("helm-chart")),
        ("deploy/kustomization.yaml", Some("kustomize")),
        (".github/workflows/ci.yml", Some("other-tool")),
        ("deploy/app.yaml", None),
        ("values.yaml", None),
    ] {
        assert_eq!(not_a_manifest(&s.0.join(name)).map(|k| k.code()), code, "{name}");
        let w = walk(&[s.0.join(name).display().to_string()]);
        assert_eq!(w.files.is_empty(), code.is_some(), "{name}");
    }
}

#[test]
fn a_dangling_link_is_an_error_only_where_a_manifest_was_expected() {
    let s = Scratch::new("dangling");
    s.write("a.yaml", SA);
    symlink(s.0.join("gone.yaml"), s.0.join("b.yaml")).unwrap();
    symlink(s.0.join("gone"), s.0.join("build")).unwrap();
    let w = s.walk();
    assert_eq!(w.files.len(), 1);
    assert_eq!(w.errors.len(), 1, "{:?}", w.errors);
    assert!(w.errors[0].path.ends_with("b.yaml"));
}
