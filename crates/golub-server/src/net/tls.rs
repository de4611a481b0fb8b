//! TLS for every listener (rustls, ring provider; TLS 1.2 and 1.3 only). The certificate
//! comes from `[tls] cert`/`key` (PEM, full chain) or, without them, from a self-signed
//! certificate for the hostname that is made in the data directory on first start.
//! `reload` re-reads the files (on SIGHUP), so a renewed certificate needs no restart.

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use tokio_rustls::TlsAcceptor;
use tracing::info;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {cause}")]
    Read { path: PathBuf, cause: String },
    #[error("{path}: no {what} found in PEM")]
    Empty { path: PathBuf, what: &'static str },
    #[error("cannot make a self-signed certificate: {0}")]
    Generate(String),
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(String),
}

/// Where the certificate and key come from.
#[derive(Debug, Clone)]
pub struct TlsSource {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Made by Golub (and re-made if missing) rather than given by the operator.
    pub self_signed: bool,
}

/// The current TLS configuration, swappable at run time.
pub struct Tls {
    source: TlsSource,
    hostname: String,
    current: RwLock<Arc<ServerConfig>>,
}

impl Tls {
    /// Loads the configured certificate, or makes/loads the self-signed one in `data_dir`.
    pub fn setup(
        cert: Option<&Path>,
        key: Option<&Path>,
        data_dir: &Path,
        hostname: &str,
    ) -> Result<Tls, TlsError> {
        let source = match (cert, key) {
            (Some(c), Some(k)) => TlsSource {
                cert: c.to_path_buf(),
                key: k.to_path_buf(),
                self_signed: false,
            },
            _ => TlsSource {
                cert: data_dir.join("tls/self-signed-cert.pem"),
                key: data_dir.join("tls/self-signed-key.pem"),
                self_signed: true,
            },
        };
        if source.self_signed && !(source.cert.exists() && source.key.exists()) {
            make_self_signed(&source, hostname)?;
            info!(cert = %source.cert.display(), hostname, "made a self-signed TLS certificate; set [tls] cert and key for a real one");
        }
        let config = load(&source)?;
        Ok(Tls {
            source,
            hostname: hostname.to_string(),
            current: RwLock::new(Arc::new(config)),
        })
    }

    /// An acceptor for one new connection, with the configuration current now.
    pub fn acceptor(&self) -> TlsAcceptor {
        let config = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        TlsAcceptor::from(config)
    }

    /// Re-reads the certificate files; on error the old configuration stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        if self.source.self_signed && !(self.source.cert.exists() && self.source.key.exists()) {
            make_self_signed(&self.source, &self.hostname)?;
        }
        let config = load(&self.source)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
        info!(cert = %self.source.cert.display(), "reloaded the TLS certificate");
        Ok(())
    }

    pub fn source(&self) -> &TlsSource {
        &self.source
    }
}

fn make_self_signed(source: &TlsSource, hostname: &str) -> Result<(), TlsError> {
    let generated = rcgen::generate_simple_self_signed(vec![hostname.to_string()])
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    let dir_of = |path: &Path| -> Result<(), TlsError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| TlsError::Read {
                path: dir.to_path_buf(),
                cause: e.to_string(),
            })?;
        }
        Ok(())
    };
    let write = |path: &Path, data: String, mode: u32| {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        dir_of(path)?;
        // The mode applies from the file's creation: the key is never readable by others,
        // not even for a moment.
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(path)
            .and_then(|mut f| f.write_all(data.as_bytes()))
            .map_err(|e| TlsError::Read {
                path: path.to_path_buf(),
                cause: e.to_string(),
            })
    };
    write(&source.key, generated.signing_key.serialize_pem(), 0o600)?;
    write(&source.cert, generated.cert.pem(), 0o644)
}

fn load(source: &TlsSource) -> Result<ServerConfig, TlsError> {
    let read_err = |path: &Path, e: rustls_pki_types::pem::Error| TlsError::Read {
        path: path.to_path_buf(),
        cause: e.to_string(),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&source.cert)
        .map_err(|e| read_err(&source.cert, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| read_err(&source.cert, e))?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            path: source.cert.clone(),
            what: "certificate",
        });
    }
    let key = PrivateKeyDer::from_pem_file(&source.key).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => TlsError::Empty {
            path: source.key.clone(),
            what: "private key",
        },
        e => read_err(&source.key, e),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_certificate_is_made_once_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let tls = Tls::setup(None, None, dir.path(), "mx.example.org").unwrap();
        let first = std::fs::read(&tls.source().cert).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&tls.source().key), 0o600);
        assert_eq!(mode(&tls.source().cert), 0o644);
        let again = Tls::setup(None, None, dir.path(), "mx.example.org").unwrap();
        assert_eq!(std::fs::read(&again.source().cert).unwrap(), first);
        again.reload().unwrap();
    }

    #[test]
    fn missing_configured_files_are_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("nope.pem");
        let key = dir.path().join("nokey.pem");
        let e = Tls::setup(Some(&cert), Some(&key), dir.path(), "h")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("nope.pem"), "{e}");
    }
}
