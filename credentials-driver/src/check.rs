//! `credentials-driver --check-config`: the socket flags, the config file, every secret
//! it references (present in the secrets directory), the store directory, the extra
//! CA file and the cache size, checked without serving or calling a token endpoint.

use proto::cli::ConfigCheck;

use crate::Args;
use crate::config::{self, Credential};
use crate::secrets::SecretsDir;

/// Checks `args` as start-up would use them.
pub fn check(args: &Args) -> ConfigCheck {
    let mut report = ConfigCheck::default();
    report.expect("--socket", args.socket.check(), "path, directory and group");
    let config = match &args.config {
        Some(file) => report.expect(
            "--config",
            config::load(file).map_err(|e| e.to_string()),
            "parses",
        ),
        None => {
            report.note("--config: none given, so no credential is configured");
            Some(config::Config::default())
        }
    };
    let names_none = config.as_ref().is_some_and(|c| c.credentials.is_empty());
    let dir_ok = if !args.secrets_dir.exists() && names_none {
        report.note("--secrets-dir: absent, and no credential needs it");
        false
    } else {
        report
            .expect(
                "--secrets-dir",
                if args.secrets_dir.exists() {
                    proto::private::check_dir(&args.secrets_dir)
                } else {
                    Err(format!(
                        "{} does not exist: create it, or mount the Secret holding the credentials there",
                        args.secrets_dir.display()
                    ))
                },
                "a directory others cannot change",
            )
            .is_some()
    };
    if let (Some(config), true) = (config, dir_ok) {
        let secrets = SecretsDir::new(&args.secrets_dir);
        for (name, credential) in &config.credentials {
            let (field, reference) = match credential {
                Credential::Static { token_ref, .. } => ("token_ref", token_ref),
                Credential::ClientCredentials(c) | Credential::TokenExchange(c) => {
                    ("client_secret_ref", &c.client_secret_ref)
                }
            };
            report.expect(
                &format!("credentials.{name}.{field}"),
                secrets.read(reference).map(drop).map_err(|e| e.to_string()),
                "readable",
            );
        }
    }
    if let Some(file) = &args.idp_ca_file {
        let parsed = std::fs::read(file)
            .map_err(|e| format!("{}: {e}", file.display()))
            .and_then(|pem| match reqwest::Certificate::from_pem_bundle(&pem) {
                Ok(certificates) if !certificates.is_empty() => Ok(()),
                Ok(_) => Err(format!("{}: holds no PEM certificate", file.display())),
                Err(e) => Err(format!("{}: not a PEM bundle: {e}", file.display())),
            });
        report.expect("--idp-ca-file", parsed, "PEM bundle");
    }
    let store = args.store_dir();
    if store.exists() {
        report.expect(
            "--store-dir",
            proto::private::check_dir(&store),
            "private (values stored through upstream's CredentialDriver)",
        );
    } else {
        report.note(format!(
            "--store-dir: {} is created 0700 at the first stored value",
            store.display()
        ));
    }
    if args.exchange_cache_size == 0 {
        report.problem("--exchange-cache-size: must be at least 1");
    }
    report
}
