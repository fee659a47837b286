//! The properties: documents read or are refused; plans keep the rules.

use super::*;

/// `cases` cases, or as many as `PROPTEST_CASES` says (for a longer hunt).
fn config(cases: u32) -> ProptestConfig {
    let default = ProptestConfig::default();
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() { default.cases } else { cases };
    ProptestConfig { cases, max_shrink_iters: 4096, ..default }
}

proptest! {
    #![proptest_config(config(1024))]

    /// Random documents, and random documents shaped like the three kinds, read or are refused.
    #[test]
    fn random_documents_read_or_are_refused(doc in arb_json(), metadata in arb_json(), spec in arb_json(),
                                            kind in one_of(&["Partner", "ClientLink", "AccessGrant"])) {
        let shaped = json!({"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": spec});
        for doc in [&doc, &shaped] {
            let _ = read::<Partner>(doc);
            let _ = read::<ClientLink>(doc);
            let _ = read::<AccessGrant>(doc);
        }
    }

    /// Mutated CRD documents read or are refused, and a list reads exactly when all its items do
    /// (so one unreadable object is enough to fail a whole list, and the watch built on it).
    #[test]
    fn mutated_documents_read_or_are_refused(partners in prop::collection::vec(mutated(partner_doc(Shape::Wild)), 1..3),
                                             links in prop::collection::vec(mutated(link_doc(Shape::Wild)), 1..3),
                                             grants in prop::collection::vec(mutated(grant_doc(Shape::Wild)), 1..3)) {
        for doc in &partners { let _ = read::<Partner>(doc); }
        for doc in &grants { let _ = read::<AccessGrant>(doc); }
        let each: Vec<bool> = links.iter().map(|doc| read::<ClientLink>(doc).is_some()).collect();
        if links.iter().all(|doc| depth(doc) < 100) {
            let list = json!({"apiVersion": API_VERSION, "kind": "ClientLinkList", "metadata": {}, "items": links});
            let read_list = serde_json::from_slice::<ObjectList<ClientLink>>(&serde_json::to_vec(&list).unwrap());
            prop_assert_eq!(read_list.is_ok(), each.iter().all(|ok| *ok));
        }
    }

    /// Cut, spliced and random bytes, as JSON and as YAML.
    #[test]
    fn broken_text_reads_or_is_refused(doc in mutated(link_doc(Shape::Wild)), cut in any::<Index>(), at in any::<Index>(),
                                        junk in prop::collection::vec(any::<u8>(), 1..8),
                                        bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let json = serde_json::to_vec(&doc).unwrap();
        let yaml = serde_yaml::to_string(&doc).unwrap_or_default().into_bytes();
        for text in [&json, &yaml] {
            read_text(&text[..cut.index(text.len() + 1)]);
            let mut spliced = text.clone();
            let i = at.index(spliced.len() + 1);
            spliced.splice(i..i, junk.iter().copied());
            read_text(&spliced);
        }
        read_text(&bytes);
    }

}

proptest! {
    #![proptest_config(config(2048))]

    /// The worlds made of what reads keep the rules of DESIGN.md.
    #[test]
    fn hostile_worlds_keep_the_rules(cluster in arb_cluster()) {
        let raw = cluster.read();
        let access = cluster.home_access.as_ref();
        for partner in &raw.partners {
            check_partner_plan(partner, access, false)?;
        }
        check_always(&raw, &raw.plan())?;
        let normal = raw.normalized();
        let plan = normal.plan();
        check_always(&normal, &plan)?;
        check_rules(&normal, &plan)?;
        if let Some(admitted) = normal.admitted() {
            let plan = admitted.plan();
            check_always(&admitted, &plan)?;
            check_rules(&admitted, &plan)?;
            check_names(&plan)?;
            for partner in &admitted.partners {
                check_partner_plan(partner, access, true)?;
            }
        }
    }
}

proptest! {
    #![proptest_config(config(1024))]

    /// A grant is judged alone (or, once the grants could reach a link's `maxGrants`, with
    /// those older than it: `judged_with`) as it is among every grant naming the namespace: same
    /// verdict, same binding, same Role behind it, and the links' verdicts do not move. The
    /// grant reconciler relies on it to plan each of its clients without the other grants.
    #[test]
    fn a_grant_alone_is_judged_as_among_all(cluster in arb_cluster()) {
        let normal = cluster.read().normalized();
        for world in [Some(normal.clone()), normal.admitted()].iter().flatten() {
            let among_all = world.plan();
            let naming: Vec<Arc<AccessGrant>> = world.grants.iter().cloned().map(Arc::new).collect();
            let smallest = smallest_grant_limit(&world.links);
            for (grant, shared) in world.grants.iter().zip(&naming) {
                let judged = judged_with(shared, &naming, smallest).iter().map(|g| (**g).clone()).collect();
                let alone = World { grants: judged, ..world.clone() }.plan();
                let (namespace, name) = (grant.namespace().unwrap_or_default(), grant.name_any());
                let verdict = alone.grant(&namespace, &name);
                prop_assert!(verdict.is_some(), "every grant given to the rules gets a verdict");
                prop_assert_eq!(verdict, among_all.grant(&namespace, &name));
                let binding_in = |plan: &ClientPlan| {
                    let name = verdict.and_then(|v| v.role_binding.clone());
                    plan.bindings.iter().find(|b| name.is_some() && b.metadata.name == name).cloned()
                };
                prop_assert_eq!(binding_in(&alone), binding_in(&among_all));
                if let Some(binding) = binding_in(&alone) {
                    let role_in = |plan: &ClientPlan| plan.roles.iter().find(|r| r.metadata.name.as_deref() == Some(&binding.role_ref.name)).cloned();
                    prop_assert_eq!(role_in(&alone), role_in(&among_all));
                }
                let link_verdicts = |plan: &ClientPlan| plan.links.iter().map(|(n, l)| (n.clone(), l.verdict.clone())).collect::<Vec<_>>();
                prop_assert_eq!(link_verdicts(&alone), link_verdicts(&among_all));
            }
        }
    }
}

proptest! {
    #![proptest_config(config(2048))]

    /// Coverage of arbitrary rules (wildcards, empty verbs, resourceNames, nonResourceURLs): the
    /// same as Kubernetes' own, reflexive, monotone in the owner, split over the servant's rules.
    #[test]
    fn coverage_of_arbitrary_rules(a in prop::collection::vec(arb_policy_rule(), 0..4),
                                   b in prop::collection::vec(arb_policy_rule(), 0..4),
                                   c in prop::collection::vec(arb_policy_rule(), 0..4)) {
        prop_assert_eq!(covers(&a, &c), kubernetes_covers(&a, &c), "coverage is not Kubernetes' own");
        prop_assert_eq!(covers(&c, &a), kubernetes_covers(&c, &a), "coverage is not Kubernetes' own");
        prop_assert!(covers(&a, &a), "not reflexive");
        let ab: Vec<PolicyRule> = a.iter().chain(&b).cloned().collect();
        prop_assert!(covers(&ab, &a) && covers(&ab, &b));
        let before = uncovered_atoms(&a, &c);
        let after = uncovered_atoms(&ab, &c);
        prop_assert!(after.iter().all(|atom| before.contains(atom)), "more rules in the owner lost coverage");
        if before.is_empty() {
            prop_assert!(covers(&ab, &c));
        }
        let bc: Vec<PolicyRule> = b.iter().chain(&c).cloned().collect();
        prop_assert_eq!(covers(&a, &bc), covers(&a, &b) && covers(&a, &c));
        let asked = atoms(&c);
        prop_assert!(before.iter().all(|atom| asked.contains(atom)));
        // The walk that never expands rules says what the atom-by-atom oracle says.
        let walked = uncovered(&a, &c);
        prop_assert_eq!(walked.is_empty(), before.is_empty());
        prop_assert!(walked.first.iter().all(|atom| before.contains(atom)), "{:?} not in {:?}", walked.first, before);
        prop_assert!(walked.first.windows(2).all(|w| w[0] < w[1]) && walked.first.len() <= Uncovered::SHOWN);
        prop_assert!(walked.count >= before.len() as u64, "every distinct uncovered atom is counted");
        prop_assert!(walked.count <= asked.len() as u64, "no more than were asked");
        let shown = before.len().min(Uncovered::SHOWN);
        prop_assert_eq!(walked.first.len(), shown);
        prop_assert!(covers(&[rule(&["*"], &["*"], &["*"])], &c));
        prop_assert_eq!(covers(&[], &c), asked.is_empty());
    }

    /// kube parses any selector or refuses it, never panics, and where Kubernetes would accept
    /// the selector it matches as Kubernetes does.
    #[test]
    fn label_selectors_parse_or_are_refused(selector in arb_selector(), labels in arb_labels()) {
        let parsed = Selector::try_from(selector.clone());
        if let Ok(parsed) = &parsed {
            let _ = parsed.to_string();
            let matched = parsed.matches(&labels);
            if selector_is_valid(&selector) {
                prop_assert_eq!(matched, selector_allows(&selector, &labels));
            }
        }
        prop_assert!(parsed.is_ok() || !selector_is_valid(&selector), "kube refuses a valid selector");
    }
}
