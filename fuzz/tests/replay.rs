//! Replays every committed corpus (seeds and regressions) through its
//! target's body on stable `cargo test`, without libFuzzer.

use std::path::Path;

fn replay_corpus(target: &str, body: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("readable");
        eprintln!("{target}: {}", path.display());
        body(&bytes);
        count += 1;
    }
    assert!(count > 0, "no seeds for {target}");
}

macro_rules! targets {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                replay_corpus(stringify!($name), mobility_fuzz::$name);
            }
        )*
    };
}

targets!(
    hello,
    noise,
    cert,
    records,
    session_frames,
    peer_msg,
    compact,
    snapshot,
    gossip_datagram,
    gossip_payload,
    replay,
);
