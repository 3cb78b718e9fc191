//! Decoding with a node in scope, so that handles inside decoded values
//! (messages, replies, state) bind to the node that decodes them.

use std::cell::RefCell;

use serde::de::DeserializeOwned;

use std::sync::Arc;

use crate::api::host::Host;
use crate::proto::error::Error;

thread_local! {
    static DECODING_NODE: RefCell<Option<Arc<dyn Host>>> = const { RefCell::new(None) };
}

/// Decodes `bytes` with `node` as the node that handles inside bind to.
pub(crate) fn decode_on<T: DeserializeOwned>(
    node: Option<Arc<dyn Host>>,
    bytes: &[u8],
) -> Result<T, Error> {
    let previous = DECODING_NODE.with(|slot| slot.replace(node));
    let result = mobility_net::decode(bytes).map_err(Error::from);
    DECODING_NODE.with(|slot| *slot.borrow_mut() = previous);
    result
}

/// The node decoding on this thread right now, if any.
pub(crate) fn decoding_node() -> Option<Arc<dyn Host>> {
    DECODING_NODE.with(|slot| slot.borrow().clone())
}
