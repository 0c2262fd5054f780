//! `privacypassd demo --url URL`: the whole protocol as a client against a running daemon,
//! with readable output: directory, token requests through each issuance route, finalize,
//! redemption in both parameter forms, and the refused double spend; then the same cycle for
//! each privately verifiable key type (0x0001, 0x0005) the directory lists.

use std::sync::Arc;
use std::time::Duration;

use privacypass_core::directory::IssuerDirectory;
use privacypass_core::{
    b64, crypto, Client, PendingToken, PublicKey, Token, TokenChallenge, TokenType, VoprfClient,
    VoprfPublicKey,
};
use privacypass_rpc::{IssueParams, RedeemParams};
use serde_json::{json, Value};
use ureq::Agent;

fn agent() -> Agent {
    Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

/// A POST carrying the API key, when one is given.
fn post(
    agent: &Agent,
    url: &str,
    api_key: Option<&str>,
) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
    let req = agent.post(url);
    match api_key {
        Some(key) => req.header("authorization", format!("Bearer {key}")),
        None => req,
    }
}

/// The params of `issue` for an encoded TokenRequest and the key's id (hex).
fn issue_params(request: &[u8], key_id: &str) -> IssueParams {
    IssueParams {
        blinded_token: b64::encode_url(request),
        key_id: key_id.to_owned(),
    }
}

fn rpc(
    agent: &Agent,
    api_key: Option<&str>,
    url: &str,
    method: &str,
    params: impl serde::Serialize,
) -> Result<Value, String> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let mut resp = post(agent, url, api_key)
        .send_json(&body)
        .map_err(|e| format!("{url}: {e}"))?;
    resp.body_mut()
        .read_json::<Value>()
        .map_err(|e| format!("{url}: {e}"))
}

fn finalize(pending: &PendingToken, blind_sig: &[u8]) -> Result<Token, String> {
    pending
        .finalize(blind_sig)
        .map_err(|e| format!("finalize: {e}"))
}

fn blind_sig_of(answer: &Value, key: &str) -> Result<Vec<u8>, String> {
    answer
        .pointer(key)
        .and_then(Value::as_str)
        .and_then(b64::decode_any)
        .ok_or_else(|| format!("unexpected answer: {answer}"))
}

/// Runs the demo; `api_key` is sent as `Authorization: Bearer` when the daemon requires one.
pub fn run(url: &str, api_key: Option<&str>) -> Result<(), String> {
    let base = url.trim_end_matches('/');
    let agent = agent();
    println!("privacypass demo against {base}\n");

    let dir_url = format!("{base}/.well-known/private-token-issuer-directory");
    let mut resp = agent
        .get(&dir_url)
        .call()
        .map_err(|e| format!("{dir_url}: {e}"))?;
    let body = resp
        .body_mut()
        .read_to_vec()
        .map_err(|e| format!("{dir_url}: {e}"))?;
    let directory = IssuerDirectory::from_json(&body).map_err(|e| format!("{dir_url}: {e}"))?;
    let spki = &directory
        .keys_of_type(TokenType::BlindRsa2048)
        .next()
        .ok_or_else(|| format!("{dir_url}: the directory lists no token type 2 key"))?
        .token_key;
    let key = Arc::new(PublicKey::from_spki(spki).map_err(|e| format!("directory key: {e}"))?);
    let key_id = hex::encode(key.token_key_id());
    println!(
        "1. directory: {} key(s); using token_key_id {key_id}",
        directory.token_keys.len()
    );

    let mut context = [0u8; 32];
    crypto::random_bytes(&mut context).map_err(|e| e.to_string())?;
    let challenge = TokenChallenge::new(2, host_of(base).as_bytes(), &context, b"")
        .map_err(|e| e.to_string())?;
    let challenge_b64 = b64::encode_url(&challenge.encode());
    println!(
        "2. challenge: issuer {:?}, fresh redemption context",
        host_of(base)
    );
    let client = Client::new(key);
    let mut tokens = Vec::new();

    let pending = client.request(&challenge).map_err(|e| e.to_string())?;
    let answer = rpc(
        &agent,
        api_key,
        &format!("{base}/rpc"),
        "issue",
        issue_params(&pending.request().encode(), &key_id),
    )?;
    tokens.push(finalize(
        &pending,
        &blind_sig_of(&answer, "/result/blind-sig")?,
    )?);
    println!("3. issued through POST /rpc (JSON-RPC issue): token finalized and verified");

    let pending = client.request(&challenge).map_err(|e| e.to_string())?;
    let rest_url = format!("{base}/api/v1/privacy-passes");
    let mut resp = post(&agent, &rest_url, api_key)
        .send_json(issue_params(&pending.request().encode(), &key_id))
        .map_err(|e| format!("{rest_url}: {e}"))?;
    let answer: Value = resp
        .body_mut()
        .read_json()
        .map_err(|e| format!("{rest_url}: {e}"))?;
    tokens.push(finalize(&pending, &blind_sig_of(&answer, "/blind-sig")?)?);
    println!("4. issued through POST /api/v1/privacy-passes (REST): token finalized and verified");

    let pending = client.request(&challenge).map_err(|e| e.to_string())?;
    let native_url = format!("{base}/token-request");
    let mut resp = post(&agent, &native_url, api_key)
        .header("content-type", crate::http::TOKEN_REQUEST_TYPE)
        .send(&pending.request().encode()[..])
        .map_err(|e| format!("{native_url}: {e}"))?;
    if resp.status() != 200 {
        return Err(format!("{native_url}: HTTP {}", resp.status()));
    }
    let body = resp.body_mut().read_to_vec().map_err(|e| e.to_string())?;
    tokens.push(finalize(&pending, &body)?);
    println!("5. issued through POST /token-request (RFC 9578): token finalized and verified");

    let rpc_url = format!("{base}/rpc");
    let redeem_url = format!("{base}/api/redeem");
    for (i, token) in tokens.iter().enumerate() {
        let encoded = token.encode();
        let answer = if i % 2 == 0 {
            rpc(
                &agent,
                api_key,
                &rpc_url,
                "redeem",
                RedeemParams::Token {
                    token: b64::encode_url(&encoded),
                    challenge: Some(challenge_b64.clone()),
                },
            )?
        } else {
            rpc(
                &agent,
                api_key,
                &redeem_url,
                "redeem",
                RedeemParams::Data {
                    data: vec![b64::encode_std(&encoded)],
                    bindings: vec![challenge_b64.clone()],
                    compressed: false,
                },
            )?
        };
        if answer["result"] != "success" {
            return Err(format!("redeem of token {}: {answer}", i + 1));
        }
        let route = if i % 2 == 0 {
            "POST /rpc (token/challenge)"
        } else {
            "POST /api/redeem (data/bindings)"
        };
        println!(
            "6.{} redeemed token {} through {route}: success",
            i + 1,
            i + 1
        );
    }

    let again = rpc(
        &agent,
        api_key,
        &rpc_url,
        "redeem",
        RedeemParams::Token {
            token: b64::encode_url(&tokens[0].encode()),
            challenge: None,
        },
    )?;
    let code = again.pointer("/error/code").and_then(Value::as_i64);
    if code != Some(-32021) {
        return Err(format!(
            "the second redeem was not refused as spent: {again}"
        ));
    }
    println!(
        "7. second redeem of token 1: refused, error {} ({})",
        -32021,
        again["error"]["message"].as_str().unwrap_or("")
    );
    let mut issued = 3;
    let mut refused = 1;
    for token_type in [TokenType::VoprfP384, TokenType::VoprfRistretto255] {
        let Some(listed) = directory.keys_of_type(token_type).next() else {
            continue;
        };
        let key = Arc::new(
            VoprfPublicKey::from_bytes(token_type, &listed.token_key)
                .map_err(|e| format!("directory key of type {}: {e}", token_type.value()))?,
        );
        issued += voprf_cycle(&agent, api_key, base, key)?;
        refused += 1;
    }
    println!(
        "\ndemo complete: {issued} tokens issued, {issued} redeemed, {refused} double spend(s) refused"
    );
    Ok(())
}

/// The cycle for a privately verifiable key: a token through `/token-request` and one through
/// JSON-RPC `issue`, each finalized (the proof checked), redeemed once, then a refused double
/// spend. Answers how many tokens it issued.
fn voprf_cycle(
    agent: &Agent,
    api_key: Option<&str>,
    base: &str,
    key: Arc<VoprfPublicKey>,
) -> Result<usize, String> {
    let token_type = key.token_type();
    let name = match token_type {
        TokenType::VoprfP384 => "VOPRF P-384",
        _ => "VOPRF ristretto255",
    };
    let key_id = hex::encode(key.token_key_id());
    println!(
        "\ntoken type 0x{:04x} ({name}): token_key_id {key_id}",
        token_type.value()
    );
    let mut context = [0u8; 32];
    crypto::random_bytes(&mut context).map_err(|e| e.to_string())?;
    let challenge =
        TokenChallenge::new(token_type.value(), host_of(base).as_bytes(), &context, b"")
            .map_err(|e| e.to_string())?;
    let challenge_b64 = b64::encode_url(&challenge.encode());
    let client = VoprfClient::new(key);
    let finalize_voprf = |pending: &privacypass_core::PendingVoprfToken, response: &[u8]| {
        pending
            .finalize(response)
            .map_err(|e| format!("finalize: {e}"))
    };

    let pending = client.request(&challenge).map_err(|e| e.to_string())?;
    let native_url = format!("{base}/token-request");
    let mut resp = post(agent, &native_url, api_key)
        .header("content-type", crate::http::TOKEN_REQUEST_TYPE)
        .send(&pending.request().encode()[..])
        .map_err(|e| format!("{native_url}: {e}"))?;
    if resp.status() != 200 {
        return Err(format!("{native_url}: HTTP {}", resp.status()));
    }
    let body = resp.body_mut().read_to_vec().map_err(|e| e.to_string())?;
    let mut tokens = vec![finalize_voprf(&pending, &body)?];
    println!("  issued through POST /token-request: proof verified, token finalized");

    let pending = client.request(&challenge).map_err(|e| e.to_string())?;
    let answer = rpc(
        agent,
        api_key,
        &format!("{base}/rpc"),
        "issue",
        issue_params(&pending.request().encode(), &key_id),
    )?;
    tokens.push(finalize_voprf(
        &pending,
        &blind_sig_of(&answer, "/result/blind-sig")?,
    )?);
    println!("  issued through POST /rpc (JSON-RPC issue): proof verified, token finalized");

    let rpc_url = format!("{base}/rpc");
    let redeem_url = format!("{base}/api/redeem");
    for (i, token) in tokens.iter().enumerate() {
        let encoded = token.encode();
        let (url, params) = if i == 0 {
            (
                &rpc_url,
                RedeemParams::Token {
                    token: b64::encode_url(&encoded),
                    challenge: Some(challenge_b64.clone()),
                },
            )
        } else {
            (
                &redeem_url,
                RedeemParams::Data {
                    data: vec![b64::encode_std(&encoded)],
                    bindings: vec![challenge_b64.clone()],
                    compressed: false,
                },
            )
        };
        let answer = rpc(agent, api_key, url, "redeem", params)?;
        if answer["result"] != "success" {
            return Err(format!("redeem of {name} token {}: {answer}", i + 1));
        }
        println!("  redeemed token {} through {url}: success", i + 1);
    }
    let again = rpc(
        agent,
        api_key,
        &rpc_url,
        "redeem",
        RedeemParams::Token {
            token: b64::encode_url(&tokens[0].encode()),
            challenge: None,
        },
    )?;
    if again.pointer("/error/code").and_then(Value::as_i64) != Some(-32021) {
        return Err(format!(
            "the second redeem of a {name} token was not refused as spent: {again}"
        ));
    }
    println!("  second redeem of token 1: refused, error -32021");
    Ok(tokens.len())
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn host_is_taken_from_the_url() {
        assert_eq!(host_of("http://127.0.0.1:8787"), "127.0.0.1");
        assert_eq!(host_of("https://issuer.example/path"), "issuer.example");
        assert_eq!(host_of("issuer.example:80"), "issuer.example");
    }
}
