use mobility::prelude::*;

/// Byte containers travel as CBOR byte strings, not arrays of integers.
#[mobile]
#[derive(Debug, Default, PartialEq)]
pub struct Blob {
    data: Vec<u8>,
    key: [u8; 4],
    frozen: Box<[u8]>,
    maybe: Option<Vec<u8>>,
}

#[mobile]
#[derive(Debug, PartialEq)]
pub struct Single(Vec<u8>);

fn cbor<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).expect("encode");
    out
}

fn main() {
    // A bare Vec<u8> field inside a tuple struct: one CBOR byte string (major type 2).
    let single = Single(vec![1, 2, 3]);
    let bytes = cbor(&single);
    assert_eq!(bytes, [0x43, 1, 2, 3], "{bytes:x?}");
    let back: Single = ciborium::from_reader(bytes.as_slice()).expect("decode");
    assert_eq!(back, single);

    let blob = Blob {
        data: vec![7; 300],
        key: [1, 2, 3, 4],
        frozen: vec![9, 9].into_boxed_slice(),
        maybe: Some(vec![5]),
    };
    let bytes = cbor(&blob);
    // 300 bytes of data + 4 + 2 + 1 + keys and headers: far less than 300
    // integers would take if any of them were sequences.
    assert!(bytes.len() < 360, "{}", bytes.len());
    let back: Blob = ciborium::from_reader(bytes.as_slice()).expect("decode");
    assert_eq!(back, blob);
}
