//! Files only this process's user may read: the data folder (`0700`), the demo issuer's key and
//! webhook secret, and the SQLite database with its journal files (`0600`). Modes are set when
//! a file is created and corrected at start-up when an existing one is looser, so a folder made
//! by an older version (or by hand, under a permissive umask) is tightened too.

use std::{
    fs,
    io::{self, Write},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::Path,
};

pub const DIR_MODE: u32 = 0o700;
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and its parents) if needed and makes `dir` itself `0700`.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)?;
    }
    set_mode(dir, DIR_MODE)
}

/// Makes an existing file `0600`; a missing one is fine.
pub fn private_file(path: &Path) -> io::Result<()> {
    match set_mode(path, FILE_MODE) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// Writes `contents` to a new or existing `path`, `0600` from the first byte on.
pub fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)?;
    set_mode(path, FILE_MODE)?;
    f.write_all(contents)?;
    f.sync_all()
}

/// Creates an empty `path` with mode `0600` unless it exists (SQLite then opens it as a new
/// database, and gives its `-wal` and `-shm` files the same mode).
pub fn create_private(path: &Path) -> io::Result<()> {
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
    {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => private_file(path),
        r => r.map(drop),
    }
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    let meta = fs::metadata(path)?;
    if meta.permissions().mode() & 0o7777 != mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn loose_folders_and_files_are_tightened_and_new_ones_start_private() {
        let dir = std::env::temp_dir().join(format!("plangate-modes-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let loose = dir.join("loose");
        fs::write(&loose, "x").unwrap();
        fs::set_permissions(&loose, fs::Permissions::from_mode(0o644)).unwrap();

        private_dir(&dir).unwrap();
        private_file(&loose).unwrap();
        private_file(&dir.join("missing")).unwrap();
        write_private(&dir.join("secret"), b"s").unwrap();
        create_private(&dir.join("db")).unwrap();
        create_private(&loose).unwrap();
        private_dir(&dir.join("a/b")).unwrap();

        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&loose), 0o600);
        assert_eq!(mode(&dir.join("secret")), 0o600);
        assert_eq!(mode(&dir.join("db")), 0o600);
        assert_eq!(mode(&dir.join("a/b")), 0o700);
        assert_eq!(
            fs::read(&loose).unwrap(),
            b"x",
            "an existing file keeps its contents"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
