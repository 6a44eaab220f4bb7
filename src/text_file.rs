//! Reading the user's text files (config, intake, prompt templates, the state): only regular
//! files — a FIFO or a device would block a read forever, a folder is a mistake — and a UTF-8
//! byte-order mark at the start is dropped, as editors on Windows write one.

use std::io::{Error, ErrorKind};
use std::path::Path;

/// The text of the regular file at `path`. Errors: `NotFound`; `InvalidInput` for anything
/// but a regular file (after symlinks); `InvalidData` for bytes that are not UTF-8.
pub(crate) fn read(path: &Path) -> std::io::Result<String> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        let kind = if meta.is_dir() { "a folder" } else { "not a regular file (a FIFO, socket or device)" };
        return Err(Error::new(ErrorKind::InvalidInput, format!("it is {kind}")));
    }
    let bytes = std::fs::read(path)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Error::new(
            ErrorKind::InvalidData,
            format!("it is not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()),
        )
    })?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_owned(),
        None => text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_utf8_files_only_and_the_bom_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.yaml");
        std::fs::write(&f, "\u{feff}agents: {}\n").unwrap();
        assert_eq!(read(&f).unwrap(), "agents: {}\n");
        std::fs::write(&f, [0xff, 0xfe, 0x00]).unwrap();
        assert_eq!(read(&f).unwrap_err().kind(), ErrorKind::InvalidData);
        assert_eq!(read(dir.path()).unwrap_err().kind(), ErrorKind::InvalidInput);
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert_eq!(read(&fifo).unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(read(&dir.path().join("none")).unwrap_err().kind(), ErrorKind::NotFound);
    }
}
