//! What the benchmarks share: the blob actor that migrates, and its plain
//! serde twin for the raw baselines.

use mobility::prelude::*;
use serde::{Deserialize, Serialize};

/// The actor under test: a blob of state that moves.
#[mobile]
pub struct Blob {
    data: Vec<u8>,
    id: u64,
}

impl Blob {
    /// A blob of `data` with id `id`.
    pub fn new(data: Vec<u8>, id: u64) -> Self {
        Blob { data, id }
    }
}

#[mobile]
impl Blob {
    pub fn size(&self) -> u64 {
        self.data.len() as u64 + self.id
    }
}

/// The baselines' value: the same shape, plain serde (bytes as a CBOR byte
/// string).
#[derive(Serialize, Deserialize)]
pub struct PlainBlob {
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
    pub id: u64,
}
