//! RFC 9577 HTTP authentication: the `WWW-Authenticate: PrivateToken ...` challenges an origin
//! sends and the `Authorization: PrivateToken token=...` credentials a client answers with.
//!
//! The parser follows RFC 9110 §11: several challenges may share one header, parameter values
//! may be tokens or quoted strings, parameter names are case-insensitive, and unknown
//! parameters are ignored.

use crate::b64;
use crate::wire::{DecodeError, Token, TokenChallenge};

/// The authentication scheme name.
pub const SCHEME: &str = "PrivateToken";
/// Header values longer than this are refused before parsing.
pub const MAX_HEADER_LEN: usize = 16 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("header value is longer than {MAX_HEADER_LEN} bytes")]
    TooLong,
    #[error("malformed header: {0}")]
    Malformed(&'static str),
    #[error("the authentication scheme is not PrivateToken")]
    WrongScheme,
    #[error("the PrivateToken credentials carry no token parameter")]
    MissingToken,
    #[error("the header carries more than one token")]
    MultipleTokens,
    #[error("the {0} parameter is not valid base64url")]
    BadBase64(&'static str),
    #[error("the {0} parameter is missing")]
    MissingParameter(&'static str),
    #[error("max-age is not a number of seconds")]
    BadMaxAge,
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// One challenge or credentials: a scheme and its parameters (names lower-cased).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthItem {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl AuthItem {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// Splits a `WWW-Authenticate` or `Authorization` value into schemes with their parameters.
pub fn parse_auth_items(value: &str) -> Result<Vec<AuthItem>, HeaderError> {
    if value.len() > MAX_HEADER_LEN {
        return Err(HeaderError::TooLong);
    }
    let s = value.as_bytes();
    let mut i = 0;
    let mut items: Vec<AuthItem> = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < s.len() && (s[*i] == b' ' || s[*i] == b'\t') {
            *i += 1;
        }
    };
    loop {
        // Skip separators between list elements.
        while i < s.len() && (s[i] == b' ' || s[i] == b'\t' || s[i] == b',') {
            i += 1;
        }
        if i >= s.len() {
            break;
        }
        let start = i;
        while i < s.len() && is_tchar(s[i]) {
            i += 1;
        }
        if start == i {
            return Err(HeaderError::Malformed(
                "expected a scheme or parameter name",
            ));
        }
        let name = &value[start..i];
        let mut j = i;
        skip_ws(&mut j);
        if j < s.len() && s[j] == b'=' {
            // A parameter of the current scheme.
            let Some(item) = items.last_mut() else {
                return Err(HeaderError::Malformed("parameter before any scheme"));
            };
            j += 1;
            skip_ws(&mut j);
            let val = if j < s.len() && s[j] == b'"' {
                j += 1;
                let mut out = String::new();
                loop {
                    match s.get(j) {
                        None => return Err(HeaderError::Malformed("unterminated quoted string")),
                        Some(b'"') => {
                            j += 1;
                            break;
                        }
                        Some(b'\\') => {
                            let Some(&c) = s.get(j + 1) else {
                                return Err(HeaderError::Malformed("unterminated quoted string"));
                            };
                            out.push(char::from(c));
                            j += 2;
                        }
                        Some(&c) => {
                            out.push(char::from(c));
                            j += 1;
                        }
                    }
                }
                out
            } else {
                // Unquoted: a token, also allowing the '=' padding of base64 values.
                let vstart = j;
                while j < s.len() && (is_tchar(s[j]) || s[j] == b'=' || s[j] == b'/') {
                    j += 1;
                }
                if vstart == j {
                    return Err(HeaderError::Malformed("parameter without a value"));
                }
                value[vstart..j].to_owned()
            };
            item.params.push((name.to_ascii_lowercase(), val));
            i = j;
            skip_ws(&mut i);
            if i < s.len() && s[i] != b',' {
                return Err(HeaderError::Malformed("expected ',' after a parameter"));
            }
        } else {
            let mut item = AuthItem {
                scheme: name.to_owned(),
                params: Vec::new(),
            };
            i = j;
            // `scheme token68` (as in `Bearer abc==`): kept as a parameter with an empty name.
            let t_start = i;
            let mut t = i;
            while t < s.len() && (s[t].is_ascii_alphanumeric() || b"-._~+/".contains(&s[t])) {
                t += 1;
            }
            if t > t_start {
                while t < s.len() && s[t] == b'=' {
                    t += 1;
                }
                let mut after = t;
                skip_ws(&mut after);
                if after == s.len() || s[after] == b',' {
                    item.params
                        .push((String::new(), value[t_start..t].to_owned()));
                    i = after;
                }
            }
            items.push(item);
            if i < s.len() && s[i] != b',' && s[i] != b' ' && s[i] != b'\t' && !is_tchar(s[i]) {
                return Err(HeaderError::Malformed("unexpected character after scheme"));
            }
        }
    }
    Ok(items)
}

/// A `PrivateToken` challenge as an origin sends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrivateTokenChallenge {
    /// The encoded TokenChallenge, exactly as received.
    pub challenge_bytes: Vec<u8>,
    pub challenge: TokenChallenge,
    /// The issuer public key (SPKI for type 2).
    pub token_key: Vec<u8>,
    pub max_age: Option<u64>,
}

impl PrivateTokenChallenge {
    pub fn new(challenge: TokenChallenge, token_key: Vec<u8>, max_age: Option<u64>) -> Self {
        PrivateTokenChallenge {
            challenge_bytes: challenge.encode(),
            challenge,
            token_key,
            max_age,
        }
    }

    /// The challenge as one element of a `WWW-Authenticate` value.
    pub fn to_header_value(&self) -> String {
        let mut out = format!(
            "{SCHEME} challenge=\"{}\", token-key=\"{}\"",
            b64::encode_url_padded(&self.challenge_bytes),
            b64::encode_url_padded(&self.token_key)
        );
        if let Some(age) = self.max_age {
            out.push_str(&format!(", max-age=\"{age}\""));
        }
        out
    }
}

/// Several challenges in one `WWW-Authenticate` value.
pub fn www_authenticate(challenges: &[PrivateTokenChallenge]) -> String {
    challenges
        .iter()
        .map(PrivateTokenChallenge::to_header_value)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `PrivateToken` challenges of a `WWW-Authenticate` value; other schemes are skipped.
pub fn parse_www_authenticate(value: &str) -> Result<Vec<PrivateTokenChallenge>, HeaderError> {
    let mut out = Vec::new();
    for item in parse_auth_items(value)? {
        if !item.scheme.eq_ignore_ascii_case(SCHEME) {
            continue;
        }
        let challenge_b64 = item
            .param("challenge")
            .ok_or(HeaderError::MissingParameter("challenge"))?;
        let challenge_bytes =
            b64::decode_url(challenge_b64).ok_or(HeaderError::BadBase64("challenge"))?;
        let challenge = TokenChallenge::decode(&challenge_bytes)?;
        let token_key = b64::decode_url(
            item.param("token-key")
                .ok_or(HeaderError::MissingParameter("token-key"))?,
        )
        .ok_or(HeaderError::BadBase64("token-key"))?;
        let max_age = match item.param("max-age") {
            None => None,
            Some(v) => Some(v.parse::<u64>().map_err(|_| HeaderError::BadMaxAge)?),
        };
        out.push(PrivateTokenChallenge {
            challenge_bytes,
            challenge,
            token_key,
            max_age,
        });
    }
    Ok(out)
}

/// `Authorization: PrivateToken token="..."` for a token.
pub fn authorization(token: &Token) -> String {
    format!(
        "{SCHEME} token=\"{}\"",
        b64::encode_url_padded(&token.encode())
    )
}

/// The token bytes of an `Authorization` value. Anything but exactly one PrivateToken
/// credential with exactly one `token` parameter is refused.
pub fn parse_authorization(value: &str) -> Result<Vec<u8>, HeaderError> {
    let items = parse_auth_items(value)?;
    let item = match items.as_slice() {
        [] => return Err(HeaderError::Malformed("empty credentials")),
        [one] => one,
        _ => return Err(HeaderError::MultipleTokens),
    };
    if !item.scheme.eq_ignore_ascii_case(SCHEME) {
        return Err(HeaderError::WrongScheme);
    }
    let mut tokens = item.params.iter().filter(|(k, _)| k == "token");
    let token = tokens.next().ok_or(HeaderError::MissingToken)?;
    if tokens.next().is_some() {
        return Err(HeaderError::MultipleTokens);
    }
    b64::decode_url(&token.1).ok_or(HeaderError::BadBase64("token"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quoted_unquoted_and_several_schemes() {
        let items = parse_auth_items(
            r#"Basic realm="x, y", PrivateToken challenge=abc==, token-key="k\"q", max-age=10"#,
        )
        .unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].param("realm"), Some("x, y"));
        assert_eq!(items[1].param("challenge"), Some("abc=="));
        assert_eq!(items[1].param("token-key"), Some("k\"q"));
        assert_eq!(items[1].param("max-age"), Some("10"));
    }

    #[test]
    fn authorization_errors() {
        assert_eq!(
            parse_authorization("Bearer abc"),
            Err(HeaderError::WrongScheme)
        );
        assert_eq!(
            parse_authorization("Bearer abc=="),
            Err(HeaderError::WrongScheme)
        );
        assert_eq!(
            parse_auth_items("Bearer abc==").unwrap()[0].params,
            vec![(String::new(), "abc==".to_owned())]
        );
        assert_eq!(
            parse_authorization("PrivateToken abc"),
            Err(HeaderError::MissingToken)
        );
        assert_eq!(
            parse_authorization("PrivateToken"),
            Err(HeaderError::MissingToken)
        );
        assert_eq!(
            parse_authorization("PrivateToken token=AA, token=AA"),
            Err(HeaderError::MultipleTokens)
        );
        assert_eq!(
            parse_authorization("PrivateToken token=AA, PrivateToken token=AA"),
            Err(HeaderError::MultipleTokens)
        );
        assert_eq!(
            parse_authorization("PrivateToken token=\"*\""),
            Err(HeaderError::BadBase64("token"))
        );
        assert_eq!(
            parse_authorization(&"a".repeat(MAX_HEADER_LEN + 1)),
            Err(HeaderError::TooLong)
        );
        assert!(matches!(
            parse_authorization("PrivateToken token=\"AA"),
            Err(HeaderError::Malformed(_))
        ));
        assert_eq!(
            parse_authorization("privatetoken token=AQI").unwrap(),
            vec![1, 2]
        );
    }
}
