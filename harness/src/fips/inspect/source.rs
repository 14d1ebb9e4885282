//! The bytes of a binary on disk without reading it: a read-only private memory map, so only
//! the pages the inspection touches are ever loaded and nothing is allocated by file size.
//! Refuses anything but a regular file before opening it for reading (a FIFO would block).

use std::fs::File;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Why a path cannot be mapped.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("`{path}` is {kind}, not a regular file")]
    NotRegular { path: String, kind: &'static str },
    #[error("could not read `{path}`")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A read-only mapping of a whole file (empty files map to an empty slice).
pub struct Mapped {
    ptr: *mut libc::c_void,
    len: usize,
    _file: File,
}

// The mapping is read-only and private: sharing the bytes between threads is sound.
unsafe impl Send for Mapped {}
unsafe impl Sync for Mapped {}

fn kind(ft: std::fs::FileType) -> &'static str {
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

impl Mapped {
    /// Map `path`; non-regular files are refused before and after opening (it may be swapped).
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        let io = |source| SourceError::Io {
            path: path.display().to_string(),
            source,
        };
        let not_regular = |ft| SourceError::NotRegular {
            path: path.display().to_string(),
            kind: kind(ft),
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        if !meta.file_type().is_file() {
            return Err(not_regular(meta.file_type()));
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if !meta.file_type().is_file() {
            return Err(not_regular(meta.file_type()));
        }
        let len =
            usize::try_from(meta.len()).map_err(|_| io(std::io::ErrorKind::FileTooLarge.into()))?;
        if len == 0 {
            return Ok(Self {
                ptr: std::ptr::null_mut(),
                len: 0,
                _file: file,
            });
        }
        use std::os::fd::AsRawFd;
        // SAFETY: a fresh read-only private mapping of an open file descriptor; checked below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io(std::io::Error::last_os_error()));
        }
        Ok(Self {
            ptr,
            len,
            _file: file,
        })
    }

    pub fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `ptr` maps `len` readable bytes for as long as `self` lives.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }

    /// Drop the resident pages of `part` (a sub-slice of `bytes()`) once a scan is done with
    /// them, so scanning a large segment does not grow the resident set; they read back from
    /// the file if touched again.
    pub fn release(&self, part: &[u8]) {
        let base = self.ptr as usize;
        let start = part.as_ptr() as usize;
        if self.len == 0 || start < base || start + part.len() > base + self.len {
            return;
        }
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
            .unwrap_or(4096)
            .max(1);
        let from = start.div_ceil(page) * page;
        let to = (start + part.len()) / page * page;
        if to > from {
            // SAFETY: a page-aligned range inside our private read-only mapping.
            unsafe { libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_DONTNEED) };
        }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: unmapping exactly what `open` mapped.
            unsafe { libc::munmap(self.ptr, self.len) };
        }
    }
}
