//! Errors of the store. Each says whether retrying later may help.

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The disk (or the database) is full: nothing was written.
    #[error("storage is full")]
    StorageFull,
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    #[error("i/o error: {0}")]
    Io(std::io::Error),
    #[error("the store's writer has stopped")]
    WriterGone,
    #[error("the store's reader threads have stopped")]
    ReadersGone,
    #[error("password hashing failed")]
    Password,
    /// A bug inside the store (a write job panicked, say): nothing of the job was kept.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// True when the same operation may succeed later (a 4xx, not a 5xx, for SMTP).
    /// Unknown errors count as transient.
    pub fn is_transient(&self) -> bool {
        !matches!(
            self,
            Error::NotFound(_) | Error::AlreadyExists(_) | Error::Invalid(_)
        )
    }

    pub(crate) fn from_io(e: std::io::Error) -> Error {
        // ENOSPC and EDQUOT: the disk or the quota is full.
        if matches!(e.raw_os_error(), Some(28) | Some(122)) {
            Error::StorageFull
        } else {
            Error::Io(e)
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => Error::StorageFull,
            _ => Error::Sqlite(e),
        }
    }
}
