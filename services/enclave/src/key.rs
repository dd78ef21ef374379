//! The steward's secret: read from a key file or an environment variable,
//! never from the data directory, and never shorter than 32 bytes.

use std::path::Path;

use ring::rand::{SecureRandom, SystemRandom};

/// The environment variable read when no key file is given.
pub(crate) const DEFAULT_KEY_ENV: &str = "ENCLAVE_PSEUDONYM_KEY";

/// Bytes of a freshly generated key.
const GENERATED_KEY_BYTES: usize = 32;

/// Why no usable key was found.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeyError {
    #[error("no pseudonymization key: pass --key-file FILE or set {0}")]
    Missing(String),
    #[error("cannot read key file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write key file {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("the system random generator failed")]
    Random,
}

/// The secret from `key_file` if given, else from the environment variable.
/// Surrounding whitespace in a key file is ignored.
pub(crate) fn load_secret(key_file: Option<&Path>, key_env: &str) -> Result<Vec<u8>, KeyError> {
    match key_file {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|source| KeyError::Read {
                path: path.display().to_string(),
                source,
            })?;
            Ok(bytes.trim_ascii().to_vec())
        }
        None => std::env::var(key_env)
            .map(String::into_bytes)
            .map_err(|_| KeyError::Missing(key_env.to_owned())),
    }
}

/// Creates a random key file (hex text, owner-only permissions) unless one exists.
pub(crate) fn ensure_key_file(path: &Path) -> Result<(), KeyError> {
    if path.exists() {
        return Ok(());
    }
    let write_error = |source| KeyError::Write {
        path: path.display().to_string(),
        source,
    };
    let mut secret = [0u8; GENERATED_KEY_BYTES];
    SystemRandom::new()
        .fill(&mut secret)
        .map_err(|_| KeyError::Random)?;
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(write_error)?;
    }
    std::fs::write(path, hex).map_err(write_error)?;
    restrict_to_owner(path).map_err(write_error)
}

#[cfg(unix)]
fn restrict_to_owner(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn restrict_to_owner(_path: &Path) -> std::io::Result<()> {
    Ok(())
}
