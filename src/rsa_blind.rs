//! RFC 9474 RSABSSA-SHA384-PSS-Deterministic over the operations of `crate::crypto`.
//!
//! - The issuer's BlindSign is the raw private operation (CRT with base blinding and
//!   constant-time exponentiation in the backend), checked by re-encrypting its result (RFC 9474
//!   §4.3 step 3), so a faulty signature, which would reveal a prime factor, is never released.
//! - Verification is RSASSA-PSS-VERIFY with SHA-384, MGF1-SHA-384 and a 48-byte salt, on a key
//!   parsed once.
//! - The client's blind and finalize are computed from the explicit salt and blinding factor, so
//!   the RFC vectors are reproduced exactly; in normal use both come from the operating system's
//!   RNG. The blinding factor goes through the backend's constant-time inverse and
//!   exponentiation.
//!
//! The pure-Rust `rsa` crate is not used at run time: its private operation is not constant
//! time (RUSTSEC-2023-0071) and an issuer's private operation can be timed remotely.

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

pub use crate::crypto::PssPublicKey;
use crate::crypto::{self, RsaPrivateKey};

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

impl From<crypto::Error> for RsaError {
    fn from(e: crypto::Error) -> Self {
        match e {
            crypto::Error::NotInvertible => RsaError::NotInvertible,
            _ => RsaError::Backend,
        }
    }
}

/// `value < modulus` for two big-endian numbers of the same length. Both are public.
pub fn below_modulus(value: &[u8], modulus: &[u8]) -> bool {
    value.len() == modulus.len() && value < modulus
}

/// RFC 9474 BlindSign: s = m^d mod n, checked by m == s^e mod n before it is returned.
pub fn blind_sign(
    key: &RsaPrivateKey,
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
    let sig = key.private_op(blinded_msg)?;
    let check = key.public_op(&sig)?;
    if !bool::from(check.as_slice().ct_eq(blinded_msg)) {
        return Err(RsaError::FaultDetected);
    }
    Ok(sig)
}

fn mgf1_xor(out: &mut [u8], seed: &[u8]) {
    for (counter, chunk) in (0u32..).zip(out.chunks_mut(HASH_LEN)) {
        let mask = crypto::sha384(&[seed, &counter.to_be_bytes()]);
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
    let m_hash = crypto::sha384(&[msg]);
    let h = crypto::sha384(&[&[0u8; 8], &m_hash, salt]);
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
    let encoded = emsa_pss_encode(msg, salt, bit_length(modulus))?;
    let (z, inv) = crypto::rsa_blind(modulus, exponent, &encoded, r)?;
    Ok((z, Unblinder(inv)))
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
    Ok(crypto::rsa_unblind(modulus, blind_sig, &unblinder.0)?)
}

/// RSASSA-PSS-VERIFY (SHA-384, MGF1-SHA-384, salt 48) on a parsed key.
pub fn verify(key: &PssPublicKey, modulus: &[u8], msg: &[u8], sig: &[u8]) -> Result<(), RsaError> {
    if sig.len() != modulus.len() {
        return Err(RsaError::WrongLength(sig.len()));
    }
    if !below_modulus(sig, modulus) {
        return Err(RsaError::NotBelowModulus);
    }
    if !crypto::pss_verify_sha384(key, msg, sig) {
        return Err(RsaError::BadSignature);
    }
    Ok(())
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
    fn bit_length_counts_from_the_top_set_bit() {
        assert_eq!(bit_length(&[0x80, 0]), 16);
        assert_eq!(bit_length(&[0, 0x01, 0]), 9);
        assert_eq!(bit_length(&[0, 0]), 0);
    }
}
