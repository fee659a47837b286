//! Mutations of a document: removed, replaced, nested and added fields.

use super::*;

#[derive(Debug, Clone)]
pub(super) enum Step {
    Key(String),
    At(usize),
}

#[derive(Debug, Clone)]
pub(super) enum Mutation {
    Remove,
    Replace(Value),
    /// Wraps the node in this many arrays and objects.
    Nest(usize),
    AddField(String, Value),
}

pub(super) fn mutation() -> BoxedStrategy<Mutation> {
    prop_oneof![
        3 => Just(Mutation::Remove),
        2 => arb_json().prop_map(Mutation::Replace),
        2 => hostile_string().prop_map(|s| Mutation::Replace(Value::String(s))),
        2 => timestamp_text().prop_map(|s| Mutation::Replace(Value::String(s))),
        2 => number().prop_map(Mutation::Replace),
        1 => prop_oneof![Just(Value::Null), Just(json!([])), Just(json!({})), Just(json!(true))].prop_map(Mutation::Replace),
        1 => (1usize..200).prop_map(Mutation::Nest),
        2 => (field_name(), arb_json()).prop_map(|(k, v)| Mutation::AddField(k, v)),
    ]
    .boxed()
}

/// Every node's path, the root's first.
pub(super) fn paths(doc: &Value) -> Vec<Vec<Step>> {
    pub(super) fn walk(node: &Value, here: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
        out.push(here.clone());
        match node {
            Value::Object(map) => {
                for (k, v) in map {
                    here.push(Step::Key(k.clone()));
                    walk(v, here, out);
                    here.pop();
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    here.push(Step::At(i));
                    walk(v, here, out);
                    here.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(doc, &mut Vec::new(), &mut out);
    out
}

pub(super) fn node_mut<'a>(doc: &'a mut Value, path: &[Step]) -> &'a mut Value {
    path.iter().fold(doc, |node, step| match step {
        Step::Key(k) => &mut node[k.as_str()],
        Step::At(i) => &mut node[*i],
    })
}

pub(super) fn mutate(doc: &mut Value, at: Index, mutation: Mutation) {
    let all = paths(doc);
    let path = &all[at.index(all.len())];
    match mutation {
        Mutation::Remove => match path.split_last() {
            None => *doc = Value::Null,
            Some((last, parent)) => match (node_mut(doc, parent), last) {
                (Value::Object(map), Step::Key(k)) => {
                    map.remove(k);
                }
                (Value::Array(items), Step::At(i)) => {
                    items.remove(*i);
                }
                _ => {}
            },
        },
        Mutation::Replace(value) => *node_mut(doc, path) = value,
        Mutation::Nest(depth) => {
            let node = node_mut(doc, path);
            let mut value = node.take();
            for i in 0..depth {
                value = if i % 2 == 0 { Value::Array(vec![value]) } else { json!({ "a": value }) };
            }
            *node = value;
        }
        Mutation::AddField(k, v) => {
            if let Value::Object(map) = node_mut(doc, path) {
                map.insert(k, v);
            }
        }
    }
}

/// The document, often untouched (so that worlds hold objects), else mutated a few times.
pub(super) fn mutated(doc: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    (doc, prop_oneof![3 => Just(vec![]), 2 => prop::collection::vec((any::<Index>(), mutation()), 1..4)])
        .prop_map(|(mut doc, mutations)| {
            for (at, m) in mutations {
                mutate(&mut doc, at, m);
            }
            doc
        })
        .boxed()
}

/// For worlds: mostly the document as generated, so that objects meet and grant.
pub(super) fn seldom_mutated(doc: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    prop_oneof![4 => doc.clone(), 1 => mutated(doc)].boxed()
}

pub(super) fn depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}
