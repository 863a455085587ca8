//! The modules a hub runs, with their settings: what configuration
//! switched on, and any module an embedder adds.
//!
//! A server runs several hub partitions and every partition needs its own
//! instance of each module (a module keeps per-partition state), so the
//! set holds prototypes, configured once, and each hub takes fresh copies
//! ([`ModuleSet::instances`]).

use super::{Module, ModuleId};
use std::sync::Arc;

/// A configured module that can be copied for each partition.
trait Prototype: Send + Sync {
    fn id(&self) -> ModuleId;
    fn instance(&self) -> Box<dyn Module>;
    /// The module and its settings, as its `Debug` shows them.
    fn describe(&self) -> String;
}

impl<M: Module + Clone + Sync + 'static> Prototype for M {
    fn id(&self) -> ModuleId {
        Module::id(self)
    }

    fn instance(&self) -> Box<dyn Module> {
        Box::new(self.clone())
    }

    fn describe(&self) -> String {
        format!("{self:?}")
    }
}

/// An ordered set of modules, at most one per identity. Order matters
/// only among modules of one priority ([`Module::priority`]).
#[derive(Clone, Default)]
pub struct ModuleSet(Vec<Arc<dyn Prototype>>);

impl ModuleSet {
    /// No module at all.
    pub fn empty() -> Self {
        ModuleSet(Vec::new())
    }

    /// Every module Vireo has, with its default settings.
    pub fn standard() -> Self {
        ModuleSet::empty()
            .with(super::Disco)
            .with(super::blocking::Blocking)
            .with(super::carbons::Carbons::default())
            .with(super::stored_xml::StoredXml::private())
            .with(super::stored_xml::StoredXml::vcard())
            .with(super::Ping)
            .with(super::Version)
            .with(super::EntityTime)
            .with(super::LastActivity::default())
            .with(super::extdisco::ExternalServices::new(None))
            .with(super::push::Push::new(Default::default()))
            .with(super::mam::Archiving::new(Default::default()))
            .with(super::register::Cancellation::default())
            .with(super::avatar::Avatars::default())
            .with(super::offline::OfflineStorage::default())
            .with(super::pep::Pep::default())
            .with(super::pubsub::PubsubService::default())
            .with(super::muc::Muc::default())
            .with(super::upload::Upload::default())
    }

    /// The set with `module` added, or replacing the one of its identity.
    pub fn with<M: Module + Clone + Sync + 'static>(mut self, module: M) -> Self {
        self.insert(module);
        self
    }

    /// Add `module`, or replace the one of its identity in its place.
    pub fn insert<M: Module + Clone + Sync + 'static>(&mut self, module: M) {
        let id = Module::id(&module);
        let module: Arc<dyn Prototype> = Arc::new(module);
        match self.0.iter_mut().find(|m| m.id() == id) {
            Some(slot) => *slot = module,
            None => self.0.push(module),
        }
    }

    /// Replace the module of `module`'s identity with it (new settings);
    /// nothing when that module is not in the set (switched off).
    pub fn configure<M: Module + Clone + Sync + 'static>(&mut self, module: M) {
        if self.contains(Module::id(&module)) {
            self.insert(module);
        }
    }

    /// Take the module `id` out; `false` when it was not in.
    pub fn remove(&mut self, id: ModuleId) -> bool {
        let before = self.0.len();
        self.0.retain(|m| m.id() != id);
        self.0.len() != before
    }

    /// Whether the module `id` is in the set.
    pub fn contains(&self, id: ModuleId) -> bool {
        self.0.iter().any(|m| m.id() == id)
    }

    /// The identities, in order.
    pub fn ids(&self) -> Vec<ModuleId> {
        self.0.iter().map(|m| m.id()).collect()
    }

    /// The module `id` with its settings, as its `Debug` shows them (for
    /// logs and tests).
    pub fn describe(&self, id: ModuleId) -> Option<String> {
        self.0.iter().find(|m| m.id() == id).map(|m| m.describe())
    }

    /// The service domains the modules host ([`Module::service_domains`]),
    /// from an instance of each: what a driver must not send elsewhere.
    pub fn service_domains(&self) -> Vec<String> {
        self.0
            .iter()
            .flat_map(|m| m.instance().service_domains())
            .collect()
    }

    /// Whether `other` holds the same modules with the same settings, as
    /// their `Debug` shows them (a configuration reload that changes them
    /// needs a restart; secrets a `Debug` hides are not compared).
    pub fn same_as(&self, other: &ModuleSet) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(&other.0)
                .all(|(a, b)| a.id() == b.id() && a.describe() == b.describe())
    }

    /// A fresh instance of every module, for one hub.
    pub fn instances(&self) -> Vec<Box<dyn Module>> {
        self.0.iter().map(|m| m.instance()).collect()
    }
}

impl std::fmt::Debug for ModuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|m| m.id().name()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_module_per_identity_in_order() {
        let mut set = ModuleSet::empty().with(super::super::Ping);
        set.insert(super::super::Version);
        set.insert(super::super::Ping);
        assert_eq!(set.ids().len(), 2);
        assert_eq!(set.ids()[0], super::super::ping::ID);
        set.configure(super::super::EntityTime);
        assert!(
            !set.contains(super::super::time::ID),
            "configure adds nothing"
        );
        assert!(set.remove(super::super::ping::ID));
        assert!(!set.remove(super::super::ping::ID));
        assert_eq!(set.instances().len(), 1);
    }
}
