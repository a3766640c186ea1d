//! The `data` file of a snapshot: the built-in state, the KV, then the user state machines'
//! section.
//!
//! Layout (format 6): the magic `JKSNAP06`, a `u64` LE length and the postcard blob of the
//! built-in state without the KV (journal store, metadata, recipes, transactions:
//! `snapshot_data::SnapshotData`, its `kv` empty), then the KV as a stream of keys
//! (`state::kv::KvSnapshot`), then the user section (`user_machines`). Format 5 (`JKSNAP05`)
//! holds the KV inside the built-in blob and has no KV stream; a file without a magic is an
//! older format: the whole file is the built-in blob and there is no user section. The file is
//! written by the apply thread to a staging file as the machines stream it, and read back as a
//! stream: no part of the KV or of a user machine is ever held twice.

use std::io::{self, Read, Write};

use super::user_machines::UserMachines;
use crate::state::kv::KvStore;

const MAGIC: [u8; 8] = *b"JKSNAP06";
const MAGIC_5: [u8; 8] = *b"JKSNAP05";
/// Largest built-in blob accepted (the KV and tables are bounded well below this).
const MAX_BUILTIN: u64 = 1 << 36;

/// What follows the built-in blob in a data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sections {
    /// The KV as a stream (format 6); else it is inside the built-in blob.
    pub kv_stream: bool,
    /// The user machines' section (formats 5 and 6).
    pub user: bool,
}

/// Writes a format-6 snapshot.
pub(crate) fn write(
    out: &mut dyn Write,
    builtin: &[u8],
    kv: &KvStore,
    user: &UserMachines,
) -> Result<(), String> {
    let io = |e: io::Error| format!("cannot write the snapshot: {e}");
    out.write_all(&MAGIC).map_err(io)?;
    out.write_all(&(builtin.len() as u64).to_le_bytes())
        .map_err(io)?;
    out.write_all(builtin).map_err(io)?;
    kv.write_snapshot(out).map_err(|e| e.to_string())?;
    user.write_section(out)
}

/// Reads the built-in blob, leaving `input` at the sections that follow it.
pub(crate) fn read_builtin(input: &mut dyn Read) -> Result<(Vec<u8>, Sections), String> {
    let io = |e: io::Error| format!("cannot read the snapshot: {e}");
    let mut head = Vec::with_capacity(MAGIC.len());
    input
        .take(MAGIC.len() as u64)
        .read_to_end(&mut head)
        .map_err(io)?;
    let sections = if head == MAGIC {
        Sections {
            kv_stream: true,
            user: true,
        }
    } else if head == MAGIC_5 {
        Sections {
            kv_stream: false,
            user: true,
        }
    } else {
        // Formats 1-4: the whole file is the built-in blob.
        input.read_to_end(&mut head).map_err(io)?;
        let none = Sections {
            kv_stream: false,
            user: false,
        };
        return Ok((head, none));
    };
    let mut len = [0u8; 8];
    input.read_exact(&mut len).map_err(io)?;
    let len = u64::from_le_bytes(len);
    if len > MAX_BUILTIN {
        return Err(format!(
            "snapshot state of {len} bytes exceeds {MAX_BUILTIN}"
        ));
    }
    let mut builtin = Vec::new();
    input.take(len).read_to_end(&mut builtin).map_err(io)?;
    if builtin.len() as u64 != len {
        return Err("the snapshot ends inside the built-in state".into());
    }
    Ok((builtin, sections))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::kv::{KvLimits, KvSnapshot};
    use crate::state::session::SessionLimits;

    #[test]
    fn format_6_and_older_files_all_read() {
        let user = UserMachines::new(Vec::new(), SessionLimits::default());
        let kv = KvStore::new(KvLimits::default());
        let mut out = Vec::new();
        write(&mut out, b"builtin", &kv, &user).unwrap();
        let mut input = &out[..];
        let all = Sections {
            kv_stream: true,
            user: true,
        };
        assert_eq!(
            read_builtin(&mut input).unwrap(),
            (b"builtin".to_vec(), all)
        );
        KvSnapshot::read(&mut input).unwrap();
        let mut fresh = UserMachines::new(Vec::new(), SessionLimits::default());
        fresh.read_section(&mut input, false).unwrap();
        assert!(input.is_empty());

        let mut v5 = MAGIC_5.to_vec();
        v5.extend_from_slice(&3u64.to_le_bytes());
        v5.extend_from_slice(b"abcuser");
        let mut input = &v5[..];
        let user_only = Sections {
            kv_stream: false,
            user: true,
        };
        assert_eq!(
            read_builtin(&mut input).unwrap(),
            (b"abc".to_vec(), user_only)
        );
        assert_eq!(input, b"user");

        let none = Sections {
            kv_stream: false,
            user: false,
        };
        for old in [&b"abc"[..], &b"0123456789abcdef"[..], &[][..]] {
            assert_eq!(read_builtin(&mut &old[..]).unwrap(), (old.to_vec(), none));
        }
        assert!(read_builtin(&mut &out[..12]).is_err());
    }
}
