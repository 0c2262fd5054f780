//! RFC 9474 RSABSSA-SHA384-PSS-Deterministic on constant-time, hardened backends.
//!
//! - The issuer's private operation (BlindSign) runs in OpenSSL: `RSA_private_encrypt` without
//!   padding, which uses CRT with base blinding and constant-time modular exponentiation. The
//!   result is checked by re-encrypting it (RFC 9474 §4.3 step 3), so a faulty signature, which
//!   would reveal a prime factor, is never released.
//! - Verification (RSASSA-PSS-VERIFY with SHA-384, MGF1-SHA-384, 48-byte salt) runs in aws-lc
//!   through aws-lc-rs, on a key parsed once.
//! - The client's blind and finalize are computed with OpenSSL's big numbers from the explicit
//!   salt and blinding factor, so the RFC vectors are reproduced exactly; in normal use both come
//!   from the operating system's RNG.
//!
//! The pure-Rust `rsa` crate is not used at run time: its private operation is not constant
//! time (RUSTSEC-2023-0071) and an issuer's private operation can be timed remotely.

use openssl::bn::{BigNum, BigNumContext};
use openssl::rsa::{Padding, Rsa};
use sha2::{Digest, Sha384};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Modulus length in bytes of issuer keys (RSA-2048): Nk for token type 2. The functions here
/// take the length from the modulus they are given, so RFC 9474's 4096-bit vectors run too.
pub const MODULUS_LEN: usize = 256;
/// Salt length of RSABSSA-SHA384-PSS: the SHA-384 output length.
pub const SALT_LEN: usize = 48;
const HASH_LEN: usize = 48;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RsaError {
    #[error("input must be as long as the modulus, got {0} bytes")]
    WrongLength(usize),
    #[error("input is not below the modulus")]
    NotBelowModulus,
    #[error("the private operation failed its self-check")]
    FaultDetected,
    #[error("the message is not invertible modulo n")]
    NotInvertible,
    #[error("signature verification failed")]
    BadSignature,
    #[error("cryptographic backend error")]
    Backend,
}

impl From<openssl::error::ErrorStack> for RsaError {
    fn from(_: openssl::error::ErrorStack) -> Self {
        RsaError::Backend
    }
}

/// `value < modulus` for two big-endian numbers of the same length. Both are public.
pub fn below_modulus(value: &[u8], modulus: &[u8]) -> bool {
    value.len() == modulus.len() && value < modulus
}

/// RFC 9474 BlindSign: s = m^d mod n, checked by m == s^e mod n before it is returned.
pub fn blind_sign(
    key: &Rsa<openssl::pkey::Private>,
    modulus: &[u8],
    blinded_msg: &[u8],
) -> Result<Vec<u8>, RsaError> {
    let len = modulus.len();
    if blinded_msg.len() != len {
        return Err(RsaError::WrongLength(blinded_msg.len()));
    }
    if !below_modulus(blinded_msg, modulus) {
        return Err(RsaError::NotBelowModulus);
    }
    let mut sig = vec![0u8; len];
    let written = key.private_encrypt(blinded_msg, &mut sig, Padding::NONE)?;
    if written != len {
        return Err(RsaError::Backend);
    }
    let mut check = Zeroizing::new(vec![0u8; len]);
    let written = key.public_decrypt(&sig, &mut check, Padding::NONE)?;
    if written != len || !bool::from(check.as_slice().ct_eq(blinded_msg)) {
        return Err(RsaError::FaultDetected);
    }
    Ok(sig)
}

fn mgf1_xor(out: &mut [u8], seed: &[u8]) {
    for (counter, chunk) in (0u32..).zip(out.chunks_mut(HASH_LEN)) {
        let mask = Sha384::new()
            .chain_update(seed)
            .chain_update(counter.to_be_bytes())
            .finalize();
        for (o, m) in chunk.iter_mut().zip(mask.iter()) {
            *o ^= m;
        }
    }
}

/// Bits of a big-endian modulus.
fn bit_length(modulus: &[u8]) -> usize {
    match modulus.iter().position(|&b| b != 0) {
        None => 0,
        Some(i) => (modulus.len() - i) * 8 - modulus[i].leading_zeros() as usize,
    }
}

/// EMSA-PSS-ENCODE (RFC 8017 §9.1.1) with SHA-384, MGF1-SHA-384 and a 48-byte salt, for a
/// modulus of `mod_bits` bits (emBits = mod_bits - 1).
pub fn emsa_pss_encode(
    msg: &[u8],
    salt: &[u8; SALT_LEN],
    mod_bits: usize,
) -> Result<Vec<u8>, RsaError> {
    let em_bits = mod_bits.checked_sub(1).ok_or(RsaError::Backend)?;
    let em_len = em_bits.div_ceil(8);
    if em_len < HASH_LEN + SALT_LEN + 2 {
        return Err(RsaError::Backend);
    }
    let m_hash = Sha384::digest(msg);
    let h = Sha384::new()
        .chain_update([0u8; 8])
        .chain_update(m_hash)
        .chain_update(salt)
        .finalize();
    let mut em = vec![0u8; em_len];
    let db_len = em_len - HASH_LEN - 1;
    {
        let db = &mut em[..db_len];
        db[db_len - SALT_LEN - 1] = 0x01;
        db[db_len - SALT_LEN..].copy_from_slice(salt);
        mgf1_xor(db, &h);
        // Clear the 8*emLen - emBits leftmost bits.
        db[0] &= 0xff >> (8 * em_len - em_bits);
    }
    em[db_len..em_len - 1].copy_from_slice(&h);
    em[em_len - 1] = 0xbc;
    Ok(em)
}

fn to_fixed(n: &BigNum, len: usize) -> Result<Vec<u8>, RsaError> {
    let len = i32::try_from(len).map_err(|_| RsaError::Backend)?;
    Ok(n.to_vec_padded(len)?)
}

/// The client's secret from blinding: r^-1 mod n.
pub struct Unblinder(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for Unblinder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Unblinder(..)")
    }
}

/// RFC 9474 Blind with the given salt and blinding factor r: returns the blinded message
/// z = m * r^e mod n and the unblinder r^-1 mod n.
pub fn blind(
    modulus: &[u8],
    exponent: &[u8],
    msg: &[u8],
    salt: &[u8; SALT_LEN],
    r: &[u8],
) -> Result<(Vec<u8>, Unblinder), RsaError> {
    let mut ctx = BigNumContext::new()?;
    let n = BigNum::from_slice(modulus)?;
    let e = BigNum::from_slice(exponent)?;
    let encoded = emsa_pss_encode(msg, salt, bit_length(modulus))?;
    let m = BigNum::from_slice(&encoded)?;
    let mut gcd = BigNum::new()?;
    gcd.gcd(&m, &n, &mut ctx)?;
    if gcd != BigNum::from_u32(1)? {
        return Err(RsaError::NotInvertible);
    }
    let mut r_bn = BigNum::from_slice(r)?;
    let mut reduced = BigNum::new()?;
    reduced.nnmod(&r_bn, &n, &mut ctx)?;
    r_bn = reduced;
    // r links the blinded request to the token: OpenSSL's constant-time inverse and
    // exponentiation, so its timing does not depend on r.
    r_bn.set_const_time();
    let mut inv = BigNum::new()?;
    inv.mod_inverse(&r_bn, &n, &mut ctx)
        .map_err(|_| RsaError::NotInvertible)?;
    let mut x = BigNum::new()?;
    x.mod_exp(&r_bn, &e, &n, &mut ctx)?;
    let mut z = BigNum::new()?;
    z.mod_mul(&m, &x, &n, &mut ctx)?;
    let len = modulus.len();
    Ok((
        to_fixed(&z, len)?,
        Unblinder(Zeroizing::new(to_fixed(&inv, len)?)),
    ))
}

/// RFC 9474 Finalize without the verification step: s = z * r^-1 mod n. The caller verifies.
pub fn unblind(
    modulus: &[u8],
    blind_sig: &[u8],
    unblinder: &Unblinder,
) -> Result<Vec<u8>, RsaError> {
    if blind_sig.len() != modulus.len() {
        return Err(RsaError::WrongLength(blind_sig.len()));
    }
    if !below_modulus(blind_sig, modulus) {
        return Err(RsaError::NotBelowModulus);
    }
    let mut ctx = BigNumContext::new()?;
    let n = BigNum::from_slice(modulus)?;
    let z = BigNum::from_slice(blind_sig)?;
    let inv = BigNum::from_slice(&unblinder.0)?;
    let mut s = BigNum::new()?;
    s.mod_mul(&z, &inv, &n, &mut ctx)?;
    to_fixed(&s, modulus.len())
}

/// RSASSA-PSS-VERIFY (SHA-384, MGF1-SHA-384, salt 48) on a parsed aws-lc key.
pub fn verify(
    key: &aws_lc_rs::signature::ParsedPublicKey,
    modulus: &[u8],
    msg: &[u8],
    sig: &[u8],
) -> Result<(), RsaError> {
    if sig.len() != modulus.len() {
        return Err(RsaError::WrongLength(sig.len()));
    }
    if !below_modulus(sig, modulus) {
        return Err(RsaError::NotBelowModulus);
    }
    key.verify_sig(msg, sig).map_err(|_| RsaError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_modulus_compares_big_endian() {
        assert!(below_modulus(&[0, 9], &[1, 0]));
        assert!(!below_modulus(&[1, 0], &[1, 0]));
        assert!(!below_modulus(&[1, 1], &[1, 0]));
        assert!(!below_modulus(&[0], &[1, 0]));
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
        let sig = blind_sign(&good, &modulus, &msg).unwrap();
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
            blind_sign(&faulty, &modulus, &msg),
            Err(RsaError::FaultDetected)
        );
    }

    #[test]
    fn bit_length_counts_from_the_top_set_bit() {
        assert_eq!(bit_length(&[0x80, 0]), 16);
        assert_eq!(bit_length(&[0, 0x01, 0]), 9);
        assert_eq!(bit_length(&[0, 0]), 0);
    }
}
