//! The one seam every encoded byte goes through (CBOR with `ciborium`), so the
//! codec can be measured and swapped in one place.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A value could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// Encoding failed (a `Serialize` impl returned an error).
    #[error("cannot encode {what}: {reason}")]
    Encode {
        /// The Rust type being encoded.
        what: &'static str,
        /// What the encoder said.
        reason: String,
    },
    /// The bytes are not a valid encoding of the expected type.
    #[error("cannot decode {what}: {reason}")]
    Decode {
        /// The Rust type expected.
        what: &'static str,
        /// What the decoder said.
        reason: String,
    },
}

/// Encodes `value` as CBOR.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    encode_into(value, &mut out)?;
    Ok(out)
}

/// Encodes `value` as CBOR at the end of `out`.
pub fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
    ciborium::into_writer(value, out).map_err(|e| CodecError::Encode {
        what: std::any::type_name::<T>(),
        reason: e.to_string(),
    })
}

/// Decodes a CBOR value of type `T`; trailing bytes are an error.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let mut reader = bytes;
    let value = ciborium::from_reader(&mut reader).map_err(|e| CodecError::Decode {
        what: std::any::type_name::<T>(),
        reason: match e {
            // A `Deserialize` impl refused the value: its own words.
            ciborium::de::Error::Semantic(_, text) => text,
            other => other.to_string(),
        },
    })?;
    if !reader.is_empty() {
        return Err(CodecError::Decode {
            what: std::any::type_name::<T>(),
            reason: format!("{} trailing bytes", reader.len()),
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let bytes = encode(&(1u32, "two".to_string())).expect("encodes");
        let back: (u32, String) = decode(&bytes).expect("decodes");
        assert_eq!(back, (1, "two".to_string()));
        assert!(
            decode::<(u32, String)>(&bytes[..bytes.len() - 1]).is_err(),
            "truncated"
        );
        let mut longer = bytes;
        longer.push(0);
        assert!(decode::<(u32, String)>(&longer).is_err(), "trailing bytes");
        assert!(decode::<u64>(&[0xff, 0x00, 0x13]).is_err(), "garbage");
    }
}
