//! The raw Noise baseline of `remote.rs`: the links' Noise pattern and
//! cipher (`mobility_net::tcp::noise::PARAMS`, through `snow`) by hand over
//! a loopback socket, with nothing of mobility's transport around it.
//!
//! The handshake runs in memory (it is not what is measured); then each
//! direction of the socket is a stream of Noise transport messages, as on
//! the links: a u16 big-endian length, then at most 65,535 bytes sealed by
//! ChaCha20-Poly1305, numbered by the nonce from 0. Their plaintexts,
//! joined, are frames with the raw TCP baseline's framing (a u32 big-endian
//! length, then CBOR).

use std::ops::Range;

use mobility_net::tcp::noise::{self, MAX_PIECE, TAG_LEN};
use mobility_net::tcp::NodeKey;
use snow::StatelessTransportState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One end of a socket speaking Noise transport messages.
pub struct NoiseEnd {
    keys: StatelessTransportState,
    send_nonce: u64,
    recv_nonce: u64,
    /// Sealed messages waiting to be written.
    out: Vec<u8>,
    /// One sealed message read.
    sealed: Vec<u8>,
    /// Plaintext opened; `plain[taken..]` is not yet cut into frames.
    plain: Vec<u8>,
    taken: usize,
}

/// The dialer's and the listener's ends of a Noise handshake run in memory
/// with the links' pattern, a pre-shared key and fresh static keys.
pub fn pair() -> (NoiseEnd, NoiseEnd) {
    let psk = noise::psk(&"raw noise baseline".into());
    let key = || NodeKey::generate().expect("random");
    let (hello_d, hello_l) = (b"raw-dialer", b"raw-listener");
    let mut d = noise::dialer(&psk, &key(), hello_d, hello_l).expect("dialer");
    let mut l = noise::listener(&psk, &key(), hello_d, hello_l).expect("listener");
    noise::read(&mut l, &noise::write(&mut d, &[]).expect("e")).expect("e");
    noise::read(&mut d, &noise::write(&mut l, &[]).expect("e, ee, s, es")).expect("s");
    noise::read(&mut l, &noise::write(&mut d, &[]).expect("s, se, psk")).expect("psk");
    let end = |state| NoiseEnd {
        keys: noise::finish(state).expect("transport keys"),
        send_nonce: 0,
        recv_nonce: 0,
        out: Vec::new(),
        sealed: Vec::new(),
        plain: Vec::new(),
        taken: 0,
    };
    (end(d), end(l))
}

impl NoiseEnd {
    /// Seals `bytes` (one or several frames, or part of one) in messages
    /// of at most `MAX_PIECE` bytes of plaintext, after what waits to be
    /// written.
    pub fn seal(&mut self, bytes: &[u8]) {
        for piece in bytes.chunks(MAX_PIECE) {
            let at = self.out.len();
            self.out.resize(at + 2 + piece.len() + TAG_LEN, 0);
            let len = self
                .keys
                .write_message(self.send_nonce, piece, &mut self.out[at + 2..])
                .expect("seals");
            self.send_nonce += 1;
            self.out[at..at + 2].copy_from_slice(&(len as u16).to_be_bytes());
        }
    }

    /// Writes what was sealed.
    pub async fn write<W: AsyncWriteExt + Unpin>(&mut self, writer: &mut W) {
        writer.write_all(&self.out).await.expect("write");
        self.out.clear();
    }

    /// Reads and opens messages until one whole frame is in: the range of
    /// its payload (read it with [`NoiseEnd::plain`]); `None` at the end
    /// of the stream.
    pub async fn read_frame<R: AsyncReadExt + Unpin>(
        &mut self,
        reader: &mut R,
    ) -> Option<Range<usize>> {
        if self.taken == self.plain.len() {
            self.plain.clear();
            self.taken = 0;
        }
        loop {
            let rest = &self.plain[self.taken..];
            if let Some(head) = rest.get(..4) {
                let len = u32::from_be_bytes(head.try_into().expect("4 bytes")) as usize;
                if rest.len() >= 4 + len {
                    let start = self.taken + 4;
                    self.taken = start + len;
                    return Some(start..start + len);
                }
                self.plain.reserve(4 + len - rest.len());
            }
            let mut len = [0u8; 2];
            reader.read_exact(&mut len).await.ok()?;
            let len = usize::from(u16::from_be_bytes(len));
            self.sealed.resize(len, 0);
            reader.read_exact(&mut self.sealed).await.ok()?;
            let at = self.plain.len();
            self.plain.resize(at + len - TAG_LEN, 0);
            self.keys
                .read_message(self.recv_nonce, &self.sealed, &mut self.plain[at..])
                .expect("opens");
            self.recv_nonce += 1;
        }
    }

    /// Opened plaintext (a range [`NoiseEnd::read_frame`] returned).
    pub fn plain(&self, range: Range<usize>) -> &[u8] {
        &self.plain[range]
    }
}
