//! The `data` file of a snapshot: the built-in state, then the user state machines' section.
//!
//! Layout (format 5): the magic `JKSNAP05`, a `u64` LE length and the postcard blob of the
//! built-in state (journal store, KV, metadata, recipes, transactions: `snapshot_data::SnapshotData`),
//! then the user section (`user_machines`). A file without the magic is an older format: the
//! whole file is the built-in blob and there is no user section. The file is written by the
//! apply thread to a staging file as the machines stream it, and read back as a stream.

use std::io::{self, Read, Write};

use super::user_machines::UserMachines;

const MAGIC: [u8; 8] = *b"JKSNAP05";
/// Largest built-in blob accepted (the KV and tables are bounded well below this).
const MAX_BUILTIN: u64 = 1 << 36;

/// Writes a format-5 snapshot.
pub(crate) fn write(
    out: &mut dyn Write,
    builtin: &[u8],
    user: &UserMachines,
) -> Result<(), String> {
    let io = |e: io::Error| format!("cannot write the snapshot: {e}");
    out.write_all(&MAGIC).map_err(io)?;
    out.write_all(&(builtin.len() as u64).to_le_bytes())
        .map_err(io)?;
    out.write_all(builtin).map_err(io)?;
    user.write_section(out)
}

/// Reads the built-in blob; `true` when a user section follows in `input`.
pub(crate) fn read_builtin(input: &mut dyn Read) -> Result<(Vec<u8>, bool), String> {
    let io = |e: io::Error| format!("cannot read the snapshot: {e}");
    let mut head = Vec::with_capacity(MAGIC.len());
    input
        .take(MAGIC.len() as u64)
        .read_to_end(&mut head)
        .map_err(io)?;
    if head != MAGIC {
        // Formats 1-4: the whole file is the built-in blob.
        input.read_to_end(&mut head).map_err(io)?;
        return Ok((head, false));
    }
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
    Ok((builtin, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::session::SessionLimits;

    #[test]
    fn format_5_and_older_files_both_read() {
        let user = UserMachines::new(Vec::new(), SessionLimits::default());
        let mut out = Vec::new();
        write(&mut out, b"builtin", &user).unwrap();
        let mut input = &out[..];
        assert_eq!(
            read_builtin(&mut input).unwrap(),
            (b"builtin".to_vec(), true)
        );
        let mut fresh = UserMachines::new(Vec::new(), SessionLimits::default());
        fresh.read_section(&mut input, false).unwrap();
        assert!(input.is_empty());

        for old in [&b"abc"[..], &b"0123456789abcdef"[..], &[][..]] {
            assert_eq!(read_builtin(&mut &old[..]).unwrap(), (old.to_vec(), false));
        }
        assert!(read_builtin(&mut &out[..12]).is_err());
    }
}
