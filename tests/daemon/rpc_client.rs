//! The typed Rust client of `privacypass-rpc` against the real daemon: the README's example
//! itself, and the error codes a client sees.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
// The example of rpc/README.md, compiled here as it is there.
#[allow(dead_code)]
#[path = "../../rpc/examples/client.rs"]
mod example;

use common::*;
use privacypass_core::b64;
use privacypass_rpc::jsonrpsee::core::client::Error;
use privacypass_rpc::{IssueToken, PrivacyPassClient, RedeemToken, Redeemed};

#[test]
fn the_readme_example_is_the_example_that_runs() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/../rpc/README.md")).unwrap();
    let example = std::fs::read_to_string(format!("{root}/../rpc/examples/client.rs")).unwrap();
    assert!(
        readme.contains(&format!("```rust\n{example}```")),
        "rpc/README.md must show rpc/examples/client.rs as it is"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_client_issues_and_redeems() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &[]);
    let outcome = example::issue_and_redeem(&daemon.url).await.unwrap();
    assert_eq!(outcome, Redeemed::Success);

    // What a client sees of a refusal: the code of the error table.
    let minter = Minter::new(daemon.issuer_key());
    let client = privacypass_rpc::client(format!("{}/api/redeem", daemon.url)).unwrap();
    let token = b64::encode_url(&minter.token().encode());
    assert_eq!(
        client.redeem_token(token.clone(), None).await.unwrap(),
        Redeemed::Success
    );
    let code = |e: Error| match e {
        Error::Call(e) => e.code(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        code(client.redeem_token(token, None).await.unwrap_err()),
        -32021
    );
    let key_id = hex::encode(daemon.issuer_key().public_key().token_key_id());
    let issued = client.issue_token("AAAA".into(), key_id.clone()).await;
    assert_eq!(code(issued.unwrap_err()), -32040);
    // The other form of redeem, through the generated method.
    let data = vec![b64::encode_std(&minter.token().encode())];
    let rpc = privacypass_rpc::client(format!("{}/rpc", daemon.url)).unwrap();
    let redeemed = rpc.redeem(None, None, Some(data), None, Some(false)).await;
    assert_eq!(redeemed.unwrap(), Redeemed::Success);
    let issued = rpc.issue_token("!!".into(), key_id).await;
    assert_eq!(code(issued.unwrap_err()), -32024);
}
