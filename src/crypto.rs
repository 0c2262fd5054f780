//! The one place the core calls cryptographic libraries. The protocol modules (keys, RSA blind
//! signatures, client, issuer, verifier, wire formats) ask for operations in their own terms
//! here and name no library, so a backend can be replaced in this file alone.
//!
//! Two backends, each where it is measured to be the better one (README, "Cryptography and
//! timing safety"):
//! - OpenSSL 3: RSA keys (generation, PEM, consistency check), the raw private operation (CRT
//!   with base blinding, constant-time exponentiation) and its public inverse, and the big
//!   numbers of the client's blinding (constant-time inverse and exponentiation of r).
//! - aws-lc (aws-lc-rs): RSASSA-PSS-SHA384 verification on a key parsed once.
//!
//! - `voprf` (RFC 9497), with the groups of `p384` and `curve25519-dalek`: the VOPRF of token
//!   types 0x0001 and 0x0005, in the child module `crypto/voprf.rs`.
//!
//! SHA-2 comes from `sha2`, randomness from the operating system (`getrandom`).
//!
//! The few operations the daemon and the C library need besides the protocol's (SHA-256 of an
//! API key or a response body, random bytes for an API key or a challenge) are public here, so
//! no crate of the workspace names a crypto library either.

use openssl::bn::{BigNum, BigNumContext};
use openssl::pkey::{PKey, Private};
use openssl::rsa::{Padding, Rsa};
use sha2::Digest;
use zeroize::Zeroizing;

mod voprf;
pub(crate) use self::voprf::is_element as voprf_is_element;
pub use self::voprf::{VoprfBlindState, VoprfPrivateKey, VoprfSuite};

/// A backend call failed; which library and why is not told, so no key material can leak
/// through an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// A modular inverse does not exist (the value shares a factor with the modulus).
    NotInvertible,
    /// Bytes that are not a serialized group element (or are the identity).
    NotAnElement,
    /// A VOPRF DLEQ proof does not verify.
    ProofInvalid,
    Backend,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Error::NotInvertible => "the value has no modular inverse",
            Error::NotAnElement => "the bytes are not an element of the group",
            Error::ProofInvalid => "the proof does not verify",
            Error::Backend => "the cryptographic backend failed",
        })
    }
}

impl std::error::Error for Error {}

impl From<openssl::error::ErrorStack> for Error {
    fn from(_: openssl::error::ErrorStack) -> Self {
        Error::Backend
    }
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(data).into()
}

/// SHA-256 of the concatenation of `parts`.
pub fn sha256_parts(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = sha2::Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// SHA-384 of the concatenation of `parts`.
pub(crate) fn sha384(parts: &[&[u8]]) -> [u8; 48] {
    let mut hasher = sha2::Sha384::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// Fills `out` from the operating system's random number generator (safe after `fork()`).
pub fn random_bytes(out: &mut [u8]) -> Result<(), Error> {
    getrandom::fill(out).map_err(|_| Error::Backend)
}

/// The public half of an RSA key as the protocol needs it.
pub(crate) struct RsaPublicParts {
    /// Bits of the modulus.
    pub bits: u32,
    /// The modulus, big-endian, without leading zeros.
    pub modulus: Vec<u8>,
    /// The public exponent, big-endian, without leading zeros.
    pub exponent: Vec<u8>,
    /// RSAPublicKey (PKCS#1), DER.
    pub pkcs1_der: Vec<u8>,
}

fn public_parts(rsa: &Rsa<impl openssl::pkey::HasPublic>) -> Result<RsaPublicParts, Error> {
    Ok(RsaPublicParts {
        bits: u32::try_from(rsa.n().num_bits()).map_err(|_| Error::Backend)?,
        modulus: rsa.n().to_vec(),
        exponent: rsa.e().to_vec(),
        pkcs1_der: rsa.public_key_to_der_pkcs1()?,
    })
}

/// The public parts of the RSA key (n, e), given as big-endian integers.
pub(crate) fn rsa_public_parts(n: &[u8], e: &[u8]) -> Result<RsaPublicParts, Error> {
    let rsa = Rsa::from_public_components(BigNum::from_slice(n)?, BigNum::from_slice(e)?)?;
    public_parts(&rsa)
}

/// An RSA private key, in OpenSSL. Its material never appears in `Debug` output or errors.
pub struct RsaPrivateKey(Rsa<Private>);

impl std::fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RsaPrivateKey(..)")
    }
}

impl RsaPrivateKey {
    /// A fresh key of `bits` bits with public exponent `e`.
    pub(crate) fn generate(bits: u32, e: u32) -> Result<Self, Error> {
        let e = BigNum::from_u32(e)?;
        Ok(RsaPrivateKey(Rsa::generate_with_e(bits, &e)?))
    }

    /// From a PKCS#8 (`PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`) PEM.
    pub(crate) fn from_pem(pem: &[u8]) -> Result<Self, Error> {
        Ok(RsaPrivateKey(PKey::private_key_from_pem(pem)?.rsa()?))
    }

    /// From the big-endian integers n, e, d, p and q, with the CRT values derived.
    pub(crate) fn from_components(
        n: &[u8],
        e: &[u8],
        d: &[u8],
        p: &[u8],
        q: &[u8],
    ) -> Result<Self, Error> {
        let mut ctx = BigNumContext::new()?;
        let [n, e, d, p, q] = [n, e, d, p, q].map(BigNum::from_slice);
        let (n, e, d, p, q) = (n?, e?, d?, p?, q?);
        let one = BigNum::from_u32(1)?;
        let (mut p1, mut q1) = (BigNum::new()?, BigNum::new()?);
        p1.checked_sub(&p, &one)?;
        q1.checked_sub(&q, &one)?;
        let (mut dmp1, mut dmq1, mut iqmp) = (BigNum::new()?, BigNum::new()?, BigNum::new()?);
        dmp1.nnmod(&d, &p1, &mut ctx)?;
        dmq1.nnmod(&d, &q1, &mut ctx)?;
        iqmp.mod_inverse(&q, &p, &mut ctx)?;
        Ok(RsaPrivateKey(Rsa::from_private_components(
            n, e, d, p, q, dmp1, dmq1, iqmp,
        )?))
    }

    /// The public parts (n, e).
    pub(crate) fn public_parts(&self) -> Result<RsaPublicParts, Error> {
        public_parts(&self.0)
    }

    /// Whether the key's components are consistent (OpenSSL's `RSA_check_key`).
    pub(crate) fn is_consistent(&self) -> bool {
        self.0.check_key().unwrap_or(false)
    }

    /// The key as PKCS#8 PEM. The buffer is wiped when dropped.
    pub(crate) fn to_pkcs8_pem(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        let pkey = PKey::from_rsa(self.0.clone())?;
        Ok(Zeroizing::new(pkey.private_key_to_pem_pkcs8()?))
    }

    /// The raw private operation x^d mod n of an `x` as long as the modulus and below it
    /// (`RSA_private_encrypt` without padding: CRT with base blinding and constant-time
    /// exponentiation). The result is not checked here; RFC 9474 BlindSign checks it with
    /// `rsa_public_op` before releasing it.
    pub(crate) fn private_op(&self, x: &[u8]) -> Result<Vec<u8>, Error> {
        let mut out = vec![0u8; x.len()];
        let written = self.0.private_encrypt(x, &mut out, Padding::NONE)?;
        if written != x.len() {
            return Err(Error::Backend);
        }
        Ok(out)
    }

    /// The raw public operation y^e mod n of a `y` as long as the modulus and below it, as many
    /// bytes as the backend wrote. The buffer is wiped when dropped (it equals the private
    /// operation's input).
    pub(crate) fn public_op(&self, y: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        let mut out = Zeroizing::new(vec![0u8; y.len()]);
        let written = self.0.public_decrypt(y, &mut out, Padding::NONE)?;
        out.truncate(written);
        Ok(out)
    }
}

/// `n` as exactly `len` big-endian bytes.
fn to_fixed(n: &BigNum, len: usize) -> Result<Vec<u8>, Error> {
    let len = i32::try_from(len).map_err(|_| Error::Backend)?;
    Ok(n.to_vec_padded(len)?)
}

/// RSA blinding of an encoded message m by the factor r, modulo n: (m * r^e mod n,
/// r^-1 mod n), both as long as the modulus. m must be invertible modulo n. r is reduced
/// modulo n first; it links the blinded request to the token, so its inverse and
/// exponentiation are OpenSSL's constant-time ones. The inverse is wiped when dropped.
pub(crate) fn rsa_blind(
    modulus: &[u8],
    exponent: &[u8],
    encoded_msg: &[u8],
    r: &[u8],
) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), Error> {
    let mut ctx = BigNumContext::new()?;
    let n = BigNum::from_slice(modulus)?;
    let e = BigNum::from_slice(exponent)?;
    let m = BigNum::from_slice(encoded_msg)?;
    let mut gcd = BigNum::new()?;
    gcd.gcd(&m, &n, &mut ctx)?;
    if gcd != BigNum::from_u32(1)? {
        return Err(Error::NotInvertible);
    }
    let mut r_bn = BigNum::from_slice(r)?;
    let mut reduced = BigNum::new()?;
    reduced.nnmod(&r_bn, &n, &mut ctx)?;
    r_bn = reduced;
    r_bn.set_const_time();
    let mut inv = BigNum::new()?;
    inv.mod_inverse(&r_bn, &n, &mut ctx)
        .map_err(|_| Error::NotInvertible)?;
    let mut x = BigNum::new()?;
    x.mod_exp(&r_bn, &e, &n, &mut ctx)?;
    let mut z = BigNum::new()?;
    z.mod_mul(&m, &x, &n, &mut ctx)?;
    let len = modulus.len();
    Ok((to_fixed(&z, len)?, Zeroizing::new(to_fixed(&inv, len)?)))
}

/// RSA unblinding: z * inv mod n, as long as the modulus.
pub(crate) fn rsa_unblind(modulus: &[u8], z: &[u8], inv: &[u8]) -> Result<Vec<u8>, Error> {
    let mut ctx = BigNumContext::new()?;
    let n = BigNum::from_slice(modulus)?;
    let z = BigNum::from_slice(z)?;
    let inv = BigNum::from_slice(inv)?;
    let mut s = BigNum::new()?;
    s.mod_mul(&z, &inv, &n, &mut ctx)?;
    to_fixed(&s, modulus.len())
}

/// An RSA public key parsed once for RSASSA-PSS-SHA384 verification (aws-lc).
pub type PssPublicKey = aws_lc_rs::signature::ParsedPublicKey;

/// The RSASSA-PSS-SHA384 verification key of (n, e), for moduli of 2048 to 8192 bits.
pub(crate) fn pss_public_key(n: &[u8], e: &[u8]) -> Result<PssPublicKey, Error> {
    aws_lc_rs::signature::RsaPublicKeyComponents { n, e }
        .to_parsed_public_key(&aws_lc_rs::signature::RSA_PSS_2048_8192_SHA384)
        .map_err(|_| Error::Backend)
}

/// RSASSA-PSS-VERIFY with SHA-384, MGF1-SHA-384 and a salt as long as the hash.
pub(crate) fn pss_verify_sha384(key: &PssPublicKey, msg: &[u8], sig: &[u8]) -> bool {
    key.verify_sig(msg, sig).is_ok()
}

#[cfg(test)]
impl RsaPrivateKey {
    /// The key as PKCS#1 (`RSA PRIVATE KEY`) PEM, for the loaders' tests.
    pub(crate) fn to_pkcs1_pem(&self) -> Vec<u8> {
        self.0.private_key_to_pem().unwrap()
    }
}

/// The private scalar (48 bytes, big-endian, as RFC 9497 SerializeScalar writes it) of a P-384
/// key in PEM: PKCS#8 (`BEGIN PRIVATE KEY`) or SEC 1 (`BEGIN EC PRIVATE KEY`), unencrypted. Any
/// other curve or key type is refused.
pub(crate) fn p384_scalar_from_pem(pem: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
    let key = PKey::private_key_from_pem(pem)?;
    let ec = key.ec_key().map_err(|_| Error::Backend)?;
    if ec.group().curve_name() != Some(openssl::nid::Nid::SECP384R1) {
        return Err(Error::Backend);
    }
    ec.check_key()?;
    Ok(Zeroizing::new(ec.private_key().to_vec_padded(48)?))
}

/// The rsaEncryption SubjectPublicKeyInfo of (n, e), DER, for the loaders' tests.
#[cfg(test)]
pub(crate) fn rsa_encryption_spki(n: &[u8], e: &[u8]) -> Vec<u8> {
    let rsa = Rsa::from_public_components(
        BigNum::from_slice(n).unwrap(),
        BigNum::from_slice(e).unwrap(),
    )
    .unwrap();
    PKey::from_rsa(rsa).unwrap().public_key_to_der().unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rsa_blind::{blind_sign, RsaError};

    /// The crates that do cryptography. Outside this file and its children under `src/crypto/`,
    /// the core's sources name none of them.
    const CRYPTO_CRATES: [&str; 16] = [
        "openssl",
        "aws_lc_rs",
        "aws_lc_sys",
        "sha2",
        "sha1",
        "hmac",
        "getrandom",
        "ring",
        "rsa",
        "num_bigint",
        "voprf",
        "p384",
        "curve25519_dalek",
        "elliptic_curve",
        "rand_core",
        "digest",
    ];

    /// Whether a line of Rust names `krate` outside a comment: a path into it (`openssl::`,
    /// `::sha2::`) or a `use` / `extern crate` of it.
    fn names_crate(line: &str, krate: &str) -> bool {
        let code = line.split("//").next().unwrap_or("");
        let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
        code.match_indices(krate).any(|(at, _)| {
            let before = &code[..at];
            let after = &code[at + krate.len()..];
            // `crate::rsa_blind` or `self.rsa` is not the crate: what comes before a path
            // from the root (`::sha2`) must not be a name either.
            let from_root = before.strip_suffix("::").unwrap_or(before);
            if before.ends_with(is_ident) || from_root.ends_with(is_ident) {
                return false;
            }
            if after.starts_with(is_ident) {
                return false;
            }
            let head = before.trim_end();
            after.starts_with("::") || head.ends_with("use") || head.ends_with("extern crate")
        })
    }

    /// Sources that still name a crypto crate, each with the one it names: none. An entry whose
    /// file no longer names it fails the test too, so the list only shrinks.
    const NOT_YET_THROUGH_THE_SEAM: [(&str, &str); 0] = [];

    #[test]
    fn no_crypto_crate_is_named_outside_this_module() {
        // The core and every crate of the workspace built on it: the daemon, the stores, the
        // RPC types, the C library and the generator.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let seam = root.join("src").join("crypto.rs");
        let mut files: Vec<_> = [
            "src",
            "daemon/src",
            "stores/src",
            "rpc/src",
            "ffi/src",
            "xtask/src",
        ]
        .iter()
        .map(|dir| root.join(dir))
        .collect();
        let mut offenders = Vec::new();
        let mut scanned = 0;
        while let Some(path) = files.pop() {
            if path.is_dir() {
                files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            let in_seam = path == seam || path.starts_with(root.join("src").join("crypto"));
            if path.extension().is_none_or(|e| e != "rs") || in_seam {
                continue;
            }
            scanned += 1;
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            for krate in CRYPTO_CRATES {
                let lines: Vec<usize> = (text.lines().enumerate())
                    .filter(|(_, line)| names_crate(line, krate))
                    .map(|(number, _)| number + 1)
                    .collect();
                let known = NOT_YET_THROUGH_THE_SEAM.contains(&(name.as_str(), krate));
                if known && lines.is_empty() {
                    offenders.push(format!("{name}: no longer names {krate}; drop its entry"));
                }
                if !known {
                    offenders.extend(lines.iter().map(|n| format!("{name}:{n}: {krate}")));
                }
            }
        }
        assert!(
            scanned > 40,
            "too few sources found under {}",
            root.display()
        );
        assert!(
            offenders.is_empty(),
            "crypto crates named outside src/crypto.rs and src/crypto/ (call them instead):\n{}",
            offenders.join("\n")
        );
    }

    #[test]
    fn the_scan_sees_paths_and_uses_but_not_words() {
        assert!(names_crate("use openssl::bn::BigNum;", "openssl"));
        assert!(names_crate(
            "    let k = aws_lc_rs::signature::X;",
            "aws_lc_rs"
        ));
        assert!(names_crate("x = ::sha2::Sha256::digest(b);", "sha2"));
        assert!(names_crate("use sha2;", "sha2"));
        assert!(names_crate("    getrandom::fill(&mut out)?;", "getrandom"));
        assert!(!names_crate(
            "// openssl::rsa is behind the seam",
            "openssl"
        ));
        assert!(!names_crate("use crate::rsa_blind::RsaError;", "rsa"));
        assert!(!names_crate("let rsa = key.rsa();", "rsa"));
        assert!(!names_crate("crate::crypto::sha256(x)", "sha2"));
    }

    #[test]
    fn a_faulty_private_operation_is_never_released() {
        let good = Rsa::generate(2048).unwrap();
        let modulus = good.n().to_vec();
        let msg = {
            let mut m = vec![0x42u8; modulus.len()];
            m[0] = 0;
            m
        };
        let sig = blind_sign(&RsaPrivateKey(good.clone()), &modulus, &msg).unwrap();
        assert_eq!(sig.len(), modulus.len());

        // A key whose CRT exponent and private exponent are both wrong computes a wrong
        // signature (OpenSSL's own CRT check falls back to d, which is wrong too): a fault.
        let one = BigNum::from_u32(1).unwrap();
        let mut d = BigNum::new().unwrap();
        d.checked_add(good.d(), &one).unwrap();
        let mut dmq1 = BigNum::new().unwrap();
        dmq1.checked_add(good.dmq1().unwrap(), &one).unwrap();
        let faulty = Rsa::from_private_components(
            good.n().to_owned().unwrap(),
            good.e().to_owned().unwrap(),
            d,
            good.p().unwrap().to_owned().unwrap(),
            good.q().unwrap().to_owned().unwrap(),
            good.dmp1().unwrap().to_owned().unwrap(),
            dmq1,
            good.iqmp().unwrap().to_owned().unwrap(),
        )
        .unwrap();
        assert_eq!(
            blind_sign(&RsaPrivateKey(faulty), &modulus, &msg),
            Err(RsaError::FaultDetected)
        );
    }
}
