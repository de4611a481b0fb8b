//! The directory: local domains, users (with argon2 password hashes), aliases and mailing
//! lists (an alias with several targets). Addresses are kept in their canonical form
//! (`Mailbox::canonical`: lower case).

use crate::{Error, Result, Store, mailbox, unix_now};
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use golub_types::sasl::scram::{self, ScramCredentials};
use rusqlite::{OptionalExtension, params};

/// A local user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub address: String,
    pub name: String,
}

/// One alias address and where it points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasEntry {
    pub address: String,
    pub targets: Vec<String>,
}

/// What a local address is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    User(User),
    /// One target is an alias; several make a mailing list.
    Alias(Vec<String>),
}

fn domain_of(address: &str) -> Result<&str> {
    address
        .rsplit_once('@')
        .map(|(_, d)| d)
        .filter(|d| !d.is_empty())
        .ok_or_else(|| Error::Invalid(format!("{address}: not an address")))
}

/// What the directory keeps of a password: an argon2id PHC string (for PLAIN, LOGIN and
/// POP3 USER/PASS) and SCRAM-SHA-256 credentials (RFC 5803 form), each with its own
/// random salt. Neither lets anyone log in without the password.
#[derive(Clone)]
pub struct PasswordHashes {
    pub phc: String,
    pub scram: String,
}

impl std::fmt::Debug for PasswordHashes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHashes { .. }")
    }
}

/// Hashes a password for [`Store::add_user`] and [`Store::set_password`].
pub fn hash_password(password: &str) -> Result<PasswordHashes> {
    let phc = Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|_| Error::Password)?;
    let salt = scram::random_bytes::<16>().ok_or(Error::Password)?;
    let scram = ScramCredentials::derive(password, &salt, scram::DEFAULT_ITERATIONS).to_stored();
    Ok(PasswordHashes { phc, scram })
}

/// Argon2 verifications done by this process, the unknown-user ones included.
static PASSWORD_CHECKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many argon2 password verifications this process has run: a wrong password and an
/// unknown user each cost one, so that neither answers faster than the other.
pub fn password_checks() -> u64 {
    PASSWORD_CHECKS.load(std::sync::atomic::Ordering::Relaxed)
}

/// A hash of a random password, verified against when the user does not exist.
fn dummy_hash() -> Option<&'static PasswordHash> {
    static DUMMY: std::sync::OnceLock<Option<PasswordHash>> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| {
            let secret = format!("{:?}", std::time::SystemTime::now());
            hash_password(&secret)
                .ok()
                .and_then(|h| PasswordHash::new(&h.phc).ok())
        })
        .as_ref()
}

impl Store {
    // ---- domains ----

    /// Adds a local domain.
    pub fn add_domain(&self, name: &str) -> Result<()> {
        let name = name.to_lowercase();
        self.write(move |tx| {
            let n = tx
                .conn()
                .prepare_cached("INSERT OR IGNORE INTO domains (name, created_at) VALUES (?1, ?2)")?
                .execute(params![name, unix_now()])?;
            if n == 0 {
                return Err(Error::AlreadyExists(format!("domain {name}")));
            }
            Ok(())
        })
    }

    pub fn list_domains(&self) -> Result<Vec<String>> {
        self.read(|c| {
            let mut stmt = c.prepare("SELECT name FROM domains ORDER BY name")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<std::result::Result<Vec<String>, _>>()?)
        })
    }

    /// Removes a domain that no user or alias uses any more.
    pub fn remove_domain(&self, name: &str) -> Result<()> {
        let name = name.to_lowercase();
        self.write(move |tx| {
            let users: i64 = tx.conn().prepare_cached("SELECT COUNT(*) FROM users WHERE domain = ?1")?.query_row([&name],
                |r| r.get(0),
            )?;
            let pattern = format!("%@{name}");
            let aliases: i64 = tx.conn().prepare_cached("SELECT COUNT(DISTINCT address) FROM aliases WHERE address LIKE ?1")?.query_row([&pattern],
                |r| r.get(0),
            )?;
            if users > 0 || aliases > 0 {
                return Err(Error::Invalid(format!(
                    "domain {name} still has {users} user(s) and {aliases} alias(es); remove them first"
                )));
            }
            let n = tx
                .conn()
                .prepare_cached("DELETE FROM domains WHERE name = ?1")?.execute([&name])?;
            if n == 0 {
                return Err(Error::NotFound(format!("domain {name}")));
            }
            Ok(())
        })
    }

    /// True when `domain` is one of ours.
    pub fn is_local_domain(&self, domain: &str) -> Result<bool> {
        let domain = domain.to_lowercase();
        self.read(|c| {
            Ok(c.prepare_cached("SELECT 1 FROM domains WHERE name = ?1")?
                .query_row([&domain], |_| Ok(()))
                .optional()?
                .is_some())
        })
    }

    // ---- users ----

    /// Adds a user in a local domain, with its INBOX and the special-use folders.
    /// `password` comes from [`hash_password`].
    pub fn add_user(&self, address: &str, name: &str, password: PasswordHashes) -> Result<User> {
        let address = address.to_lowercase();
        let domain = domain_of(&address)?.to_string();
        let name = name.to_string();
        self.write(move |tx| {
            let known: Option<i64> = tx
                .conn()
                .prepare_cached("SELECT 1 FROM domains WHERE name = ?1")?
                .query_row([&domain], |r| r.get(0))
                .optional()?;
            if known.is_none() {
                return Err(Error::Invalid(format!(
                    "{domain} is not a local domain; add it with `golub domain add {domain}`"
                )));
            }
            if alias_targets(tx.conn(), &address)?.is_some() {
                return Err(Error::AlreadyExists(format!("{address} (as an alias)")));
            }
            let n = tx
                .conn()
                .prepare_cached(
                    "INSERT OR IGNORE INTO users (address, domain, name, password, scram, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    address,
                    domain,
                    name,
                    password.phc,
                    password.scram,
                    unix_now()
                ])?;
            if n == 0 {
                return Err(Error::AlreadyExists(format!("user {address}")));
            }
            let id = tx.conn().last_insert_rowid();
            mailbox::create_default_folders(tx, id)?;
            Ok(User { id, address, name })
        })
    }

    pub fn list_users(&self) -> Result<Vec<User>> {
        self.read(|c| {
            let mut stmt = c.prepare("SELECT id, address, name FROM users ORDER BY address")?;
            let rows = stmt.query_map([], |r| {
                Ok(User {
                    id: r.get(0)?,
                    address: r.get(1)?,
                    name: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
        })
    }

    pub fn user(&self, address: &str) -> Result<Option<User>> {
        let address = address.to_lowercase();
        self.read(|c| {
            Ok(
                c.prepare_cached("SELECT id, address, name FROM users WHERE address = ?1")?
                    .query_row([&address], |r| {
                        Ok(User {
                            id: r.get(0)?,
                            address: r.get(1)?,
                            name: r.get(2)?,
                        })
                    })
                    .optional()?,
            )
        })
    }

    /// Removes a user, its folders and messages (bodies lose one reference each).
    pub fn remove_user(&self, address: &str) -> Result<()> {
        let address = address.to_lowercase();
        let dir = self.dir().to_path_buf();
        self.write(move |tx| {
            let id: Option<i64> = tx
                .conn()
                .prepare_cached("SELECT id FROM users WHERE address = ?1")?
                .query_row([&address], |r| r.get(0))
                .optional()?;
            let id = id.ok_or_else(|| Error::NotFound(format!("user {address}")))?;
            mailbox::remove_all_messages(tx, &dir, id)?;
            tx.conn()
                .prepare_cached("DELETE FROM folders WHERE user_id = ?1")?
                .execute([id])?;
            tx.conn()
                .prepare_cached("DELETE FROM users WHERE id = ?1")?
                .execute([id])?;
            Ok(())
        })
    }

    /// Replaces a user's password (both its argon2 hash and its SCRAM credentials).
    pub fn set_password(&self, address: &str, password: PasswordHashes) -> Result<()> {
        let address = address.to_lowercase();
        self.write(move |tx| {
            let n = tx
                .conn()
                .prepare_cached("UPDATE users SET password = ?2, scram = ?3 WHERE address = ?1")?
                .execute(params![address, password.phc, password.scram])?;
            if n == 0 {
                return Err(Error::NotFound(format!("user {address}")));
            }
            Ok(())
        })
    }

    /// The user and its SCRAM-SHA-256 credentials; `None` for an unknown user or one
    /// whose password was set before SCRAM credentials were kept.
    pub fn scram_credentials(&self, address: &str) -> Result<Option<(User, ScramCredentials)>> {
        let address = address.to_lowercase();
        let row: Option<(User, String)> = self.read(|c| {
            Ok(
                c.prepare_cached("SELECT id, address, name, scram FROM users WHERE address = ?1")?
                    .query_row([&address], |r| {
                        Ok((
                            User {
                                id: r.get(0)?,
                                address: r.get(1)?,
                                name: r.get(2)?,
                            },
                            r.get(3)?,
                        ))
                    })
                    .optional()?,
            )
        })?;
        Ok(row.and_then(|(user, text)| Some((user, ScramCredentials::from_stored(&text)?))))
    }

    /// Checks a password; `Ok(None)` for an unknown user or a wrong password alike.
    /// Costs one argon2 verification: call it off the async runtime.
    pub fn verify_password(&self, address: &str, password: &str) -> Result<Option<User>> {
        let address = address.to_lowercase();
        let row: Option<(User, String)> = self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT id, address, name, password FROM users WHERE address = ?1",
            )?
            .query_row([&address], |r| {
                Ok((
                    User {
                        id: r.get(0)?,
                        address: r.get(1)?,
                        name: r.get(2)?,
                    },
                    r.get(3)?,
                ))
            })
            .optional()?)
        })?;
        let Some((user, phc)) = row else {
            // Spend the same work on an unknown user as on a wrong password, so that the
            // answer's timing does not tell which addresses exist.
            if let Some(dummy) = dummy_hash() {
                PASSWORD_CHECKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let _ = Argon2::default().verify_password(password.as_bytes(), dummy);
            }
            return Ok(None);
        };
        let hash = PasswordHash::new(&phc).map_err(|_| Error::Password)?;
        PASSWORD_CHECKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .ok()
            .map(|_| user))
    }

    // ---- aliases ----

    /// Points `address` at `targets` (adding to the targets it has). A local address that
    /// is a user cannot also be an alias.
    pub fn add_alias(&self, address: &str, targets: &[String]) -> Result<()> {
        let address = address.to_lowercase();
        let domain = domain_of(&address)?.to_string();
        let targets: Vec<String> = targets.iter().map(|t| t.to_lowercase()).collect();
        if targets.is_empty() {
            return Err(Error::Invalid("an alias needs at least one target".into()));
        }
        self.write(move |tx| {
            let known: Option<i64> = tx
                .conn()
                .prepare_cached("SELECT 1 FROM domains WHERE name = ?1")?.query_row([&domain], |r| {
                    r.get(0)
                })
                .optional()?;
            if known.is_none() {
                return Err(Error::Invalid(format!("{domain} is not a local domain")));
            }
            let is_user: Option<i64> = tx
                .conn()
                .prepare_cached("SELECT 1 FROM users WHERE address = ?1")?.query_row([&address], |r| {
                    r.get(0)
                })
                .optional()?;
            if is_user.is_some() {
                return Err(Error::AlreadyExists(format!("{address} (as a user)")));
            }
            let start: i64 = tx.conn().prepare_cached("SELECT COALESCE(MAX(position) + 1, 0) FROM aliases WHERE address = ?1")?.query_row([&address],
                |r| r.get(0),
            )?;
            for (i, t) in targets.iter().enumerate() {
                tx.conn().prepare_cached("INSERT OR IGNORE INTO aliases (address, target, position) VALUES (?1, ?2, ?3)")?.execute(params![address, t, start + i as i64],
                )?;
            }
            Ok(())
        })
    }

    pub fn list_aliases(&self) -> Result<Vec<AliasEntry>> {
        self.read(|c| {
            let mut stmt =
                c.prepare("SELECT address, target FROM aliases ORDER BY address, position")?;
            let mut out: Vec<AliasEntry> = Vec::new();
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))?;
            for row in rows {
                let (address, target) = row?;
                match out.last_mut() {
                    Some(last) if last.address == address => last.targets.push(target),
                    _ => out.push(AliasEntry {
                        address,
                        targets: vec![target],
                    }),
                }
            }
            Ok(out)
        })
    }

    /// Removes an alias entirely, or only the given targets.
    pub fn remove_alias(&self, address: &str, targets: &[String]) -> Result<()> {
        let address = address.to_lowercase();
        let targets: Vec<String> = targets.iter().map(|t| t.to_lowercase()).collect();
        self.write(move |tx| {
            let n = if targets.is_empty() {
                tx.conn()
                    .prepare_cached("DELETE FROM aliases WHERE address = ?1")?
                    .execute([&address])?
            } else {
                let mut n = 0;
                for t in &targets {
                    n += tx
                        .conn()
                        .prepare_cached("DELETE FROM aliases WHERE address = ?1 AND target = ?2")?
                        .execute(params![address, t])?;
                }
                n
            };
            if n == 0 {
                return Err(Error::NotFound(format!("alias {address}")));
            }
            Ok(())
        })
    }

    /// What a canonical local address is, if anything.
    pub fn lookup(&self, address: &str) -> Result<Option<Recipient>> {
        let address = address.to_lowercase();
        self.read(|c| {
            let user = c
                .prepare_cached("SELECT id, address, name FROM users WHERE address = ?1")?
                .query_row([&address], |r| {
                    Ok(User {
                        id: r.get(0)?,
                        address: r.get(1)?,
                        name: r.get(2)?,
                    })
                })
                .optional()?;
            if let Some(u) = user {
                return Ok(Some(Recipient::User(u)));
            }
            Ok(alias_targets(c, &address)?.map(Recipient::Alias))
        })
    }
}

fn alias_targets(c: &rusqlite::Connection, address: &str) -> Result<Option<Vec<String>>> {
    let mut stmt =
        c.prepare_cached("SELECT target FROM aliases WHERE address = ?1 ORDER BY position")?;
    let rows = stmt.query_map([address], |r| r.get(0))?;
    let targets = rows.collect::<std::result::Result<Vec<String>, _>>()?;
    Ok(if targets.is_empty() {
        None
    } else {
        Some(targets)
    })
}
