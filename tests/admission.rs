//! Malformed specs are refused by `kubectl apply` itself, with a message that says what is
//! wrong: the CRDs' schema and CEL rules, enforced by the real API server.

mod support;

use support::*;

/// Server-side applies `yaml` with kubectl: (accepted, combined output).
fn apply(yaml: &str) -> (bool, String) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), yaml).unwrap();
    kubectl(&["apply", "--server-side", "-f", file.path().to_str().unwrap()])
}

/// The output of a refused apply; panics if it was accepted.
fn refused(yaml: &str) -> String {
    let (ok, output) = apply(yaml);
    assert!(!ok, "kubectl apply accepted:\n{yaml}\n{output}");
    output
}

fn accepted(yaml: &str) {
    let (ok, output) = apply(yaml);
    assert!(ok, "kubectl apply refused:\n{yaml}\n{output}");
}

fn link(ns: &str, name: &str, spec: &str) -> String {
    format!(
        "apiVersion: liaison.dev/v1alpha1\nkind: ClientLink\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n{spec}"
    )
}

fn grant(ns: &str, spec: &str) -> String {
    format!(
        "apiVersion: liaison.dev/v1alpha1\nkind: AccessGrant\nmetadata: {{name: g, namespace: {ns}}}\nspec:\n{spec}"
    )
}

#[tokio::test]
async fn malformed_client_links_are_refused_with_a_clear_message() {
    let admin = client().await;
    install_liaison(&admin).await;
    let ns = fresh_namespace(&admin, "adm").await;
    let cases = [
        (
            "  partner: p\n  accessLevels:\n  - {name: a, clusterRole: view, role: r}\n",
            "exactly one of clusterRole, role or rules",
        ),
        ("  partner: p\n  accessLevels:\n  - {name: a}\n", "exactly one of clusterRole, role or rules"),
        (
            "  partner: p\n  accessLevels:\n  - {name: a, role: r}\n  - {name: a, role: s}\n",
            "access level names must be unique",
        ),
        ("  partner: p\n  accessLevels:\n  - {name: Not_A_Label, role: r}\n", "spec.accessLevels[0].name"),
        (
            "  partner: p\n  accessLevels:\n  - {name: a, role: r}\n  accessKey: {accessLevel: b}\n",
            "accessKey.accessLevel must name one of accessLevels",
        ),
        ("  partner: p\n  accessLevels: []\n", "spec.accessLevels"),
        ("  accessLevels:\n  - {name: a, role: r}\n", "spec.partner: Required value"),
        (
            "  partner: p\n  accessLevels:\n  - {name: a, rules: [{resources: [pods], verbs: []}]}\n",
            "spec.accessLevels[0].rules[0].verbs",
        ),
        // Instants Kubernetes' date-time format admits but no one means (see tests/stored_objects.rs).
        (
            "  partner: p\n  accessLevels:\n  - {name: a, role: r}\n  expiresAt: \"9999-12-31T23:59:59Z\"\n",
            "must be an instant before",
        ),
        (
            "  partner: p\n  accessLevels:\n  - {name: a, role: r}\n  expiresAt: \"2027-01-01T00:00:00+99:00\"\n",
            "spec.expiresAt",
        ),
    ];
    for (spec, expected) in cases {
        let output = refused(&link(&ns, "bad", spec));
        assert!(output.contains(expected), "expected {expected:?} in:\n{output}");
    }
}

#[tokio::test]
async fn the_partner_of_a_link_cannot_be_changed() {
    let admin = client().await;
    install_liaison(&admin).await;
    let ns = fresh_namespace(&admin, "imm").await;
    accepted(&link(&ns, "l", "  partner: first\n  accessLevels:\n  - {name: a, role: r}\n"));
    let output = refused(&link(&ns, "l", "  partner: second\n  accessLevels:\n  - {name: a, role: r}\n"));
    assert!(output.contains("spec.partner is immutable"), "{output}");
}

#[tokio::test]
async fn malformed_grants_are_refused_with_a_clear_message() {
    let admin = client().await;
    install_liaison(&admin).await;
    let ns = fresh_namespace(&admin, "admg").await;
    let cases = [
        ("  clients: []\n  accessLevel: a\n", "spec.clients"),
        ("  clients: [beta, beta]\n  accessLevel: a\n", "duplicate entries for key"),
        ("  clients: [Beta_Corp]\n  accessLevel: a\n", "spec.clients[0]"),
        (
            "  clients: [beta]\n  accessLevel: a\n  subjects: [{kind: Robot, name: r2}]\n",
            "Unsupported value: \"Robot\"",
        ),
        (
            "  clients: [beta]\n  accessLevel: a\n  subjects: [{kind: ServiceAccount, name: bot, namespace: kube-system}]\n",
            "subjects carry no namespace",
        ),
        (
            "  clients: [beta]\n  accessLevel: a\n  subjects: [{kind: User, name: \"\"}]\n",
            "spec.subjects[0].name",
        ),
        (
            "  clients: [beta]\n  accessLevel: a\n  subjects: [{kind: Group, name: \"system:masters\"}]\n",
            "system:* identities can never be granted",
        ),
        (
            "  clients: [beta]\n  accessLevel: a\n  expiresAt: \"2027-01-01T00:00:00.1234567891Z\"\n",
            "spec.expiresAt",
        ),
        (
            "  clients: [beta]\n  accessLevel: a\n  expiresAt: \"9999-12-31T00:00:00Z\"\n",
            "must be an instant before",
        ),
    ];
    for (spec, expected) in cases {
        let output = refused(&grant(&ns, spec));
        assert!(output.contains(expected), "expected {expected:?} in:\n{output}");
    }
}

#[tokio::test]
async fn partners_cannot_list_system_groups() {
    let admin = client().await;
    install_liaison(&admin).await;
    let name = unique("sysgrp");
    let yaml = format!(
        "apiVersion: liaison.dev/v1alpha1\nkind: Partner\nmetadata: {{name: {name}}}\nspec:\n  homeNamespace: home-{name}\n  identities: {{groups: [\"system:masters\"]}}\n"
    );
    let output = refused(&yaml);
    assert!(output.contains("system:* groups can never be granted"), "{output}");
}
