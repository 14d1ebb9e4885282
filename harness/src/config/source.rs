//! Reading configuration inputs without trusting them: only regular files (a FIFO or a device
//! would hang or never end), at most a size limit, UTF-8 text without NUL bytes (a leading BOM is
//! accepted and dropped); and file references (`imagesFile`, `apply.file`, `scenarios.directory`)
//! resolved against the file that names them and kept inside the project unless explicitly
//! allowed, so a reference cannot make the harness read, and echo in an error, a file it was not
//! asked to parse (a token file, `/proc/self/environ`).

use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest configuration file read (matrix, scenario, images file, manifests file).
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// Why an input file was refused.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}")]
    Io(#[source] std::io::Error),
    #[error("it is a {0}, not a regular file")]
    NotRegular(&'static str),
    #[error("it is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("it holds a NUL byte at line {line}, column {col}; configuration must be text")]
    Nul { line: usize, col: usize },
    #[error("it is not UTF-8 text (invalid byte at line {line}, column {col})")]
    NotUtf8 { line: usize, col: usize },
}

impl SourceError {
    /// Line and column of the problem inside the file, when it has one.
    pub fn position(&self) -> (usize, usize) {
        match self {
            SourceError::Nul { line, col } | SourceError::NotUtf8 { line, col } => (*line, *col),
            _ => (1, 1),
        }
    }
}

fn kind_of(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "FIFO";
        }
        if t.is_char_device() {
            return "character device";
        }
        if t.is_block_device() {
            return "block device";
        }
        if t.is_socket() {
            return "socket";
        }
    }
    if t.is_dir() {
        "directory"
    } else {
        "special file"
    }
}

fn open(path: &Path) -> Result<std::fs::File, SourceError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // Non-blocking open: opening a FIFO without a writer would otherwise wait forever.
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(SourceError::Io)?;
    // The type is checked on the opened file, so it cannot be swapped after the check.
    let meta = file.metadata().map_err(SourceError::Io)?;
    if !meta.file_type().is_file() {
        return Err(SourceError::NotRegular(kind_of(&meta.file_type())));
    }
    Ok(file)
}

/// Line and column (1-based, columns in bytes) of byte `offset`.
fn line_col(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let col = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(offset + 1, |i| offset - i);
    (line, col)
}

/// Check bytes read from a configuration input and turn them into text.
pub fn decode(bytes: Vec<u8>) -> Result<String, SourceError> {
    if let Some(i) = bytes.iter().position(|b| *b == 0) {
        let (line, col) = line_col(&bytes, i);
        return Err(SourceError::Nul { line, col });
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let (line, col) = line_col(e.as_bytes(), e.utf8_error().valid_up_to());
        SourceError::NotUtf8 { line, col }
    })?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

/// Read a regular file of at most `limit` bytes as configuration text.
pub fn read_text(path: &Path, limit: u64) -> Result<String, SourceError> {
    let file = open(path)?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(SourceError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(SourceError::TooLarge { limit });
    }
    decode(bytes)
}

/// Where file references may point.
#[derive(Clone, Debug, Default)]
pub struct Boundary {
    /// Canonical directories references must stay inside.
    roots: Vec<PathBuf>,
    /// `--allow-outside-project`: any readable path is fine.
    anywhere: bool,
}

impl Boundary {
    /// References stay inside `roots` (the matrix directory, an explicit scenario directory).
    pub fn new(roots: &[PathBuf], anywhere: bool) -> Self {
        let roots = roots
            .iter()
            .filter_map(|r| {
                let r = if r.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    r
                };
                std::fs::canonicalize(r).ok()
            })
            .collect();
        Self { roots, anywhere }
    }

    /// No limit (tests and callers that check paths themselves).
    pub fn anywhere() -> Self {
        Self {
            roots: Vec::new(),
            anywhere: true,
        }
    }

    /// Resolve `reference` against the directory of `naming_file`; the error reads after
    /// "failed to" style messages and never includes file content.
    pub fn resolve(&self, naming_file: &Path, reference: &str) -> Result<PathBuf, String> {
        let joined = naming_file
            .parent()
            .unwrap_or(Path::new("."))
            .join(reference);
        if self.anywhere {
            return Ok(joined);
        }
        let canonical = std::fs::canonicalize(&joined)
            .map_err(|e| format!("cannot read `{reference}`: {e}"))?;
        if self.roots.iter().any(|r| canonical.starts_with(r)) {
            return Ok(joined);
        }
        let inside = self
            .roots
            .first()
            .map(|r| r.display().to_string())
            .unwrap_or_else(|| ".".into());
        Err(format!(
            "`{reference}` points outside the project directory `{inside}`; file references must stay inside it (pass `--allow-outside-project` to allow this)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bom_is_dropped_nul_and_bad_utf8_are_located() {
        assert_eq!(decode(b"\xef\xbb\xbfa: 1\n".to_vec()).unwrap(), "a: 1\n");
        let e = decode(b"a: 1\nb: x\0y\n".to_vec()).unwrap_err();
        assert_eq!(e.position(), (2, 5));
        assert!(e.to_string().contains("NUL byte"));
        let e = decode(b"a: \xff\n".to_vec()).unwrap_err();
        assert_eq!(e.position(), (1, 4));
    }

    #[cfg(unix)]
    #[test]
    fn devices_fifos_and_large_files_are_refused_without_blocking() {
        let e = read_text(Path::new("/dev/zero"), MAX_CONFIG_BYTES).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_text(&fifo, MAX_CONFIG_BYTES).unwrap_err();
        assert!(e.to_string().contains("FIFO"), "{e}");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; 11]).unwrap();
        assert!(matches!(
            read_text(&big, 10),
            Err(SourceError::TooLarge { limit: 10 })
        ));
    }

    #[test]
    fn references_stay_inside_the_project() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("p");
        std::fs::create_dir_all(project.join("d")).unwrap();
        std::fs::write(project.join("d/i.yaml"), "x").unwrap();
        std::fs::write(dir.path().join("token"), "s3cret").unwrap();
        let b = Boundary::new(std::slice::from_ref(&project), false);
        let matrix = project.join("matrix.yaml");
        assert!(b.resolve(&matrix, "d/i.yaml").is_ok());
        let e = b.resolve(&matrix, "../token").unwrap_err();
        assert!(
            e.contains("outside the project") && !e.contains("s3cret"),
            "{e}"
        );
        assert!(b.resolve(&matrix, "/proc/self/environ").is_err());
        assert!(
            Boundary::new(&[project], true)
                .resolve(&matrix, "../token")
                .is_ok()
        );
    }
}
