//! Module configuration sections: each configurable hub module owns one
//! file here declaring its keys (the same [`KeySpec`] rows as the core
//! table, so files, environment variables, `config show`, `config init` and
//! `spec/config.md` see no difference) and how their effective values
//! configure the module. Adding a setting to a module touches only its
//! section file (and its tests).

use super::schema::KeySpec;
use super::Config;
use xmpp_core::modules::{ModuleId, ModuleSet};

mod archiving;
mod extdisco;
mod groupchat;
mod pubsub;
mod push;
pub mod upload;

/// One hub module's configuration.
pub struct Section {
    /// The module it configures.
    pub module: ModuleId,
    /// Its keys, in the order its layer file and the reference list them.
    pub keys: &'static [KeySpec],
    /// Replace the module in `set` with one built from the effective
    /// values; nothing when configuration switched the module off.
    pub configure: fn(&Config, &mut ModuleSet),
}

/// Every section, in stack order.
pub const SECTIONS: &[Section] = &[
    extdisco::SECTION,
    push::SECTION,
    pubsub::SECTION,
    upload::SECTION,
    groupchat::SECTION,
    archiving::SECTION,
];

/// Configure every module of `set` that has a section.
pub fn configure(cfg: &Config, set: &mut ModuleSet) {
    for section in SECTIONS {
        (section.configure)(cfg, set);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::{Ty, Value};
    use crate::config::{default_value, Origin};

    /// A value of `spec`'s type other than its default.
    fn other_value(spec: &KeySpec) -> Value {
        let default = default_value(spec);
        match spec.ty {
            Ty::Bool => Value::Bool(default != Some(Value::Bool(true))),
            Ty::Int { min, max } => Value::Int(if default == Some(Value::Int(max)) {
                min
            } else {
                max
            }),
            Ty::Choice(choices) => Value::Str(
                choices
                    .iter()
                    .find(|c| default != Some(Value::Str((**c).to_owned())))
                    .map(|c| (*c).to_owned())
                    .unwrap_or_default(),
            ),
            _ if spec.ty.is_list() => Value::List(vec![format!("other@{}.example", spec.local)]),
            _ => Value::Str(format!("other-{}.example", spec.local)),
        }
    }

    /// Every key of a section changes its module's settings: none is
    /// declared but never read, and the accessors' debug checks catch a
    /// misspelt or mistyped name.
    #[test]
    fn every_section_key_reaches_its_module() {
        let mut base = Config::default();
        // The other turn_external_* keys describe this host.
        base.values.insert(
            "extdisco.turn_external_host",
            (Value::Str("turn.example.org".into()), Origin::Default),
        );
        let configured = |cfg: &Config| {
            let mut set = ModuleSet::standard();
            configure(cfg, &mut set);
            set
        };
        let before = configured(&base);
        for s in SECTIONS {
            for k in s.keys {
                let mut cfg = base.clone();
                cfg.values.insert(k.name, (other_value(k), Origin::Default));
                assert_ne!(
                    configured(&cfg).describe(s.module),
                    before.describe(s.module),
                    "{} changes nothing",
                    k.name
                );
            }
        }
    }

    /// A section names a module the catalog and the standard set have,
    /// and its keys live in that module's layer file, where `config init`
    /// writes them next to the module.
    #[test]
    fn sections_match_their_modules() {
        let standard = ModuleSet::standard();
        for s in SECTIONS {
            let name = s.module.name();
            assert!(standard.contains(s.module), "{name} is a hub module");
            let info = crate::modules::CATALOG
                .iter()
                .find(|m| m.name == name)
                .unwrap_or_else(|| panic!("{name} is in the catalog"));
            for k in s.keys {
                assert_eq!(
                    k.home,
                    super::super::schema::Home::Layer(info.layer, info.file),
                    "{} lives with module {name}",
                    k.name
                );
            }
        }
    }
}
