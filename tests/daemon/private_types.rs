//! Privately verifiable token types 0x0001 (VOPRF P-384) and 0x0005 (VOPRF ristretto255) in the
//! daemon: keys, the issuer directory, issuance and redemption.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::*;
use privacypass::directory::IssuerDirectory;
use privacypass::TokenType;

fn privacypassd(args: &[&str], keys_dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_privacypassd"))
        .args(args)
        .arg("--keys-dir")
        .arg(keys_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "privacypassd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The hex key id `keys generate` / `keys import` printed.
fn printed_id(out: &str) -> String {
    out.split_whitespace()
        .find(|w| w.len() == 64 && w.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap()
        .to_owned()
}

/// A keys directory holding one key of each type; their ids (hex) in the order 2, 1, 5.
fn three_keys(keys_dir: &Path) -> [String; 3] {
    ["blind-rsa-2048", "voprf-p384", "voprf-ristretto255"]
        .map(|t| printed_id(&privacypassd(&["keys", "generate", "--type", t], keys_dir)))
}

fn directory(daemon: &Daemon) -> IssuerDirectory {
    let mut resp = agent()
        .get(format!(
            "{}/.well-known/private-token-issuer-directory",
            daemon.url
        ))
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    IssuerDirectory::from_json(resp.body_mut().read_to_string().unwrap().as_bytes()).unwrap()
}

#[test]
fn the_directory_lists_a_key_of_each_type_with_its_type_and_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let keys_dir = dir.path().join("keys");
    let ids = three_keys(&keys_dir);
    let daemon = Daemon::start(dir.path(), &["--keys-dir", keys_dir.to_str().unwrap()]);
    let listed = directory(&daemon);
    assert_eq!(listed.token_keys.len(), 3, "{listed:?}");
    let mut by_type: Vec<(u16, usize, String)> = listed
        .token_keys
        .iter()
        .map(|k| {
            (
                k.token_type,
                k.token_key.len(),
                hex::encode(privacypass::crypto::sha256(&k.token_key)),
            )
        })
        .collect();
    by_type.sort();
    assert_eq!(by_type[0].0, 1);
    assert_eq!(by_type[0].1, 49, "compressed SEC1 P-384");
    assert_eq!(by_type[0].2, ids[1]);
    assert_eq!(by_type[1].0, 2);
    assert_eq!(by_type[1].2, ids[0]);
    assert_eq!(by_type[2].0, 5);
    assert_eq!(by_type[2].1, 32, "ristretto255 element");
    assert_eq!(by_type[2].2, ids[2]);
    // The C library's reader takes only type-2 keys from it.
    assert_eq!(listed.keys_of_type(TokenType::BlindRsa2048).count(), 1);
}

#[test]
fn voprf_keys_generate_list_import_and_retire() {
    let dir = tempfile::tempdir().unwrap();
    let keys_dir = dir.path().join("keys");
    let ids = three_keys(&keys_dir);
    for id in &ids {
        let mode = std::fs::metadata(keys_dir.join(format!("{id}.pem")))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{id}");
        assert!(keys_dir.join(format!("{id}.json")).exists());
    }
    let pem = std::fs::read_to_string(keys_dir.join(format!("{}.pem", ids[1]))).unwrap();
    assert!(
        pem.starts_with("-----BEGIN PRIVACYPASS VOPRF P384"),
        "{pem}"
    );

    // Import the vectors' keys from their raw scalar hex.
    let vectors = |name: &str| -> serde_json::Value {
        let path = format!("{}/../tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let mut imported = Vec::new();
    for (name, key_type) in [
        ("rfc9578-type1-voprf-p384.json", "voprf-p384"),
        (
            "batched-tokens-draft-voprf-ristretto255.json",
            "voprf-ristretto255",
        ),
    ] {
        let v = vectors(name);
        let sk = dir.path().join(format!("{key_type}.hex"));
        std::fs::write(&sk, format!("{}\n", v[0]["skS"].as_str().unwrap())).unwrap();
        let out = privacypassd(
            &["keys", "import", sk.to_str().unwrap(), "--type", key_type],
            &keys_dir,
        );
        let pk = hex::decode(v[0]["pkS"].as_str().unwrap()).unwrap();
        let id = printed_id(&out);
        assert_eq!(id, hex::encode(privacypass::crypto::sha256(&pk)), "{out}");
        assert!(!out.contains(v[0]["skS"].as_str().unwrap()));
        imported.push(id);
    }
    // A P-384 scalar is not a ristretto255 key.
    let sk = dir.path().join("voprf-p384.hex");
    let out = Command::new(env!("CARGO_BIN_EXE_privacypassd"))
        .args([
            "keys",
            "import",
            sk.to_str().unwrap(),
            "--type",
            "voprf-ristretto255",
        ])
        .arg("--keys-dir")
        .arg(&keys_dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains(&std::fs::read_to_string(&sk).unwrap().trim().to_string()[..16]));

    let list = privacypassd(&["keys", "list"], &keys_dir);
    let row = |id: &str| list.lines().find(|l| l.starts_with(id)).unwrap().to_owned();
    assert!(row(&ids[0]).contains("blind-rsa-2048"), "{list}");
    assert!(row(&ids[1]).contains("voprf-p384"), "{list}");
    assert!(row(&ids[2]).contains("voprf-ristretto255"), "{list}");
    assert!(row(&imported[0]).contains("voprf-p384"), "{list}");
    assert!(row(&imported[1]).contains("voprf-ristretto255"), "{list}");
    assert!(row(&ids[1]).contains("active"), "{list}");

    let daemon = Daemon::start(dir.path(), &["--keys-dir", keys_dir.to_str().unwrap()]);
    assert_eq!(directory(&daemon).token_keys.len(), 5);
    privacypassd(&["keys", "retire", &ids[1][..12]], &keys_dir);
    let list = privacypassd(&["keys", "list"], &keys_dir);
    let row = list.lines().find(|l| l.starts_with(&ids[1])).unwrap();
    assert!(row.contains("grace"), "{list}");
    daemon.signal("HUP");
    let mut left = 0;
    for _ in 0..100 {
        left = directory(&daemon).token_keys.len();
        if left == 4 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        left, 4,
        "the retired VOPRF key left the directory after SIGHUP"
    );
    assert!(directory(&daemon)
        .token_keys
        .iter()
        .all(|k| hex::encode(privacypass::crypto::sha256(&k.token_key)) != ids[1]));
}
