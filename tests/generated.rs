//! Generated artefacts stay in step with the code that generates them.

use std::path::PathBuf;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn crds_directory_matches_liaison_crds() {
    for (name, text) in liaison::crdgen::files().unwrap() {
        let committed = std::fs::read_to_string(repo("crds").join(&name)).unwrap_or_default();
        assert!(committed == text, "crds/{name} is out of date: run `make crds`");
    }
    let on_disk = std::fs::read_dir(repo("crds")).unwrap().count();
    assert_eq!(on_disk, liaison::crdgen::files().unwrap().len(), "crds/ holds a file no CRD generates");
}

#[test]
fn chart_crds_match_liaison_crds() {
    for (name, text) in liaison::crdgen::files().unwrap() {
        let committed =
            std::fs::read_to_string(repo("charts/liaison/files/crds").join(&name)).unwrap_or_default();
        assert!(committed == text, "charts/liaison/files/crds/{name} is out of date: run `make crds`");
    }
}
