//! Issues and redeems one token against `make run`:
//! `cargo run --release -p privacypass-rpc --features client --example client [URL]`.
use std::{error::Error, sync::Arc};

use privacypass_core::directory::IssuerDirectory;
use privacypass_core::{b64, Client, PublicKey, TokenChallenge, TokenType};
use privacypass_rpc::{IssueToken, RedeemToken, Redeemed};

pub async fn issue_and_redeem(url: &str) -> Result<Redeemed, Box<dyn Error>> {
    let dir = format!("{url}/.well-known/private-token-issuer-directory");
    let dir = IssuerDirectory::from_json(&ureq::get(&dir).call()?.body_mut().read_to_vec()?)?;
    let listed = dir
        .keys_of_type(TokenType::BlindRsa2048)
        .next()
        .ok_or("no key")?;
    let key = Arc::new(PublicKey::from_spki(&listed.token_key)?);
    let key_id = hex::encode(key.token_key_id());
    let rpc = privacypass_rpc::client(format!("{url}/rpc"))?;
    let challenge = TokenChallenge::new(TokenType::BlindRsa2048.value(), b"example.com", &[], b"")?;
    let pending = Client::new(key).request(&challenge)?;
    let blinded = b64::encode_url(&pending.request().encode());
    let signed = rpc.issue_token(blinded, key_id).await?;
    let token = pending
        .finalize(&b64::decode_any(signed.blind_sig().ok_or("no blind-sig")?).ok_or("bad")?)?;
    let token = b64::encode_url(&token.encode());
    Ok(rpc.redeem_token(token, None).await?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let url = std::env::args().nth(1);
    let url = url.as_deref().unwrap_or("http://127.0.0.1:8787");
    println!("{:?}", issue_and_redeem(url).await?);
    Ok(())
}
