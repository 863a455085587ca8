//! Typed state that modules keep on a session (and later an account), so
//! that `Session` does not grow a field per XEP.
//!
//! One slot per type: a module defines a private type for its state and is
//! then the only one that can name it. Most sessions hold nothing, so the
//! empty case is one pointer.

use std::any::Any;

/// Module state keyed by type.
// Boxed so that the common empty case is one word, not a Vec's three.
#[allow(clippy::box_collection)]
#[derive(Default)]
pub struct Extensions(Option<Box<Vec<Box<dyn Any + Send>>>>);

impl Extensions {
    /// The `T` kept here, if any.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0
            .as_deref()?
            .iter()
            .find_map(|slot| slot.downcast_ref::<T>())
    }

    /// Whether a `T` is kept here.
    pub fn has<T: Any>(&self) -> bool {
        self.get::<T>().is_some()
    }

    /// The `T` kept here, created with `Default` first if there is none.
    pub fn get_or_default<T: Any + Send + Default>(&mut self) -> &mut T {
        let slots = self.0.get_or_insert_with(Default::default);
        let index = match slots.iter().position(|slot| slot.is::<T>()) {
            Some(i) => i,
            None => {
                slots.push(Box::new(T::default()));
                slots.len() - 1
            }
        };
        // Just found or pushed, so the downcast holds; `match` keeps the
        // borrow checker and clippy content without an `expect`.
        match slots[index].downcast_mut::<T>() {
            Some(t) => t,
            None => unreachable!("slot {index} holds a {}", std::any::type_name::<T>()),
        }
    }

    /// Take the `T` out.
    pub fn remove<T: Any>(&mut self) -> Option<T> {
        let slots = self.0.as_mut()?;
        let index = slots.iter().position(|slot| slot.is::<T>())?;
        let slot = slots.swap_remove(index);
        if slots.is_empty() {
            self.0 = None;
        }
        slot.downcast::<T>().ok().map(|b| *b)
    }
}

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.as_ref().map_or(0, |s| s.len());
        write!(f, "Extensions({n} slots)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq)]
    struct On;
    #[derive(Debug, Default, PartialEq)]
    struct Count(u32);

    #[test]
    fn one_slot_per_type_created_on_demand_and_removed() {
        let mut e = Extensions::default();
        assert!(!e.has::<On>());
        e.get_or_default::<On>();
        e.get_or_default::<Count>().0 += 2;
        e.get_or_default::<Count>().0 += 1;
        assert!(e.has::<On>());
        assert_eq!(e.get::<Count>(), Some(&Count(3)));
        assert_eq!(e.remove::<On>(), Some(On));
        assert!(!e.has::<On>());
        assert_eq!(e.remove::<Count>(), Some(Count(3)));
        assert!(e.0.is_none(), "empty again: one pointer");
        assert_eq!(
            std::mem::size_of::<Extensions>(),
            std::mem::size_of::<usize>()
        );
    }
}
