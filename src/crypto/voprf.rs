//! RFC 9497 VOPRF (mode 0x01) for the privately verifiable token types, through the `voprf`
//! crate: P-384 with SHA-384 (its group from `p384`) for token type 0x0001 and ristretto255
//! with SHA-512 (its group from `curve25519-dalek`) for token type 0x0005. The protocol code
//! sees bytes and the two suites, never a type of these crates.
//!
//! Scalars live only inside `voprf`'s `VoprfServer` / `VoprfClient`, which wipe themselves when
//! dropped; the bytes of a scalar handed out here are in buffers wiped when dropped. Neither
//! type prints its scalar in `Debug`.

use ::voprf::{
    BlindedElement, CipherSuite, EvaluationElement, Group, Proof, VoprfClient, VoprfServer,
};
use digest::core_api::BlockSizeUser;
use digest::generic_array::typenum::{IsLess, IsLessOrEqual, U256};
use digest::OutputSizeUser;
use zeroize::{Zeroize, Zeroizing};

use super::Error;

/// The two RFC 9497 ciphersuites Privacy Pass uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VoprfSuite {
    /// P384-SHA384 (RFC 9497 §4.4), token type 0x0001.
    P384Sha384,
    /// ristretto255-SHA512 (RFC 9497 §4.1), token type 0x0005.
    Ristretto255Sha512,
}

impl VoprfSuite {
    /// Ne: a serialized element (compressed SEC1 point, or a ristretto255 encoding).
    pub const fn element_len(self) -> usize {
        match self {
            VoprfSuite::P384Sha384 => 49,
            VoprfSuite::Ristretto255Sha512 => 32,
        }
    }

    /// Ns: a serialized scalar (big-endian for P-384, little-endian for ristretto255).
    pub const fn scalar_len(self) -> usize {
        match self {
            VoprfSuite::P384Sha384 => 48,
            VoprfSuite::Ristretto255Sha512 => 32,
        }
    }

    /// Nh: the PRF output, which is the token's authenticator.
    pub const fn output_len(self) -> usize {
        match self {
            VoprfSuite::P384Sha384 => 48,
            VoprfSuite::Ristretto255Sha512 => 64,
        }
    }

    /// A DLEQ proof: two scalars.
    pub const fn proof_len(self) -> usize {
        2 * self.scalar_len()
    }
}

type P384 = p384::NistP384;
type Ristretto = ::voprf::Ristretto255;

/// `rand_core` over the operating system's generator (`getrandom`, as `random_bytes`). A
/// failure cannot be returned through `fill_bytes`, so it is remembered and the caller discards
/// what was computed with it.
struct OsRng {
    failed: bool,
}

impl OsRng {
    fn new() -> Self {
        OsRng { failed: false }
    }

    fn check(self) -> Result<(), Error> {
        if self.failed {
            Err(Error::Backend)
        } else {
            Ok(())
        }
    }
}

impl rand_core::RngCore for OsRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        if super::random_bytes(dest).is_err() {
            self.failed = true;
            dest.fill(0);
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for OsRng {}

/// The bound every `voprf` ciphersuite carries.
trait Suite: CipherSuite
where
    <Self::Hash as OutputSizeUser>::OutputSize:
        IsLess<U256> + IsLessOrEqual<<Self::Hash as BlockSizeUser>::BlockSize>,
{
}
impl Suite for P384 {}
impl Suite for Ristretto {}

fn element_bytes<CS: Suite>(elem: <CS::Group as Group>::Elem) -> Vec<u8>
where
    <CS::Hash as OutputSizeUser>::OutputSize:
        IsLess<U256> + IsLessOrEqual<<CS::Hash as BlockSizeUser>::BlockSize>,
{
    CS::Group::serialize_elem(elem).to_vec()
}

/// The bytes of a serialized element of `suite` in its one encoding (RFC 9497
/// DeserializeElement): Ne bytes, and for P-384 SEC1 compressed, tag 0x02 or 0x03. The backend
/// also reads SEC1's compact form (tag 0x05, same length), which RFC 9497 does not allow.
fn element(suite: VoprfSuite, bytes: &[u8]) -> Result<&[u8], Error> {
    let compressed = match suite {
        VoprfSuite::P384Sha384 => matches!(bytes.first(), Some(0x02 | 0x03)),
        VoprfSuite::Ristretto255Sha512 => true,
    };
    if bytes.len() != suite.element_len() || !compressed {
        return Err(Error::NotAnElement);
    }
    Ok(bytes)
}

fn exact(bytes: &[u8], len: usize) -> Result<&[u8], Error> {
    if bytes.len() == len {
        Ok(bytes)
    } else {
        Err(Error::Backend)
    }
}

enum ServerKey {
    P384(VoprfServer<P384>),
    Ristretto(VoprfServer<Ristretto>),
}

/// A VOPRF private key (a nonzero scalar) with its public key. Wiped when dropped (`voprf`'s
/// `VoprfServer` is `ZeroizeOnDrop`); `Debug` shows neither.
pub struct VoprfPrivateKey(ServerKey);

impl std::fmt::Debug for VoprfPrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VoprfPrivateKey(..)")
    }
}

fn server_from_scalar<CS: Suite>(scalar: &[u8]) -> Result<VoprfServer<CS>, Error>
where
    <CS::Hash as OutputSizeUser>::OutputSize:
        IsLess<U256> + IsLessOrEqual<<CS::Hash as BlockSizeUser>::BlockSize>,
{
    VoprfServer::<CS>::new_with_key(scalar).map_err(|_| Error::Backend)
}

/// SerializeScalar of a server's key: `serialize()` is the scalar followed by the public
/// element. (A macro: the length arithmetic of `serialize` holds for each concrete suite.)
macro_rules! server_scalar {
    ($server:expr, $len:expr) => {{
        let mut both = $server.serialize();
        let scalar = Zeroizing::new(both[..$len].to_vec());
        both.zeroize();
        scalar
    }};
}

/// BlindEvaluate of serialized bytes with a server of suite `$cs`.
macro_rules! blind_evaluate {
    ($cs:ty, $server:expr, $blinded:expr) => {{
        // DeserializeElement refuses the identity and anything not on the group.
        let blinded =
            BlindedElement::<$cs>::deserialize($blinded).map_err(|_| Error::NotAnElement)?;
        let mut rng = OsRng::new();
        let result = $server.blind_evaluate(&mut rng, &blinded);
        rng.check()?;
        Ok((
            result.message.serialize().to_vec(),
            result.proof.serialize().to_vec(),
        ))
    }};
}

/// BlindEvaluateBatch (draft-ietf-privacypass-batched-tokens §4.2) of serialized elements with
/// a server of suite `$cs`: every element evaluated, one DLEQ proof over all of them.
macro_rules! blind_evaluate_batch {
    ($cs:ty, $server:expr, $blinded:expr) => {{
        let blinded = $blinded
            .iter()
            .map(|b| BlindedElement::<$cs>::deserialize(b).map_err(|_| Error::NotAnElement))
            .collect::<Result<Vec<_>, _>>()?;
        let mut rng = OsRng::new();
        let result = $server
            .batch_blind_evaluate(&mut rng, &blinded)
            .map_err(|_| Error::Backend)?;
        rng.check()?;
        Ok((
            result
                .messages
                .iter()
                .map(|m| m.serialize().to_vec())
                .collect(),
            result.proof.serialize().to_vec(),
        ))
    }};
}

fn evaluate_with<CS: Suite>(
    server: &VoprfServer<CS>,
    input: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Error>
where
    <CS::Hash as OutputSizeUser>::OutputSize:
        IsLess<U256> + IsLessOrEqual<<CS::Hash as BlockSizeUser>::BlockSize>,
{
    let mut output = server.evaluate(input).map_err(|_| Error::Backend)?;
    let out = Zeroizing::new(output.to_vec());
    output.zeroize();
    Ok(out)
}

impl VoprfPrivateKey {
    /// A fresh key: RFC 9497 DeriveKeyPair from a seed of the OS RNG.
    pub(crate) fn generate(suite: VoprfSuite) -> Result<Self, Error> {
        let mut rng = OsRng::new();
        let key = match suite {
            VoprfSuite::P384Sha384 => VoprfServer::new(&mut rng).map(ServerKey::P384),
            VoprfSuite::Ristretto255Sha512 => VoprfServer::new(&mut rng).map(ServerKey::Ristretto),
        };
        rng.check()?;
        key.map(VoprfPrivateKey).map_err(|_| Error::Backend)
    }

    /// From SerializeScalar bytes (exactly Ns of them, canonical and nonzero).
    pub(crate) fn from_scalar(suite: VoprfSuite, scalar: &[u8]) -> Result<Self, Error> {
        let scalar = exact(scalar, suite.scalar_len())?;
        Ok(VoprfPrivateKey(match suite {
            VoprfSuite::P384Sha384 => ServerKey::P384(server_from_scalar(scalar)?),
            VoprfSuite::Ristretto255Sha512 => ServerKey::Ristretto(server_from_scalar(scalar)?),
        }))
    }

    pub(crate) fn suite(&self) -> VoprfSuite {
        match self.0 {
            ServerKey::P384(_) => VoprfSuite::P384Sha384,
            ServerKey::Ristretto(_) => VoprfSuite::Ristretto255Sha512,
        }
    }

    /// SerializeScalar of the key, in a buffer wiped when dropped.
    pub(crate) fn scalar_bytes(&self) -> Zeroizing<Vec<u8>> {
        let len = self.suite().scalar_len();
        match &self.0 {
            ServerKey::P384(s) => server_scalar!(s, len),
            ServerKey::Ristretto(s) => server_scalar!(s, len),
        }
    }

    /// SerializeElement of the public key.
    pub(crate) fn public_key(&self) -> Vec<u8> {
        match &self.0 {
            ServerKey::P384(s) => element_bytes::<P384>(s.get_public_key()),
            ServerKey::Ristretto(s) => element_bytes::<Ristretto>(s.get_public_key()),
        }
    }

    /// RFC 9497 BlindEvaluate of a serialized blinded element: (the evaluated element, its DLEQ
    /// proof), serialized. The proof's scalar r is fresh from the OS RNG.
    pub(crate) fn blind_evaluate(&self, blinded: &[u8]) -> Result<(Vec<u8>, Vec<u8>), Error> {
        let blinded = element(self.suite(), blinded)?;
        match &self.0 {
            ServerKey::P384(s) => blind_evaluate!(P384, s, blinded),
            ServerKey::Ristretto(s) => blind_evaluate!(Ristretto, s, blinded),
        }
    }

    /// BlindEvaluateBatch of serialized blinded elements (each exactly Ne bytes): the
    /// evaluated elements, in order, and one DLEQ proof for all of them. At most `u16::MAX`
    /// elements (the backend's bound; callers bound batches far lower).
    pub(crate) fn blind_evaluate_batch(
        &self,
        blinded: &[&[u8]],
    ) -> Result<(Vec<Vec<u8>>, Vec<u8>), Error> {
        let suite = self.suite();
        let blinded = blinded
            .iter()
            .map(|b| element(suite, b))
            .collect::<Result<Vec<_>, _>>()?;
        match &self.0 {
            ServerKey::P384(s) => blind_evaluate_batch!(P384, s, blinded),
            ServerKey::Ristretto(s) => blind_evaluate_batch!(Ristretto, s, blinded),
        }
    }

    /// RFC 9497 Evaluate: the PRF output of `input` under this key (Nh bytes), wiped when
    /// dropped.
    pub(crate) fn evaluate(&self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        match &self.0 {
            ServerKey::P384(s) => evaluate_with(s, input),
            ServerKey::Ristretto(s) => evaluate_with(s, input),
        }
    }
}

/// Whether `bytes` is a serialized element of the suite's group other than the identity (a
/// public key the client can verify proofs against).
pub(crate) fn is_element(suite: VoprfSuite, bytes: &[u8]) -> bool {
    if element(suite, bytes).is_err() {
        return false;
    }
    match suite {
        VoprfSuite::P384Sha384 => <P384 as Group>::deserialize_elem(bytes).is_ok(),
        VoprfSuite::Ristretto255Sha512 => <Ristretto as Group>::deserialize_elem(bytes).is_ok(),
    }
}

enum ClientInner {
    P384(VoprfClient<P384>),
    Ristretto(VoprfClient<Ristretto>),
}

/// A client's blinding state (the blind and the blinded element) between its request and the
/// issuer's response. Wiped when dropped; `Debug` shows nothing of it.
pub struct VoprfBlindState(ClientInner);

impl std::fmt::Debug for VoprfBlindState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VoprfBlindState(..)")
    }
}

fn blind_with<CS: Suite>(
    input: &[u8],
    blind: Option<&[u8]>,
) -> Result<(VoprfClient<CS>, Vec<u8>), Error>
where
    <CS::Hash as OutputSizeUser>::OutputSize:
        IsLess<U256> + IsLessOrEqual<<CS::Hash as BlockSizeUser>::BlockSize>,
{
    let result = match blind {
        None => {
            let mut rng = OsRng::new();
            let result = VoprfClient::<CS>::blind(input, &mut rng);
            rng.check()?;
            result
        }
        Some(bytes) => {
            // Nonzero and canonical: deserialize_scalar refuses the others.
            let blind = CS::Group::deserialize_scalar(bytes).map_err(|_| Error::Backend)?;
            VoprfClient::<CS>::deterministic_blind_unchecked(input, blind)
        }
    }
    .map_err(|_| Error::Backend)?;
    Ok((result.state, result.message.serialize().to_vec()))
}

fn finalize_with<CS: Suite>(
    state: &VoprfClient<CS>,
    input: &[u8],
    evaluated: &[u8],
    proof: &[u8],
    public_key: &[u8],
) -> Result<Vec<u8>, Error>
where
    <CS::Hash as OutputSizeUser>::OutputSize:
        IsLess<U256> + IsLessOrEqual<<CS::Hash as BlockSizeUser>::BlockSize>,
{
    let evaluated =
        EvaluationElement::<CS>::deserialize(evaluated).map_err(|_| Error::NotAnElement)?;
    let proof = Proof::<CS>::deserialize(proof).map_err(|_| Error::Backend)?;
    let pk = CS::Group::deserialize_elem(public_key).map_err(|_| Error::NotAnElement)?;
    let output = state
        .finalize(input, &evaluated, &proof, pk)
        .map_err(|e| match e {
            ::voprf::Error::ProofVerification => Error::ProofInvalid,
            _ => Error::Backend,
        })?;
    Ok(output.to_vec())
}

/// FinalizeBatch (draft-ietf-privacypass-batched-tokens §4.3) with the clients' states of one
/// suite: the proof verified once over every pair, then each output.
fn finalize_batch_with<CS: Suite>(
    states: Vec<VoprfClient<CS>>,
    inputs: &[&[u8]],
    evaluated: &[&[u8]],
    proof: &[u8],
    public_key: &[u8],
) -> Result<Vec<Vec<u8>>, Error>
where
    <CS::Hash as OutputSizeUser>::OutputSize:
        IsLess<U256> + IsLessOrEqual<<CS::Hash as BlockSizeUser>::BlockSize>,
{
    let evaluated = evaluated
        .iter()
        .map(|e| EvaluationElement::<CS>::deserialize(e).map_err(|_| Error::NotAnElement))
        .collect::<Result<Vec<_>, _>>()?;
    let proof = Proof::<CS>::deserialize(proof).map_err(|_| Error::Backend)?;
    let pk = CS::Group::deserialize_elem(public_key).map_err(|_| Error::NotAnElement)?;
    let inputs: Vec<&[u8]> = inputs.to_vec();
    let outputs = VoprfClient::batch_finalize(&inputs, &states, &evaluated, &proof, pk).map_err(
        |e| match e {
            ::voprf::Error::ProofVerification => Error::ProofInvalid,
            _ => Error::Backend,
        },
    )?;
    outputs
        .map(|o| o.map(|out| out.to_vec()).map_err(|_| Error::Backend))
        .collect()
}

impl VoprfBlindState {
    /// RFC 9497 Blind of `input` (VOPRF mode): the state and the serialized blinded element.
    /// `blind` gives the blinding scalar (SerializeScalar bytes, for known-answer tests); without
    /// it a fresh one is drawn from the OS RNG.
    pub(crate) fn blind(
        suite: VoprfSuite,
        input: &[u8],
        blind: Option<&[u8]>,
    ) -> Result<(Self, Vec<u8>), Error> {
        if let Some(b) = blind {
            exact(b, suite.scalar_len())?;
        }
        Ok(match suite {
            VoprfSuite::P384Sha384 => {
                let (s, m) = blind_with::<P384>(input, blind)?;
                (VoprfBlindState(ClientInner::P384(s)), m)
            }
            VoprfSuite::Ristretto255Sha512 => {
                let (s, m) = blind_with::<Ristretto>(input, blind)?;
                (VoprfBlindState(ClientInner::Ristretto(s)), m)
            }
        })
    }

    /// FinalizeBatch of one amortized batch: `states[i]` blinded `inputs[i]` and `evaluated[i]`
    /// is its evaluation; one proof covers them all. Verifies the proof against `public_key`,
    /// then unblinds and hashes each: the PRF outputs, in order. Every state must be of one
    /// suite, and the three lists of one length.
    pub(crate) fn finalize_batch(
        states: &[&VoprfBlindState],
        inputs: &[&[u8]],
        evaluated: &[&[u8]],
        proof: &[u8],
        public_key: &[u8],
    ) -> Result<Vec<Vec<u8>>, Error> {
        let Some(first) = states.first() else {
            return Err(Error::Backend);
        };
        if inputs.len() != states.len() || evaluated.len() != states.len() {
            return Err(Error::Backend);
        }
        let suite = first.suite();
        let evaluated = evaluated
            .iter()
            .map(|e| element(suite, e))
            .collect::<Result<Vec<_>, _>>()?;
        let proof = exact(proof, suite.proof_len())?;
        let public_key = element(suite, public_key)?;
        match suite {
            VoprfSuite::P384Sha384 => {
                let states = states
                    .iter()
                    .map(|s| match &s.0 {
                        ClientInner::P384(c) => Ok(c.clone()),
                        ClientInner::Ristretto(_) => Err(Error::Backend),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                finalize_batch_with(states, inputs, &evaluated, proof, public_key)
            }
            VoprfSuite::Ristretto255Sha512 => {
                let states = states
                    .iter()
                    .map(|s| match &s.0 {
                        ClientInner::Ristretto(c) => Ok(c.clone()),
                        ClientInner::P384(_) => Err(Error::Backend),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                finalize_batch_with(states, inputs, &evaluated, proof, public_key)
            }
        }
    }

    fn suite(&self) -> VoprfSuite {
        match self.0 {
            ClientInner::P384(_) => VoprfSuite::P384Sha384,
            ClientInner::Ristretto(_) => VoprfSuite::Ristretto255Sha512,
        }
    }

    /// RFC 9497 Finalize: verifies the DLEQ proof of `evaluated` against `public_key` and the
    /// blinded element, unblinds, and hashes: the PRF output of `input` (Nh bytes).
    pub(crate) fn finalize(
        &self,
        input: &[u8],
        evaluated: &[u8],
        proof: &[u8],
        public_key: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let suite = self.suite();
        let evaluated = element(suite, evaluated)?;
        let proof = exact(proof, suite.proof_len())?;
        let public_key = element(suite, public_key)?;
        match &self.0 {
            ClientInner::P384(s) => finalize_with(s, input, evaluated, proof, public_key),
            ClientInner::Ristretto(s) => finalize_with(s, input, evaluated, proof, public_key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_in_both_suites_and_no_scalar_in_debug() {
        for suite in [VoprfSuite::P384Sha384, VoprfSuite::Ristretto255Sha512] {
            let key = VoprfPrivateKey::generate(suite).unwrap();
            let again = VoprfPrivateKey::from_scalar(suite, &key.scalar_bytes()).unwrap();
            assert_eq!(again.public_key(), key.public_key());
            assert!(is_element(suite, &key.public_key()));
            let input = b"token input";
            let (state, blinded) = VoprfBlindState::blind(suite, input, None).unwrap();
            assert_eq!(blinded.len(), suite.element_len());
            let (evaluated, proof) = key.blind_evaluate(&blinded).unwrap();
            assert_eq!(proof.len(), suite.proof_len());
            let output = state
                .finalize(input, &evaluated, &proof, &key.public_key())
                .unwrap();
            assert_eq!(output.len(), suite.output_len());
            assert_eq!(output, key.evaluate(input).unwrap().to_vec());
            let mut bad = proof.clone();
            bad[3] ^= 1;
            assert!(state
                .finalize(input, &evaluated, &bad, &key.public_key())
                .is_err());
            let scalar = hex::encode(key.scalar_bytes());
            assert!(!format!("{key:?}").contains(&scalar));
            assert!(key.blind_evaluate(&vec![0; suite.element_len()]).is_err());
            assert!(VoprfPrivateKey::from_scalar(suite, &vec![0; suite.scalar_len()]).is_err());
        }
    }

    /// RFC 9497 DeserializeElement for P-384 is SEC1 compressed (tag 0x02 or 0x03) only: the
    /// same x under SEC1's "compact" tag 0x05, also 49 bytes, is another encoding of a point
    /// and is refused wherever an element is read (public key, blinded and evaluated element).
    #[test]
    fn a_p384_element_is_read_only_in_its_compressed_form() {
        let suite = VoprfSuite::P384Sha384;
        let key = VoprfPrivateKey::generate(suite).unwrap();
        let input = b"token input";
        let (state, blinded) = VoprfBlindState::blind(suite, input, None).unwrap();
        let (evaluated, proof) = key.blind_evaluate(&blinded).unwrap();
        let public = key.public_key();
        let other_tag = |element: &[u8], tag: u8| [&[tag][..], &element[1..]].concat();
        for tag in [0x00, 0x01, 0x04, 0x05, 0x06, 0x07] {
            assert!(
                !is_element(suite, &other_tag(&public, tag)),
                "tag {tag:#04x}"
            );
            assert!(
                key.blind_evaluate(&other_tag(&blinded, tag)).is_err(),
                "tag {tag:#04x}"
            );
            assert!(state
                .finalize(input, &other_tag(&evaluated, tag), &proof, &public)
                .is_err());
            assert!(state
                .finalize(input, &evaluated, &proof, &other_tag(&public, tag))
                .is_err());
        }
        assert!(state.finalize(input, &evaluated, &proof, &public).is_ok());
    }
}
