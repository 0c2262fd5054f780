//! Issuer keys: RSA-2048 generation and PEM import/export, the RSASSA-PSS SubjectPublicKeyInfo
//! that RFC 9578 hashes into `token_key_id`, and the key set with validity windows that the
//! issuer and the verifier consult.

use std::sync::Arc;

use zeroize::Zeroizing;

pub use crate::crypto::RsaPrivateKey;
use crate::crypto::{self, PssPublicKey, RsaPublicParts, VoprfPrivateKey};
use crate::rsa_blind::MODULUS_LEN;
use crate::wire::TokenType;

/// SHA-256 of the key's SubjectPublicKeyInfo.
pub type TokenKeyId = [u8; 32];

/// Supported modulus size in bits.
pub const MODULUS_BITS: u32 = 2048;
const PUBLIC_EXPONENT: u32 = 65537;
/// 65537, big-endian, without leading zeros.
const PUBLIC_EXPONENT_BYTES: [u8; 3] = [0x01, 0x00, 0x01];

/// AlgorithmIdentifier { id-RSASSA-PSS, RSASSA-PSS-params { hashAlgorithm sha384,
/// maskGenAlgorithm mgf1(sha384), saltLength 48 } }, DER, as RFC 9578 §6.5 requires.
const PSS_SHA384_ALGORITHM_ID: [u8; 63] = [
    0x30, 0x3d, // SEQUENCE
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, // id-RSASSA-PSS
    0x30, 0x30, // RSASSA-PSS-params
    0xa0, 0x0d, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
    0x02, // [0] sha384
    0xa1, 0x1a, 0x30, 0x18, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
    0x08, // [1] id-mgf1
    0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, // sha384
    0xa2, 0x03, 0x02, 0x01, 0x30, // [2] saltLength 48
];

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not an RSA key in PKCS#8 or PKCS#1 PEM")]
    NotRsaPem,
    #[error("not an RSA SubjectPublicKeyInfo")]
    NotRsaPublicKey,
    #[error("the key is {0} bits; only RSA-{MODULUS_BITS} is supported")]
    WrongSize(u32),
    #[error("the public exponent must be 65537")]
    WrongExponent,
    #[error("the RSASSA-PSS parameters are not SHA-384 / MGF1-SHA-384 / salt 48")]
    WrongPssParameters,
    #[error("the private key fails its consistency check")]
    Inconsistent,
    #[error("key {0} is already in the key set")]
    Duplicate(String),
    #[error(
        "key {new} has truncated id 0x{truncated:02x}, the same as active issuance key {existing}; \
         generate another key or retire {existing} first"
    )]
    TruncatedIdCollision {
        new: String,
        existing: String,
        truncated: u8,
    },
    #[error("not-before must be earlier than expires")]
    EmptyValidity,
    #[error("could not generate a key without a truncated-id collision")]
    GenerationExhausted,
    #[error("token type 0x{0:04x} is not a VOPRF type")]
    NotVoprfType(u16),
    #[error("not a VOPRF private key of this type (a nonzero scalar of the right size)")]
    NotVoprfScalar,
    #[error("not a VOPRF public key of this type (a serialized group element)")]
    NotVoprfPublicKey,
    #[error("not a VOPRF private key PEM")]
    NotVoprfPem,
    #[error("cryptographic backend error")]
    Backend,
}

impl From<crypto::Error> for KeyError {
    fn from(_: crypto::Error) -> Self {
        KeyError::Backend
    }
}

fn der_length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 4);
    out.push(tag);
    der_length(content.len(), &mut out);
    out.extend_from_slice(content);
    out
}

/// An issuer public key with everything derived from it.
pub struct PublicKey {
    modulus: Vec<u8>,
    exponent: Vec<u8>,
    spki: Vec<u8>,
    token_key_id: TokenKeyId,
    parsed: PssPublicKey,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("token_key_id", &hex::encode(self.token_key_id))
            .finish()
    }
}

impl PublicKey {
    /// From the public parts of an RSA key: RSA-2048 with e = 65537 only.
    fn from_parts(parts: RsaPublicParts) -> Result<Self, KeyError> {
        let RsaPublicParts {
            bits,
            modulus,
            exponent,
            pkcs1_der: pkcs1,
        } = parts;
        if bits != MODULUS_BITS {
            return Err(KeyError::WrongSize(bits));
        }
        if exponent != PUBLIC_EXPONENT_BYTES {
            return Err(KeyError::WrongExponent);
        }
        // A 2048-bit modulus without leading zeros is exactly MODULUS_LEN bytes.
        if modulus.len() != MODULUS_LEN {
            return Err(KeyError::Backend);
        }
        let mut bit_string = Vec::with_capacity(pkcs1.len() + 1);
        bit_string.push(0); // no unused bits
        bit_string.extend_from_slice(&pkcs1);
        let mut body = PSS_SHA384_ALGORITHM_ID.to_vec();
        body.extend_from_slice(&der_tlv(0x03, &bit_string));
        let spki = der_tlv(0x30, &body);
        let token_key_id: TokenKeyId = crypto::sha256(&spki);
        let parsed =
            crypto::pss_public_key(&modulus, &exponent).map_err(|_| KeyError::NotRsaPublicKey)?;
        Ok(PublicKey {
            modulus,
            exponent,
            spki,
            token_key_id,
            parsed,
        })
    }

    /// From a SubjectPublicKeyInfo (DER): the RSASSA-PSS form of RFC 9578, whose parameters
    /// must be SHA-384 / MGF1-SHA-384 / 48, or a plain rsaEncryption key.
    ///
    /// The DER is parsed here rather than by OpenSSL: OpenSSL 3.0's decoder fails
    /// intermittently on RSASSA-PSS keys decoded from several threads at once.
    pub fn from_spki(der: &[u8]) -> Result<Self, KeyError> {
        let (modulus, exponent, is_pss) = parse_spki(der)?;
        let key = PublicKey::from_parts(crypto::rsa_public_parts(modulus, exponent)?)?;
        if is_pss && key.spki != der {
            return Err(KeyError::WrongPssParameters);
        }
        Ok(key)
    }

    /// From a `PUBLIC KEY` (SubjectPublicKeyInfo) PEM.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let der = pem_to_der(pem, "PUBLIC KEY").ok_or(KeyError::NotRsaPublicKey)?;
        PublicKey::from_spki(&der)
    }

    /// The RSASSA-PSS SubjectPublicKeyInfo, DER.
    pub fn spki(&self) -> &[u8] {
        &self.spki
    }

    pub fn token_key_id(&self) -> &TokenKeyId {
        &self.token_key_id
    }

    /// The last byte of `token_key_id`, carried in TokenRequests.
    pub fn truncated_token_key_id(&self) -> u8 {
        self.token_key_id[31]
    }

    /// The modulus n, big-endian, `MODULUS_LEN` bytes.
    pub fn modulus(&self) -> &[u8] {
        &self.modulus
    }

    pub fn exponent(&self) -> &[u8] {
        &self.exponent
    }

    /// Verifies an RSASSA-PSS-SHA384 signature over `msg`.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), crate::rsa_blind::RsaError> {
        crate::rsa_blind::verify(&self.parsed, &self.modulus, msg, sig)
    }
}

/// One DER element: (tag, contents, rest). Definite lengths up to 64 KiB.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        n if n < 0x80 => (usize::from(n), rest),
        0x81 => {
            let (&n, rest) = rest.split_first()?;
            (usize::from(n), rest)
        }
        0x82 => {
            let (bytes, rest) = (rest.get(..2)?, rest.get(2..)?);
            (usize::from(u16::from_be_bytes([bytes[0], bytes[1]])), rest)
        }
        _ => return None,
    };
    Some((tag, rest.get(..len)?, rest.get(len..)?))
}

/// A positive DER INTEGER's magnitude, without its sign byte.
fn der_positive_integer(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let (tag, value, rest) = der_element(input)?;
    if tag != 0x02 || value.is_empty() || value[0] & 0x80 != 0 {
        return None;
    }
    let value = if value.len() > 1 && value[0] == 0 {
        &value[1..]
    } else {
        value
    };
    Some((value, rest))
}

/// rsaEncryption AlgorithmIdentifier, with and without its NULL parameters.
const RSA_ENCRYPTION_ALGORITHM_IDS: [&[u8]; 2] = [
    &[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ],
    &[
        0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
    ],
];
const PSS_OID: [u8; 11] = [
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a,
];

/// (n, e, whether the algorithm is RSASSA-PSS) of an RSA SubjectPublicKeyInfo.
fn parse_spki(der: &[u8]) -> Result<(&[u8], &[u8], bool), KeyError> {
    let bad = KeyError::NotRsaPublicKey;
    let (tag, body, rest) = der_element(der).ok_or(bad.clone())?;
    if tag != 0x30 || !rest.is_empty() {
        return Err(bad);
    }
    let (tag, _, after_alg) = der_element(body).ok_or(bad.clone())?;
    let algorithm = &body[..body.len() - after_alg.len()];
    let is_pss = if tag == 0x30 && algorithm.get(2..2 + PSS_OID.len()) == Some(&PSS_OID[..]) {
        if algorithm != PSS_SHA384_ALGORITHM_ID {
            return Err(KeyError::WrongPssParameters);
        }
        true
    } else if RSA_ENCRYPTION_ALGORITHM_IDS.contains(&algorithm) {
        false
    } else {
        return Err(bad);
    };
    let (tag, bits, rest) = der_element(after_alg).ok_or(bad.clone())?;
    if tag != 0x03 || !rest.is_empty() || bits.first() != Some(&0) {
        return Err(bad);
    }
    let (tag, key, rest) = der_element(&bits[1..]).ok_or(bad.clone())?;
    if tag != 0x30 || !rest.is_empty() {
        return Err(bad);
    }
    let (n, rest) = der_positive_integer(key).ok_or(bad.clone())?;
    let (e, rest) = der_positive_integer(rest).ok_or(bad.clone())?;
    if !rest.is_empty() {
        return Err(bad);
    }
    Ok((n, e, is_pss))
}

fn pem_to_der(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = start + pem[start..].find(&end)?;
    let body: String = pem[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    crate::b64::decode_any(&body)
}

/// An issuer private key. Its material never appears in `Debug` output or errors.
pub struct IssuerKey {
    rsa: RsaPrivateKey,
    public: Arc<PublicKey>,
}

impl std::fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerKey")
            .field("token_key_id", &hex::encode(self.public.token_key_id))
            .finish_non_exhaustive()
    }
}

impl IssuerKey {
    /// A fresh RSA-2048 key with e = 65537.
    pub fn generate() -> Result<Self, KeyError> {
        IssuerKey::from_rsa(RsaPrivateKey::generate(MODULUS_BITS, PUBLIC_EXPONENT)?)
    }

    /// From a PKCS#8 (`PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`) PEM.
    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        IssuerKey::from_rsa(RsaPrivateKey::from_pem(pem).map_err(|_| KeyError::NotRsaPem)?)
    }

    /// From the big-endian integers n, e, d, p and q (the CRT values are derived).
    pub fn from_components(
        n: &[u8],
        e: &[u8],
        d: &[u8],
        p: &[u8],
        q: &[u8],
    ) -> Result<Self, KeyError> {
        IssuerKey::from_rsa(rsa_from_components(n, e, d, p, q)?)
    }

    fn from_rsa(rsa: RsaPrivateKey) -> Result<Self, KeyError> {
        let public = Arc::new(PublicKey::from_parts(rsa.public_parts()?)?);
        if !rsa.is_consistent() {
            return Err(KeyError::Inconsistent);
        }
        Ok(IssuerKey { rsa, public })
    }

    /// The key as PKCS#8 PEM. The buffer is wiped when dropped.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        Ok(self.rsa.to_pkcs8_pem()?)
    }

    pub fn public_key(&self) -> &Arc<PublicKey> {
        &self.public
    }

    /// RFC 9474 BlindSign of a blinded message of exactly `MODULUS_LEN` bytes.
    pub fn blind_sign(&self, blinded_msg: &[u8]) -> Result<Vec<u8>, crate::rsa_blind::RsaError> {
        crate::rsa_blind::blind_sign(&self.rsa, &self.public.modulus, blinded_msg)
    }
}

/// An RSA private key of any size from the big-endian integers n, e, d, p and q, with its CRT
/// values derived. `IssuerKey::from_components` takes only RSA-2048; this also serves RFC 9474's
/// 4096-bit vectors.
pub fn rsa_from_components(
    n: &[u8],
    e: &[u8],
    d: &[u8],
    p: &[u8],
    q: &[u8],
) -> Result<RsaPrivateKey, KeyError> {
    Ok(RsaPrivateKey::from_components(n, e, d, p, q)?)
}

/// A VOPRF (RFC 9497) issuer public key of token type 0x0001 or 0x0005: SerializeElement of
/// the key (a compressed SEC1 point for P-384, 49 bytes; the ristretto255 encoding, 32 bytes),
/// which is also the directory's `token-key`, and `token_key_id` = SHA-256 of those bytes.
pub struct VoprfPublicKey {
    token_type: TokenType,
    bytes: Vec<u8>,
    token_key_id: TokenKeyId,
}

impl std::fmt::Debug for VoprfPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoprfPublicKey")
            .field("token_type", &self.token_type)
            .field("token_key_id", &hex::encode(self.token_key_id))
            .finish()
    }
}

fn voprf_suite(token_type: TokenType) -> Result<crypto::VoprfSuite, KeyError> {
    token_type
        .voprf_suite()
        .ok_or(KeyError::NotVoprfType(token_type.value()))
}

impl VoprfPublicKey {
    /// From SerializeElement bytes; refused unless they are an element of the type's group
    /// other than the identity.
    pub fn from_bytes(token_type: TokenType, bytes: &[u8]) -> Result<Self, KeyError> {
        let suite = voprf_suite(token_type)?;
        if !crypto::voprf_is_element(suite, bytes) {
            return Err(KeyError::NotVoprfPublicKey);
        }
        Ok(VoprfPublicKey {
            token_type,
            bytes: bytes.to_vec(),
            token_key_id: crypto::sha256(bytes),
        })
    }

    pub fn token_type(&self) -> TokenType {
        self.token_type
    }

    /// SerializeElement of the key: the Token Key Encoding of RFC 9578 §5 / the batched-tokens
    /// draft.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn token_key_id(&self) -> &TokenKeyId {
        &self.token_key_id
    }

    /// The last byte of `token_key_id`, carried in TokenRequests.
    pub fn truncated_token_key_id(&self) -> u8 {
        self.token_key_id[31]
    }
}

/// PEM labels of the VOPRF private key format (see [`VoprfIssuerKey::to_pem`]).
const VOPRF_P384_PEM_LABEL: &str = "PRIVACYPASS VOPRF P384-SHA384 PRIVATE KEY";
const VOPRF_RISTRETTO255_PEM_LABEL: &str = "PRIVACYPASS VOPRF RISTRETTO255-SHA512 PRIVATE KEY";

fn voprf_pem_label(token_type: TokenType) -> &'static str {
    match token_type {
        TokenType::VoprfRistretto255 => VOPRF_RISTRETTO255_PEM_LABEL,
        _ => VOPRF_P384_PEM_LABEL,
    }
}

/// A VOPRF issuer private key (token type 0x0001 or 0x0005): the scalar, wiped when dropped,
/// with its public key. `Debug` shows only the token type and key id.
///
/// Key format: the raw form is RFC 9497 SerializeScalar (48 bytes big-endian for P-384, 32
/// bytes little-endian for ristretto255), as in the RFC 9578 and batched-tokens vectors'
/// `skS`. The file form ([`VoprfIssuerKey::to_pem`]) is that scalar in base64 between
/// `-----BEGIN PRIVACYPASS VOPRF P384-SHA384 PRIVATE KEY-----` (or `...RISTRETTO255-SHA512...`)
/// and the matching END line: the label names the token type, so a key file says which type
/// its key issues. (PKCS#8 has no ristretto255 form; a P-384 PKCS#8 import is the daemon's.)
pub struct VoprfIssuerKey {
    secret: VoprfPrivateKey,
    public: Arc<VoprfPublicKey>,
}

impl std::fmt::Debug for VoprfIssuerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoprfIssuerKey")
            .field("token_type", &self.public.token_type)
            .field("token_key_id", &hex::encode(self.public.token_key_id))
            .finish_non_exhaustive()
    }
}

impl VoprfIssuerKey {
    fn from_secret(token_type: TokenType, secret: VoprfPrivateKey) -> Result<Self, KeyError> {
        let public = Arc::new(VoprfPublicKey::from_bytes(
            token_type,
            &secret.public_key(),
        )?);
        Ok(VoprfIssuerKey { secret, public })
    }

    /// A fresh key of a VOPRF token type (RFC 9497 DeriveKeyPair from a random seed).
    pub fn generate(token_type: TokenType) -> Result<Self, KeyError> {
        let secret = VoprfPrivateKey::generate(voprf_suite(token_type)?)?;
        VoprfIssuerKey::from_secret(token_type, secret)
    }

    /// From SerializeScalar bytes: exactly Ns bytes, canonical and nonzero.
    pub fn from_scalar(token_type: TokenType, scalar: &[u8]) -> Result<Self, KeyError> {
        let secret = VoprfPrivateKey::from_scalar(voprf_suite(token_type)?, scalar)
            .map_err(|_| KeyError::NotVoprfScalar)?;
        VoprfIssuerKey::from_secret(token_type, secret)
    }

    /// SerializeScalar of the key, in a buffer wiped when dropped.
    pub fn scalar_bytes(&self) -> Zeroizing<Vec<u8>> {
        self.secret.scalar_bytes()
    }

    /// The key in its file form (see the type's documentation). The buffer is wiped when
    /// dropped.
    pub fn to_pem(&self) -> Zeroizing<Vec<u8>> {
        let label = voprf_pem_label(self.public.token_type);
        let body = Zeroizing::new(crate::b64::encode_std(&self.scalar_bytes()));
        Zeroizing::new(
            format!(
                "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
                *body
            )
            .into_bytes(),
        )
    }

    /// A type 0x0001 (P-384) key from another issuer's PEM: PKCS#8 (`BEGIN PRIVATE KEY`) or
    /// SEC 1 (`BEGIN EC PRIVATE KEY`), unencrypted, on the P-384 curve.
    pub fn from_p384_pkcs8_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let scalar = crate::crypto::p384_scalar_from_pem(pem).map_err(|_| KeyError::NotVoprfPem)?;
        VoprfIssuerKey::from_scalar(TokenType::VoprfP384, &scalar)
    }

    /// From the file form written by [`VoprfIssuerKey::to_pem`]; the label gives the type.
    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let text = std::str::from_utf8(pem).map_err(|_| KeyError::NotVoprfPem)?;
        for token_type in [TokenType::VoprfP384, TokenType::VoprfRistretto255] {
            let label = voprf_pem_label(token_type);
            if let Some(scalar) = pem_to_der(text, label) {
                let scalar = Zeroizing::new(scalar);
                return VoprfIssuerKey::from_scalar(token_type, &scalar);
            }
        }
        Err(KeyError::NotVoprfPem)
    }

    pub fn token_type(&self) -> TokenType {
        self.public.token_type
    }

    pub fn public_key(&self) -> &Arc<VoprfPublicKey> {
        &self.public
    }

    /// RFC 9497 BlindEvaluate of a serialized blinded element (exactly Ne bytes): the evaluated
    /// element and its DLEQ proof, each serialized.
    pub(crate) fn blind_evaluate(
        &self,
        blinded: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), crypto::Error> {
        self.secret.blind_evaluate(blinded)
    }

    /// BlindEvaluateBatch of serialized blinded elements: the evaluated elements and one DLEQ
    /// proof for all of them, each serialized.
    pub(crate) fn blind_evaluate_batch(
        &self,
        blinded: &[&[u8]],
    ) -> Result<(Vec<Vec<u8>>, Vec<u8>), crypto::Error> {
        self.secret.blind_evaluate_batch(blinded)
    }

    /// RFC 9497 Evaluate: the PRF output for `input`, the authenticator of the token whose
    /// token_authenticator_input it is.
    pub(crate) fn evaluate(&self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>, crypto::Error> {
        self.secret.evaluate(input)
    }
}

/// When a key may be used, in Unix seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct KeyValidity {
    /// Issuance starts here.
    pub not_before: u64,
    /// Issuance stops here; redemption stops at `expires` plus the key set's grace.
    pub expires: u64,
}

impl KeyValidity {
    pub fn new(not_before: u64, expires: u64) -> Result<Self, KeyError> {
        if not_before >= expires {
            return Err(KeyError::EmptyValidity);
        }
        Ok(KeyValidity {
            not_before,
            expires,
        })
    }

    pub fn issues_at(&self, now: u64) -> bool {
        self.not_before <= now && now < self.expires
    }

    fn overlaps(&self, other: &KeyValidity) -> bool {
        self.not_before < other.expires && other.not_before < self.expires
    }
}

/// One key of a key set: the public half always, the private half on an issuer.
#[derive(Clone, Debug)]
pub struct KeyEntry {
    pub public: Arc<PublicKey>,
    pub secret: Option<Arc<IssuerKey>>,
    pub validity: KeyValidity,
}

/// Where a key stands at a moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyState {
    /// Before `not_before`.
    Pending,
    /// Issues and redeems.
    Active,
    /// Past `expires`, still redeemable during the grace.
    Grace,
    /// No longer redeemable: its spends can be dropped.
    Expired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Pending => "pending",
            KeyState::Active => "active",
            KeyState::Grace => "grace",
            KeyState::Expired => "expired",
        }
    }
}

/// One VOPRF key of a key set (types 0x0001 and 0x0005). Its private half is always there: a
/// privately verifiable token is verified with it.
#[derive(Clone, Debug)]
pub struct VoprfKeyEntry {
    pub key: Arc<VoprfIssuerKey>,
    pub validity: KeyValidity,
}

/// The keys an issuer or verifier knows. Two issuance keys whose windows overlap never share a
/// truncated token key id, whatever their token types (they share the `/token-request` route),
/// so a TokenRequest names at most one key. Blind RSA keys are in `entries`, VOPRF keys in
/// `voprf_entries`.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    entries: Vec<KeyEntry>,
    voprf_entries: Vec<VoprfKeyEntry>,
    redemption_grace: u64,
}

/// How many fresh keys `KeySet::generate` tries before giving up on truncated-id collisions.
const GENERATION_ATTEMPTS: usize = 16;

impl KeySet {
    /// An empty set; keys stay redeemable `redemption_grace` seconds after they expire.
    pub fn new(redemption_grace: u64) -> Self {
        KeySet {
            entries: Vec::new(),
            voprf_entries: Vec::new(),
            redemption_grace,
        }
    }

    pub fn redemption_grace(&self) -> u64 {
        self.redemption_grace
    }

    pub fn entries(&self) -> &[KeyEntry] {
        &self.entries
    }

    fn check_insert(
        &self,
        public: &PublicKey,
        validity: &KeyValidity,
        issues: bool,
    ) -> Result<(), KeyError> {
        self.check_id(public.token_key_id(), validity, issues)
    }

    /// The insertion rules for a key of any type with this id: no duplicate id, and for an
    /// issuance key no truncated-id collision with an issuance key of any type whose window
    /// overlaps.
    fn check_id(
        &self,
        id: &TokenKeyId,
        validity: &KeyValidity,
        issues: bool,
    ) -> Result<(), KeyError> {
        if self.get(id).is_some() || self.voprf_get(id).is_some() {
            return Err(KeyError::Duplicate(hex::encode(id)));
        }
        if issues {
            let truncated = id[31];
            let rsa = self
                .entries
                .iter()
                .filter(|e| e.secret.is_some())
                .map(|e| (e.public.token_key_id(), &e.validity));
            let voprf = self
                .voprf_entries
                .iter()
                .map(|e| (e.key.public_key().token_key_id(), &e.validity));
            let clash = rsa
                .chain(voprf)
                .find(|(other, v)| other[31] == truncated && v.overlaps(validity));
            if let Some((existing, _)) = clash {
                return Err(KeyError::TruncatedIdCollision {
                    new: hex::encode(id),
                    existing: hex::encode(existing),
                    truncated,
                });
            }
        }
        Ok(())
    }

    /// Adds an issuance key; refused if its truncated id collides with an issuance key whose
    /// window overlaps.
    pub fn insert_issuer_key(
        &mut self,
        key: IssuerKey,
        validity: KeyValidity,
    ) -> Result<Arc<IssuerKey>, KeyError> {
        self.check_insert(key.public_key(), &validity, true)?;
        let key = Arc::new(key);
        self.entries.push(KeyEntry {
            public: key.public.clone(),
            secret: Some(key.clone()),
            validity,
        });
        Ok(key)
    }

    /// Adds a key that is only verified against (another issuer's, or this one's on a redeemer).
    pub fn insert_public_key(
        &mut self,
        key: PublicKey,
        validity: KeyValidity,
    ) -> Result<Arc<PublicKey>, KeyError> {
        self.check_insert(&key, &validity, false)?;
        let key = Arc::new(key);
        self.entries.push(KeyEntry {
            public: key.clone(),
            secret: None,
            validity,
        });
        Ok(key)
    }

    /// Generates and adds a key, drawing again when its truncated id would collide.
    pub fn generate(&mut self, validity: KeyValidity) -> Result<Arc<IssuerKey>, KeyError> {
        for _ in 0..GENERATION_ATTEMPTS {
            match self.insert_issuer_key(IssuerKey::generate()?, validity) {
                Err(KeyError::TruncatedIdCollision { .. }) => continue,
                other => return other,
            }
        }
        Err(KeyError::GenerationExhausted)
    }

    /// Adds a VOPRF issuance key (type 0x0001 or 0x0005), which also verifies its tokens;
    /// refused if its truncated id collides with an issuance key of any type whose window
    /// overlaps.
    pub fn insert_voprf_key(
        &mut self,
        key: VoprfIssuerKey,
        validity: KeyValidity,
    ) -> Result<Arc<VoprfIssuerKey>, KeyError> {
        self.check_id(key.public_key().token_key_id(), &validity, true)?;
        let key = Arc::new(key);
        self.voprf_entries.push(VoprfKeyEntry {
            key: key.clone(),
            validity,
        });
        Ok(key)
    }

    /// Generates and adds a VOPRF key of `token_type`, drawing again when its truncated id
    /// would collide.
    pub fn generate_voprf(
        &mut self,
        token_type: TokenType,
        validity: KeyValidity,
    ) -> Result<Arc<VoprfIssuerKey>, KeyError> {
        for _ in 0..GENERATION_ATTEMPTS {
            match self.insert_voprf_key(VoprfIssuerKey::generate(token_type)?, validity) {
                Err(KeyError::TruncatedIdCollision { .. }) => continue,
                other => return other,
            }
        }
        Err(KeyError::GenerationExhausted)
    }

    pub fn voprf_entries(&self) -> &[VoprfKeyEntry] {
        &self.voprf_entries
    }

    /// The VOPRF key with this token_key_id.
    pub fn voprf_get(&self, id: &TokenKeyId) -> Option<&VoprfKeyEntry> {
        self.voprf_entries
            .iter()
            .find(|e| e.key.public_key().token_key_id() == id)
    }

    /// The VOPRF issuance key of `token_type` a TokenRequest's truncated id names, if it issues
    /// now.
    pub fn voprf_issuance_key_by_truncated(
        &self,
        token_type: TokenType,
        truncated: u8,
        now: u64,
    ) -> Option<&Arc<VoprfIssuerKey>> {
        self.voprf_entries
            .iter()
            .find(|e| {
                e.key.token_type() == token_type
                    && e.key.public_key().truncated_token_key_id() == truncated
                    && e.validity.issues_at(now)
            })
            .map(|e| &e.key)
    }

    /// VOPRF keys that issue now, for the issuer directory.
    pub fn voprf_issuing(&self, now: u64) -> impl Iterator<Item = &VoprfKeyEntry> {
        self.voprf_entries
            .iter()
            .filter(move |e| e.validity.issues_at(now))
    }

    /// Removes a key of any type; returns whether it was there.
    pub fn remove(&mut self, id: &TokenKeyId) -> bool {
        let before = self.entries.len() + self.voprf_entries.len();
        self.entries.retain(|e| e.public.token_key_id() != id);
        self.voprf_entries
            .retain(|e| e.key.public_key().token_key_id() != id);
        before != self.entries.len() + self.voprf_entries.len()
    }

    pub fn get(&self, id: &TokenKeyId) -> Option<&KeyEntry> {
        self.entries.iter().find(|e| e.public.token_key_id() == id)
    }

    /// The last moment (exclusive) a key's tokens are accepted.
    pub fn redeemable_until(&self, validity: &KeyValidity) -> u64 {
        validity.expires.saturating_add(self.redemption_grace)
    }

    pub fn state(&self, validity: &KeyValidity, now: u64) -> KeyState {
        if now < validity.not_before {
            KeyState::Pending
        } else if now < validity.expires {
            KeyState::Active
        } else if now < self.redeemable_until(validity) {
            KeyState::Grace
        } else {
            KeyState::Expired
        }
    }

    /// The issuance key with this id, if it has a private half and issues now.
    pub fn issuance_key(&self, id: &TokenKeyId, now: u64) -> Option<&Arc<IssuerKey>> {
        self.get(id)
            .filter(|e| e.validity.issues_at(now))
            .and_then(|e| e.secret.as_ref())
    }

    /// The issuance key a TokenRequest's truncated id names.
    pub fn issuance_key_by_truncated(&self, truncated: u8, now: u64) -> Option<&Arc<IssuerKey>> {
        self.entries
            .iter()
            .filter(|e| e.validity.issues_at(now) && e.public.truncated_token_key_id() == truncated)
            .find_map(|e| e.secret.as_ref())
    }

    /// Keys that issue now, for the issuer directory.
    pub fn issuing(&self, now: u64) -> impl Iterator<Item = &KeyEntry> {
        self.entries
            .iter()
            .filter(move |e| e.secret.is_some() && e.validity.issues_at(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_round_trips_through_pem_and_spki() {
        let key = IssuerKey::generate().unwrap();
        let pem = key.to_pkcs8_pem().unwrap();
        assert!(pem.starts_with(b"-----BEGIN PRIVATE KEY-----"));
        let again = IssuerKey::from_pem(&pem).unwrap();
        assert_eq!(
            again.public_key().token_key_id(),
            key.public_key().token_key_id()
        );
        let public = PublicKey::from_spki(key.public_key().spki()).unwrap();
        assert_eq!(public.token_key_id(), key.public_key().token_key_id());
        assert_eq!(public.exponent(), &[1, 0, 1]);
        assert!(!format!("{key:?}").contains("BEGIN"));
    }

    #[test]
    fn spki_parsing_accepts_pss_and_rsa_encryption_and_is_thread_safe() {
        let key = IssuerKey::generate().unwrap();
        let pss = key.public_key().spki().to_vec();
        let plain = crypto::rsa_encryption_spki(key.public_key().modulus(), &[1, 0, 1]);
        assert_ne!(plain, pss);
        let from_plain = PublicKey::from_spki(&plain).unwrap();
        assert_eq!(from_plain.token_key_id(), key.public_key().token_key_id());
        let mut other_salt = pss.clone();
        let salt_at = 4 + PSS_SHA384_ALGORITHM_ID.len() - 1;
        other_salt[salt_at] = 32;
        assert_eq!(
            PublicKey::from_spki(&other_salt).unwrap_err(),
            KeyError::WrongPssParameters
        );
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let pss = pss.clone();
                std::thread::spawn(move || (0..50).all(|_| PublicKey::from_spki(&pss).is_ok()))
            })
            .collect();
        assert!(threads.into_iter().all(|t| t.join().unwrap()));
    }

    #[test]
    fn rejects_wrong_size_and_non_keys() {
        let small = RsaPrivateKey::generate(1024, PUBLIC_EXPONENT).unwrap();
        let pem = small.to_pkcs1_pem();
        assert_eq!(
            IssuerKey::from_pem(&pem).unwrap_err(),
            KeyError::WrongSize(1024)
        );
        assert_eq!(
            IssuerKey::from_pem(b"hello").unwrap_err(),
            KeyError::NotRsaPem
        );
        assert_eq!(
            PublicKey::from_spki(b"\x30\x00").unwrap_err(),
            KeyError::NotRsaPublicKey
        );
    }

    #[test]
    fn states_follow_the_windows() {
        let set = KeySet::new(100);
        let v = KeyValidity::new(10, 20).unwrap();
        assert_eq!(set.state(&v, 5), KeyState::Pending);
        assert_eq!(set.state(&v, 10), KeyState::Active);
        assert_eq!(set.state(&v, 20), KeyState::Grace);
        assert_eq!(set.state(&v, 120), KeyState::Expired);
        assert!(KeyValidity::new(5, 5).is_err());
    }

    /// A fresh VOPRF key of `token_type` whose truncated id is `truncated`.
    fn voprf_key_with_truncated(token_type: TokenType, truncated: u8) -> VoprfIssuerKey {
        loop {
            let key = VoprfIssuerKey::generate(token_type).unwrap();
            if key.public_key().truncated_token_key_id() == truncated {
                return key;
            }
        }
    }

    #[test]
    fn truncated_id_collisions_are_refused_across_token_types() {
        let always = KeyValidity::new(0, u64::MAX).unwrap();
        let mut set = KeySet::new(0);
        let rsa = set.generate(always).unwrap();
        let truncated = rsa.public_key().truncated_token_key_id();
        for token_type in [TokenType::VoprfP384, TokenType::VoprfRistretto255] {
            let clash = voprf_key_with_truncated(token_type, truncated);
            assert!(matches!(
                set.insert_voprf_key(clash, always),
                Err(KeyError::TruncatedIdCollision { truncated: t, .. }) if t == truncated
            ));
        }
        // Between the two VOPRF types too.
        let p384 = set.generate_voprf(TokenType::VoprfP384, always).unwrap();
        let other = p384.public_key().truncated_token_key_id();
        let clash = voprf_key_with_truncated(TokenType::VoprfRistretto255, other);
        assert!(matches!(
            set.insert_voprf_key(clash, always),
            Err(KeyError::TruncatedIdCollision { .. })
        ));
        // Windows that do not overlap may share a truncated id.
        let later = KeyValidity::new(10, 20).unwrap();
        let mut disjoint = KeySet::new(0);
        disjoint
            .insert_voprf_key(
                voprf_key_with_truncated(TokenType::VoprfP384, 7),
                KeyValidity::new(0, 10).unwrap(),
            )
            .unwrap();
        disjoint
            .insert_voprf_key(
                voprf_key_with_truncated(TokenType::VoprfRistretto255, 7),
                later,
            )
            .unwrap();
        // A duplicate is refused, and `remove` finds VOPRF keys.
        let again =
            VoprfIssuerKey::from_scalar(TokenType::VoprfP384, &p384.scalar_bytes()).unwrap();
        assert!(matches!(
            set.insert_voprf_key(again, later),
            Err(KeyError::Duplicate(_))
        ));
        let id = *p384.public_key().token_key_id();
        assert!(set.voprf_get(&id).is_some());
        assert!(set.remove(&id));
        assert!(set.voprf_get(&id).is_none());
    }

    #[test]
    fn voprf_keys_round_trip_and_hide_their_scalar() {
        for token_type in [TokenType::VoprfP384, TokenType::VoprfRistretto255] {
            let key = VoprfIssuerKey::generate(token_type).unwrap();
            let pem = key.to_pem();
            let again = VoprfIssuerKey::from_pem(&pem).unwrap();
            assert_eq!(again.token_type(), token_type);
            assert_eq!(again.public_key().bytes(), key.public_key().bytes());
            let raw = VoprfIssuerKey::from_scalar(token_type, &key.scalar_bytes()).unwrap();
            assert_eq!(
                raw.public_key().token_key_id(),
                key.public_key().token_key_id()
            );
            let public = VoprfPublicKey::from_bytes(token_type, key.public_key().bytes()).unwrap();
            assert_eq!(public.token_key_id(), key.public_key().token_key_id());
            let debug = format!("{key:?} {:?}", key.public_key());
            assert!(!debug.contains(&hex::encode(key.scalar_bytes())));
            assert!(debug.contains(&hex::encode(key.public_key().token_key_id())));
            let b64 = crate::b64::encode_std(&key.scalar_bytes());
            assert!(!debug.contains(&b64));
        }
        assert_eq!(
            VoprfIssuerKey::generate(TokenType::BlindRsa2048).unwrap_err(),
            KeyError::NotVoprfType(2)
        );
        assert_eq!(
            VoprfIssuerKey::from_scalar(TokenType::VoprfP384, &[0; 48]).unwrap_err(),
            KeyError::NotVoprfScalar
        );
        assert_eq!(
            VoprfIssuerKey::from_scalar(TokenType::VoprfRistretto255, &[0xff; 32]).unwrap_err(),
            KeyError::NotVoprfScalar
        );
        assert_eq!(
            VoprfPublicKey::from_bytes(TokenType::VoprfRistretto255, &[0; 32]).unwrap_err(),
            KeyError::NotVoprfPublicKey
        );
        assert_eq!(
            VoprfIssuerKey::from_pem(b"-----BEGIN PRIVATE KEY-----").unwrap_err(),
            KeyError::NotVoprfPem
        );
    }
}
