//! The mock ComputeDriver's sandboxes, by id, with their names indexed so a create
//! checks a name in constant time however many sandboxes the mock holds (benchmarks
//! create tens of thousands).

use std::collections::{BTreeMap, HashMap};

use proto::pb::compute::v1 as pb;

/// Sandboxes by id, and ids by name.
#[derive(Debug, Default)]
pub(super) struct Held {
    by_id: BTreeMap<String, pb::DriverSandbox>,
    by_name: HashMap<String, String>,
}

impl Held {
    pub(super) fn get(&self, id: &str) -> Option<&pb::DriverSandbox> {
        self.by_id.get(id)
    }

    pub(super) fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    /// The id of the sandbox named `name`.
    pub(super) fn named(&self, name: &str) -> Option<&String> {
        self.by_name.get(name)
    }

    pub(super) fn ids(&self) -> impl Iterator<Item = &String> {
        self.by_id.keys()
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &pb::DriverSandbox> {
        self.by_id.values()
    }

    /// Holds `sandbox` under its id, replacing the one held there.
    pub(super) fn insert(&mut self, sandbox: pb::DriverSandbox) {
        self.remove(&sandbox.id);
        self.by_name
            .insert(sandbox.name.clone(), sandbox.id.clone());
        self.by_id.insert(sandbox.id.clone(), sandbox);
    }

    pub(super) fn remove(&mut self, id: &str) -> Option<pb::DriverSandbox> {
        let removed = self.by_id.remove(id)?;
        if self
            .by_name
            .get(&removed.name)
            .is_some_and(|held| held == id)
        {
            self.by_name.remove(&removed.name);
        }
        Some(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::{Held, pb};

    fn sandbox(id: &str, name: &str) -> pb::DriverSandbox {
        pb::DriverSandbox {
            id: id.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_name_index_follows_inserts_replacements_and_removals() {
        let mut held = Held::default();
        held.insert(sandbox("1", "a"));
        held.insert(sandbox("2", "b"));
        assert_eq!(held.named("a").map(String::as_str), Some("1"));
        // Replacing a sandbox under its id moves its name.
        held.insert(sandbox("1", "c"));
        assert_eq!(held.named("a"), None);
        assert_eq!(held.named("c").map(String::as_str), Some("1"));
        assert_eq!(held.remove("1").map(|s| s.name), Some(String::from("c")));
        assert_eq!(held.named("c"), None);
        assert!(!held.contains("1"));
        assert_eq!(held.named("b").map(String::as_str), Some("2"));
        assert_eq!(held.ids().collect::<Vec<_>>(), ["2"]);
    }
}
