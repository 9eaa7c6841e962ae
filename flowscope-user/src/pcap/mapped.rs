//! [`MappedFile`]: a capture file mapped read-only into memory, so the
//! offline reader hands out packets without copying a byte (no `read`
//! copy into a buffer).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// A whole regular file, mapped private and read-only.
///
/// The file must not shrink while mapped: reading a page past its new end
/// raises SIGBUS, as with every mapped reader. Bytes appended after the
/// mapping was made are not seen.
#[derive(Debug)]
pub(super) struct MappedFile {
    ptr: *const u8,
    len: usize,
}

// SAFETY: the mapping is read-only and owned by this value until Drop; the
// bytes are never written through it, so sharing and sending it is sound.
unsafe impl Send for MappedFile {}
// SAFETY: as above.
unsafe impl Sync for MappedFile {}

impl MappedFile {
    /// Maps `file` if it is a non-empty regular file; `Ok(None)` for
    /// anything else (a pipe, a terminal, an empty file), which is to be
    /// read as a stream.
    ///
    /// # Errors
    ///
    /// `fstat` or `mmap` failed.
    pub fn map(file: &File) -> io::Result<Option<Self>> {
        let meta = file.metadata()?;
        let Ok(len) = usize::try_from(meta.len()) else {
            return Ok(None);
        };
        if !meta.is_file() || len == 0 {
            return Ok(None);
        }
        // SAFETY: a new private read-only mapping of `len` bytes of an open
        // descriptor; the kernel picks the address; nothing else is touched.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                // Map every page now, in one pass, rather than one fault
                // per few pages as the reader goes.
                libc::MAP_PRIVATE | libc::MAP_POPULATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: advice on the mapping just made; failure is harmless.
        unsafe { libc::madvise(ptr, len, libc::MADV_SEQUENTIAL) };
        Ok(Some(Self {
            ptr: ptr.cast_const().cast(),
            len,
        }))
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` is a live read-only mapping of `len` bytes owned by
        // `self`, unmapped only in Drop.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping `map` made; no slice of it outlives
        // `self` (`bytes` borrows `self`).
        unsafe { libc::munmap(self.ptr.cast_mut().cast(), self.len) };
    }
}
