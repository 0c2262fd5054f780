//! Spends fresh nonces from several threads and prints each nonce once its spend is
//! acknowledged, until killed. The crash test kills it with SIGKILL and checks that every
//! printed spend survived.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::Arc;

use privacypass_core::SpendStore;
use privacypass_stores::rocks::RocksStore;

fn main() {
    let path = std::env::args().nth(1).expect("usage: spend_writer DIR");
    let store = Arc::new(RocksStore::open(path).expect("open store"));
    let threads: Vec<_> = (0..8u8)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0u64.. {
                    let mut nonce = [t; 32];
                    nonce[..8].copy_from_slice(&i.to_be_bytes());
                    store.spend(&[7; 32], &nonce, u64::MAX).expect("spend");
                    let line = format!("{}\n", hex::encode(nonce));
                    std::io::stdout()
                        .lock()
                        .write_all(line.as_bytes())
                        .expect("stdout");
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}
