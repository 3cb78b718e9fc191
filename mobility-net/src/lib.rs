//! The wire layer of mobility: node identities, the codec seam every byte on
//! a link goes through, peer links, and the TCP transport that carries them
//! between processes ([`Transport`]: every link authenticated by a Noise
//! handshake keyed by the cluster's secret and encrypted with forward
//! secrecy, see [`tcp::noise`]; reliable exactly-once sessions that
//! survive reconnects).
//!
//! It knows peers and bytes, not actor types: the runtime (`mobility`) builds
//! its protocol messages on top of it.

mod codec;
#[doc(hidden)]
pub mod fuzzing;
mod link;
pub mod membership;
mod node_id;
pub mod tcp;

pub use codec::{decode, encode, encode_into, CodecError};
pub use link::{memory_pair, LinkClosed, LinkReceiver, LinkSender};
pub use membership::{Member, MemberEvent, Membership, MembershipConfig};
pub use node_id::{NodeId, NodeIdError};
pub use tcp::{
    EventHandler, Identity, NetError, Refusals, Secret, TcpConfig, Transport, TransportEvent,
};
