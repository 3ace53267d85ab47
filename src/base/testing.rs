//! Test fixtures that several test modules share (compiled for tests only):
//! fake `sha256:` digests, a key pair's public key as PEM, and a fresh key
//! pair with its public key written to a file, as a policy's key signer
//! names it.

use std::path::{Path, PathBuf};

use base64::Engine;
use sigstore_verify::crypto::KeyPair;

/// A well-formed `sha256:` digest made of the byte `n` repeated (`digest(1)`
/// is `sha256:0101…01`).
pub fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

/// The public key of `kp` as a PEM `PUBLIC KEY` block (SubjectPublicKeyInfo).
pub fn public_key_pem(kp: &KeyPair) -> String {
    let der = kp.public_key_der().unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_bytes());
    format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n")
}

/// A new ECDSA P-256 key pair, its public key written as PEM to `dir/k.pub`;
/// returns the pair and the file.
pub fn write_public_key(dir: &Path) -> (KeyPair, PathBuf) {
    let key = dir.join("k.pub");
    let kp = KeyPair::generate_ecdsa_p256().unwrap();
    std::fs::write(&key, public_key_pem(&kp)).unwrap();
    (kp, key)
}
