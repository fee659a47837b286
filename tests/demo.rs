//! `make demo` works and tells the story: the demo script runs end to end against its own
//! control plane, and what it prints is what a newcomer should see.
//!
//! It runs the operator as a process (`LIAISON_DEMO_NODE=0`): fast, no root, no node. The
//! operator as a pod on a node, installed by the chart (what `make demo` does where it can), is
//! `make e2e`'s.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn the_demo_tells_the_story_and_cleans_up() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = repo.join("target/testenv").join(format!("demo-{}", std::process::id()));
    let script = repo.join("scripts/demo");
    let out = Command::new(&script)
        .arg("up")
        .arg(&dir)
        .env("LIAISON_BIN", env!("CARGO_BIN_EXE_liaison"))
        .env("LIAISON_DEMO_NODE", "0")
        .output()
        .expect("running scripts/demo up");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let down = Command::new(&script).arg("down").arg(&dir).status().expect("running scripts/demo down");
    assert!(out.status.success(), "scripts/demo up failed:\n{text}");
    assert!(down.success(), "scripts/demo down failed");
    assert!(!dir.exists(), "demo down removes its directory");

    assert!(
        text.contains("The operator will run as a process on this host, not as a pod: LIAISON_DEMO_NODE=0."),
        "the demo says how the operator runs, and why:\n{text}"
    );
    assert!(text.contains("the operator runs AS A PROCESS on this host"), "{text}");

    let before_revocation = text.split("8/8").next().unwrap();
    let after_revocation = text.split("8/8").nth(1).unwrap();
    for line in [
        "User:bob@techhelp.example                         beta     support   beta-support",
        "ServiceAccount:partner-techhelp/ticket-bot        beta     tickets   beta-tickets",
        "bob may list pods in beta:    yes",
        "bob may read secrets in beta: no",
    ] {
        assert!(before_revocation.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(
        before_revocation.contains("access key (Secret liaison-key-beta-"),
        "the partner sees its access key:\n{text}"
    );
    // The summaries are shown once they have followed the grants: one client, two grants.
    let row =
        |prefix: &str| before_revocation.lines().find(|l| l.starts_with(prefix) && l.contains(" True "));
    let summary = |prefix: &str| row(prefix).map(|l| l.split_whitespace().collect::<Vec<_>>());
    let partner = summary("partner.liaison.dev/techhelp").unwrap_or_default();
    assert_eq!(partner.get(3), Some(&"1"), "the partner counts its client:\n{text}");
    let link = summary("beta        clientlink.liaison.dev/techhelp").unwrap_or_default();
    assert_eq!(link.get(3), Some(&"2"), "the link counts its grants:\n{text}");
    assert!(after_revocation.contains("bob may list pods in beta:    no"), "{text}");
    assert!(after_revocation.contains("0 objects left"), "{text}");
    assert!(after_revocation.contains("(no access)"), "{text}");
}
