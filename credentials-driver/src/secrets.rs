//! Reading secrets by reference from the secrets directory, never outside it.
//!
//! Files are read at use, so a rotated Kubernetes Secret (which swaps a symlink inside
//! the directory) is picked up without a restart. A reference whose resolved path
//! leaves the directory (`..`, absolute, or a symlink pointing out) is refused.

use std::path::{Path, PathBuf};

use proto::Secret;

use crate::config::secret_ref;

/// Why a secret could not be read. Messages name the reference, never the content.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The reference is malformed or resolves outside the secrets directory.
    #[error("secret reference {0:?} escapes the secrets directory")]
    Escapes(String),
    /// The file is missing or unreadable.
    #[error("secret {reference:?} cannot be read from {dir:?}: {source}")]
    Unreadable {
        /// The reference.
        reference: String,
        /// The secrets directory.
        dir: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is empty.
    #[error("secret {0:?} is empty")]
    Empty(String),
}

/// The secrets directory.
#[derive(Clone, Debug)]
pub struct SecretsDir {
    root: PathBuf,
}

impl SecretsDir {
    /// Secrets under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Reads a secret, without its trailing newline.
    ///
    /// # Errors
    /// [`SecretError`] when the reference escapes, the file is unreadable or empty.
    pub fn read(&self, reference: &str) -> Result<Secret, SecretError> {
        secret_ref(reference).map_err(|_| SecretError::Escapes(reference.to_owned()))?;
        let unreadable = |source| SecretError::Unreadable {
            reference: reference.to_owned(),
            dir: self.root.clone(),
            source,
        };
        let root = self.root.canonicalize().map_err(unreadable)?;
        let path = self
            .root
            .join(reference)
            .canonicalize()
            .map_err(unreadable)?;
        if !path.starts_with(&root) {
            return Err(SecretError::Escapes(reference.to_owned()));
        }
        let text = std::fs::read_to_string(&path).map_err(unreadable)?;
        let value = text.strip_suffix('\n').unwrap_or(&text);
        let value = value.strip_suffix('\r').unwrap_or(value);
        if value.is_empty() {
            return Err(SecretError::Empty(reference.to_owned()));
        }
        Ok(Secret::new(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn reads_a_secret_without_its_newline() {
        let d = dir();
        std::fs::write(d.path().join("tok"), "abc\n").unwrap();
        assert_eq!(
            SecretsDir::new(d.path()).read("tok").unwrap().expose(),
            "abc"
        );
    }

    #[test]
    fn follows_kubernetes_style_symlinks_inside_the_directory() {
        let d = dir();
        std::fs::create_dir(d.path().join("..2026_11_22")).unwrap();
        std::fs::write(d.path().join("..2026_11_22/tok"), "v2").unwrap();
        std::os::unix::fs::symlink("..2026_11_22", d.path().join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/tok", d.path().join("tok")).unwrap();
        assert_eq!(
            SecretsDir::new(d.path()).read("tok").unwrap().expose(),
            "v2"
        );
    }

    #[test]
    fn refuses_symlinks_and_paths_that_leave_the_directory() {
        let d = dir();
        let outside = dir();
        std::fs::write(outside.path().join("other"), "stolen").unwrap();
        std::os::unix::fs::symlink(outside.path().join("other"), d.path().join("link")).unwrap();
        let secrets = SecretsDir::new(d.path());
        for reference in ["link", "../other", "/etc/passwd"] {
            let error = secrets.read(reference).unwrap_err();
            assert!(
                matches!(error, SecretError::Escapes(_)),
                "{reference}: {error}"
            );
            assert!(!error.to_string().contains("stolen"));
        }
    }

    #[test]
    fn missing_and_empty_files_are_errors_naming_the_reference() {
        let d = dir();
        std::fs::write(d.path().join("empty"), "\n").unwrap();
        let secrets = SecretsDir::new(d.path());
        assert!(
            secrets
                .read("missing")
                .unwrap_err()
                .to_string()
                .contains("\"missing\"")
        );
        assert!(matches!(
            secrets.read("empty").unwrap_err(),
            SecretError::Empty(_)
        ));
    }
}
