//! Signed checkpoints: Ed25519 signatures over (size, root, time). The
//! signing key lives outside the log directory; the verifier is given the
//! public key from a trusted place, never from the log.

use std::path::Path;

use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::AuditError;
use crate::merkle::Hash;

pub(crate) const CHECKPOINT_FILE: &str = "checkpoints.jsonl";

/// One line of `checkpoints.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Events covered: the first `size` events of the log.
    pub size: u64,
    /// Hex of the Merkle tree head over them.
    pub root: String,
    pub at_ms: i64,
    /// Hex of the Ed25519 signature of [`Checkpoint::message`].
    pub signature: String,
}

impl Checkpoint {
    pub fn message(size: u64, root: &str, at_ms: i64) -> String {
        format!("enclave-audit-checkpoint/v1\n{size}\n{root}\n{at_ms}\n")
    }

    pub fn verify(&self, public_key: &[u8]) -> bool {
        let Some(signature) = unhex(&self.signature) else {
            return false;
        };
        let message = Checkpoint::message(self.size, &self.root, self.at_ms);
        UnparsedPublicKey::new(&ED25519, public_key)
            .verify(message.as_bytes(), &signature)
            .is_ok()
    }
}

/// The checkpoint signing key.
#[derive(Debug)]
pub struct CheckpointSigner {
    key: Ed25519KeyPair,
}

impl CheckpointSigner {
    /// Loads a PKCS#8 Ed25519 key written by [`CheckpointSigner::create`].
    pub fn load(path: &Path) -> Result<CheckpointSigner, AuditError> {
        let bytes = std::fs::read(path).map_err(|e| AuditError::io(path, e))?;
        let key = Ed25519KeyPair::from_pkcs8(&bytes).map_err(|_| {
            AuditError::Key(format!("{} is not an Ed25519 PKCS#8 key", path.display()))
        })?;
        Ok(CheckpointSigner { key })
    }

    /// Makes a new key at `path` (owner-only) and its public key beside it
    /// (`<path>.pub`, hex); refuses to overwrite.
    pub fn create(path: &Path) -> Result<CheckpointSigner, AuditError> {
        if path.exists() {
            return Err(AuditError::Key(format!(
                "{} already exists",
                path.display()
            )));
        }
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| AuditError::Key("cannot generate a key".into()))?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| AuditError::io(parent, e))?;
        }
        write_private(path, pkcs8.as_ref())?;
        let signer = CheckpointSigner::load(path)?;
        let public = public_key_path(path);
        std::fs::write(&public, hex(signer.public_key()))
            .map_err(|e| AuditError::io(&public, e))?;
        Ok(signer)
    }

    pub fn public_key(&self) -> &[u8] {
        self.key.public_key().as_ref()
    }

    pub(crate) fn sign(&self, size: u64, root: &Hash, at_ms: i64) -> Checkpoint {
        let root = hex(root);
        let signature = self
            .key
            .sign(Checkpoint::message(size, &root, at_ms).as_bytes());
        Checkpoint {
            size,
            root,
            at_ms,
            signature: hex(signature.as_ref()),
        }
    }
}

/// `<key>.pub`: where [`CheckpointSigner::create`] puts the public key.
pub fn public_key_path(key: &Path) -> std::path::PathBuf {
    let mut name = key.as_os_str().to_owned();
    name.push(".pub");
    name.into()
}

/// Reads a hex public key file.
pub fn load_public_key(path: &Path) -> Result<Vec<u8>, AuditError> {
    let text = std::fs::read_to_string(path).map_err(|e| AuditError::io(path, e))?;
    unhex(text.trim())
        .filter(|key| key.len() == 32)
        .ok_or_else(|| {
            AuditError::Key(format!(
                "{} is not a hex Ed25519 public key",
                path.display()
            ))
        })
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), AuditError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| AuditError::io(path, e))?;
    file.write_all(bytes).map_err(|e| AuditError::io(path, e))
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), AuditError> {
    std::fs::write(path, bytes).map_err(|e| AuditError::io(path, e))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
