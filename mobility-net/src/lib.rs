//! The wire layer of mobility: node identities, the codec seam every byte on
//! a link goes through, and peer links.
//!
//! It knows peers and bytes, not actor types: the runtime (`mobility`) builds
//! its protocol messages on top of it.

mod codec;
mod link;
mod node_id;

pub use codec::{decode, encode, encode_into, CodecError};
pub use link::{memory_pair, LinkClosed, LinkReceiver, LinkSender};
pub use node_id::{NodeId, NodeIdError};
