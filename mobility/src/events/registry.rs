//! The handler types of this binary, by event type and tag, and the older
//! shapes of them it upgrades: how a node rebuilds the handlers of a
//! manager that arrives as bytes.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use super::{ErasedHandler, Event, HandlerWire, RegisteredHandler};
use crate::api::actor::Mobile;

/// One registered event handler type. Submitted by
/// [`event_handler!`](crate::event_handler) through `inventory`.
#[doc(hidden)]
pub struct HandlerType {
    event: fn() -> TypeId,
    tag: &'static str,
    rust_name: &'static str,
    fingerprint: u64,
    decode: DecodeFn,
}

/// Decodes a handler's state into a `Box<Box<dyn ErasedHandler<E>>>`, erased.
type DecodeFn = fn(&[u8]) -> Result<Box<dyn Any + Send>, String>;

impl HandlerType {
    /// The registration of handler type `H` for events `E` (used by
    /// [`event_handler!`](crate::event_handler)).
    pub const fn of<H: RegisteredHandler<E>, E: Event>(rust_name: &'static str) -> Self {
        HandlerType {
            event: TypeId::of::<E>,
            tag: H::TAG,
            rust_name,
            fingerprint: H::FINGERPRINT,
            decode: decode_handler::<H, E>,
        }
    }
}

impl fmt::Debug for HandlerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerType")
            .field("tag", &self.tag)
            .field("rust_name", &self.rust_name)
            .finish()
    }
}

inventory::collect!(HandlerType);

/// An older shape of a registered handler type, which this build upgrades
/// when a manager arrives holding a handler in it (a rolling upgrade).
/// Submitted by [`event_handler_upgrade!`](crate::event_handler_upgrade).
#[doc(hidden)]
pub struct OlderHandler {
    event: fn() -> TypeId,
    tag: &'static str,
    rust_name: &'static str,
    fingerprint: u64,
    decode: DecodeFn,
}

impl OlderHandler {
    /// The registration of `Old`, an older state of handler type `H`,
    /// upgraded with `From` (used by the macro).
    pub const fn of<Old: Mobile, H: RegisteredHandler<E> + From<Old>, E: Event>(
        rust_name: &'static str,
    ) -> Self {
        OlderHandler {
            event: TypeId::of::<E>,
            tag: H::TAG,
            rust_name,
            fingerprint: Old::FINGERPRINT,
            decode: decode_older::<Old, H, E>,
        }
    }
}

impl fmt::Debug for OlderHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OlderHandler")
            .field("tag", &self.tag)
            .field("rust_name", &self.rust_name)
            .finish()
    }
}

inventory::collect!(OlderHandler);

/// Decodes an older state `Old` and upgrades it into `H` (a panic in the
/// upgrade refuses the manager's move, like a handler that cannot be
/// rebuilt).
fn decode_older<Old: Mobile, H: RegisteredHandler<E> + From<Old>, E: Event>(
    bytes: &[u8],
) -> Result<Box<dyn Any + Send>, String> {
    let old: Old = mobility_net::decode(bytes).map_err(|e| e.to_string())?;
    let handler = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| H::from(old))).map_err(
        |panic| {
            format!(
                "its upgrade panicked: {}",
                crate::cell::panic_message(&*panic)
            )
        },
    )?;
    let erased: Box<dyn ErasedHandler<E>> = Box::new(handler);
    Ok(Box::new(erased))
}

/// Decodes a handler of type `H`, boxed as `Box<dyn ErasedHandler<E>>`
/// inside a `Box<dyn Any>`.
fn decode_handler<H: RegisteredHandler<E>, E: Event>(
    bytes: &[u8],
) -> Result<Box<dyn Any + Send>, String> {
    let handler: H = mobility_net::decode(bytes).map_err(|e| e.to_string())?;
    let erased: Box<dyn ErasedHandler<E>> = Box::new(handler);
    Ok(Box::new(erased))
}

/// The handler types of this binary, by (event type, tag); a tag registered
/// twice for one event type maps to the Rust names that claim it.
struct HandlerRegistry {
    by_key: HashMap<(TypeId, &'static str), &'static HandlerType>,
    duplicates: HashMap<(TypeId, &'static str), Vec<&'static str>>,
}

fn handler_registry() -> &'static HandlerRegistry {
    static REGISTRY: OnceLock<HandlerRegistry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut by_key = HashMap::new();
        let mut duplicates: HashMap<_, Vec<&'static str>> = HashMap::new();
        for ty in inventory::iter::<HandlerType>() {
            let key = ((ty.event)(), ty.tag);
            if let Some(first) = by_key.insert(key, ty) {
                duplicates
                    .entry(key)
                    .or_insert_with(|| vec![first.rust_name])
                    .push(ty.rust_name);
            }
        }
        for ((_, tag), names) in &duplicates {
            tracing::error!(%tag, ?names, "event handler tag registered twice");
        }
        HandlerRegistry { by_key, duplicates }
    })
}

/// Rebuilds a handler from its portable form, or says why it cannot.
pub(super) fn rebuild<E: Event>(wire: &HandlerWire) -> Result<Box<dyn ErasedHandler<E>>, String> {
    let registry = handler_registry();
    let key = (TypeId::of::<E>(), wire.tag.as_str());
    if let Some(names) = registry.duplicates.get(&key) {
        return Err(format!(
            "event handler tag {:?} is registered by several types here: {names:?}",
            wire.tag
        ));
    }
    let Some(ty) = registry.by_key.get(&key) else {
        let mut known: Vec<&str> = registry
            .by_key
            .keys()
            .filter(|(event, _)| *event == key.0)
            .map(|(_, tag)| *tag)
            .collect();
        known.sort_unstable();
        return Err(format!(
            "unknown event handler type {:?} for events {:?} (this node knows: {known:?})",
            wire.tag,
            E::TAG
        ));
    };
    let decode = if ty.fingerprint == wire.fingerprint {
        ty.decode
    } else {
        // An older shape this build upgrades, if one was registered.
        let older = inventory::iter::<OlderHandler>().find(|old| {
            (old.event)() == key.0 && old.tag == wire.tag && old.fingerprint == wire.fingerprint
        });
        match older {
            Some(older) => older.decode,
            None => {
                return Err(format!(
                    "event handler type {:?} has another schema here (ours {:016x}, theirs {:016x}) and no upgrade from it (event_handler_upgrade!)",
                    wire.tag, ty.fingerprint, wire.fingerprint
                ))
            }
        }
    };
    let boxed = decode(&wire.state)
        .map_err(|e| format!("event handler {:?} does not decode: {e}", wire.tag))?;
    boxed
        .downcast::<Box<dyn ErasedHandler<E>>>()
        .map(|b| *b)
        .map_err(|_| format!("event handler type {:?} is not for these events", wire.tag))
}

/// The tags of the handler types registered for events `E` (sorted).
pub fn handler_tags<E: Event>() -> Vec<&'static str> {
    let mut tags: Vec<&'static str> = handler_registry()
        .by_key
        .keys()
        .filter(|(event, _)| *event == TypeId::of::<E>())
        .map(|(_, tag)| *tag)
        .collect();
    tags.sort_unstable();
    tags
}
