//! Reading a document as kube reads it from the API server.

use super::*;

/// Reads a document as kube does (JSON bytes), from a `Value`, and as YAML text. Each answers
/// Ok or Err; when two succeed they agree; whatever is read writes back without panicking.
pub(super) fn read<K>(doc: &Value) -> Option<K>
where
    K: DeserializeOwned + Serialize,
{
    // The root types derive no PartialEq: compare what they write.
    let same = |a: &K, b: &K| serde_json::to_value(a).ok() == serde_json::to_value(b).ok();
    let bytes = serde_json::to_vec(doc).expect("a JSON value always writes");
    let from_json = serde_json::from_slice::<K>(&bytes);
    let from_value = serde_json::from_value::<K>(doc.clone());
    let from_yaml = serde_yaml::to_string(doc).ok().map(|text| serde_yaml::from_str::<K>(&text));
    if let (Ok(a), Ok(b)) = (&from_json, &from_value) {
        assert!(same(a, b), "JSON bytes and JSON value read {doc} differently");
    }
    if let (Ok(a), Some(Ok(b))) = (&from_json, &from_yaml) {
        assert!(same(a, b), "JSON and YAML read {doc} differently");
    }
    let object = from_json.ok()?;
    let _ = serde_json::to_vec(&object);
    let _ = serde_yaml::to_string(&object);
    Some(object)
}

/// Raw text or bytes, of any kind: Ok or Err, never a panic.
pub(super) fn read_text(bytes: &[u8]) {
    pub(super) fn both<K: DeserializeOwned>(bytes: &[u8]) {
        let _ = serde_json::from_slice::<K>(bytes);
        let _ = serde_yaml::from_slice::<K>(bytes);
    }
    both::<Partner>(bytes);
    both::<ClientLink>(bytes);
    both::<AccessGrant>(bytes);
    both::<ObjectList<ClientLink>>(bytes);
    both::<LabelSelector>(bytes);
    both::<PolicyRule>(bytes);
}
