//! Updates and queries of a user state machine the servers host by name
//! (`Client::state_machine`): `jk_sm_update`, `jk_sm_update_batch` (per-command results in a
//! `jk_sm_results` view) and `jk_sm_query`.
//!
//! Thin: each call is one `StateMachineClient` call; the core checks the name and the bounds.

use std::ffi::{CString, c_char};

use crate::args::{bytes_arg, consistency_arg, out_arg, response_arg, slice_arg, str_arg};
use crate::buffer::{buffer_view, jk_buffer, jk_bytes, to_buffer, to_opt_buffer};
use crate::castable::{free_owned_view, to_owned_view};
use crate::client::{client_arg, jk_client};
use crate::error::{jk_error, jk_status, lossy_cstring};
use crate::runtime::block_on;

/// Applies `command` (copied) to the state machine `name` once committed, acknowledged at
/// `response` (a `jk_response_config`; `JK_RESPONSE_CONFIG_ONE_WAY` is sent as `RECEIVE` so a
/// refusal is never silent). On success `*result_out` is a new `jk_buffer` for
/// `jk_buffer_free` with what the machine's `apply` returned for `REPLICATION` and `ALL`, or
/// NULL below (the result is not known yet). A refused command gives `JK_STATUS_REJECTED` with
/// the machine's message (it changed nothing). A retried call applies once. Blocking.
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_sm_update(
    client: *const jk_client,
    name: *const c_char,
    command: jk_bytes,
    response: u32,
    result_out: *mut *mut jk_buffer,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(result_out, "result_out")?;
        let client = client_arg(client)?;
        let name = str_arg(name, "name")?;
        let command = bytes_arg(&command, "command.data")?.to_vec();
        let response = response_arg(response)?;
        let result = block_on(client.state_machine(name).update_with(command, response))??;
        out.set(to_opt_buffer(result));
        Ok(())
    }
}

/// The outcome of one command of a `jk_sm_update_batch` (an element of `jk_sm_results`).
#[repr(C)]
#[derive(Debug)]
pub struct jk_sm_result {
    /// `JK_STATUS_OK`, or why this command failed (`JK_STATUS_REJECTED`: the machine refused it
    /// and it changed nothing).
    pub status: jk_status,
    /// What `apply` returned (empty when `status` is not OK).
    pub value: jk_buffer,
    /// The error message; NULL when `status` is OK.
    pub message: *const c_char,
}

/// The per-command outcomes of `jk_sm_update_batch`, in command order. Owned by the caller;
/// free with `jk_sm_results_free`. Immutable: may be read from any thread.
#[repr(C)]
#[derive(Debug)]
pub struct jk_sm_results {
    pub results: *const jk_sm_result,
    pub len: usize,
}

type ResultsStorage = (Vec<(Vec<u8>, Option<CString>)>, Vec<jk_sm_result>);

/// Applies the `n` commands of `commands` (copied) in order as one log entry (durable
/// together, each applied on its own), acknowledged at `response` as `jk_sm_update`. On
/// success `*results_out` is a new `jk_sm_results` (one per command, each with its own status)
/// for `jk_sm_results_free` for `REPLICATION` and `ALL`, or NULL below. A failed call (its own
/// status) applied nothing or everything (a retry applies once). Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_sm_update_batch(
    client: *const jk_client,
    name: *const c_char,
    commands: *const jk_bytes,
    n: usize,
    response: u32,
    results_out: *mut *mut jk_sm_results,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(results_out, "results_out")?;
        let client = client_arg(client)?;
        let name = str_arg(name, "name")?;
        let commands = slice_arg(commands, n, "commands")?
            .iter()
            .enumerate()
            .map(|(i, c)| bytes_arg(c, &format!("commands[{i}].data")).map(<[u8]>::to_vec))
            .collect::<Result<Vec<_>, _>>()?;
        let response = response_arg(response)?;
        let results = block_on(client.state_machine(name).update_batch(commands, response))??;
        let Some(results) = results else {
            out.set(std::ptr::null_mut());
            return Ok(());
        };
        let mut statuses = Vec::with_capacity(results.len());
        let storage: Vec<(Vec<u8>, Option<CString>)> = results
            .into_iter()
            .map(|r| match r {
                Ok(v) => {
                    statuses.push(jk_status::Ok);
                    (v, None)
                }
                Err(e) => {
                    statuses.push(jk_status::from(e.kind));
                    (Vec::new(), Some(lossy_cstring(e.message)))
                }
            })
            .collect();
        let views: Vec<jk_sm_result> = storage
            .iter()
            .zip(statuses)
            .map(|((v, m), status)| jk_sm_result {
                status,
                value: buffer_view(v),
                message: m.as_ref().map_or(std::ptr::null(), |m| m.as_ptr()),
            })
            .collect();
        out.set(to_owned_view::<jk_sm_results, ResultsStorage>((storage, views), |(_, v)| {
            jk_sm_results { results: v.as_ptr(), len: v.len() }
        }));
        Ok(())
    }
}

/// Frees results returned by `jk_sm_update_batch`. NULL is allowed.
#[unsafe(no_mangle)]
pub extern "C" fn jk_sm_results_free(results: *mut jk_sm_results) {
    ffi_boundary! { default = ();
        free_owned_view::<jk_sm_results, ResultsStorage>(results);
    }
}

/// What the state machine `name`'s `query` answers for `query` (copied), read at
/// `consistency` (a `jk_query_consistency`). On success `*answer_out` is a new `jk_buffer` for
/// `jk_buffer_free`. A query the machine refuses gives `JK_STATUS_REJECTED` with its message.
/// Blocking. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn jk_sm_query(
    client: *const jk_client,
    name: *const c_char,
    query: jk_bytes,
    consistency: u32,
    answer_out: *mut *mut jk_buffer,
    err_out: *mut *mut jk_error,
) -> jk_status {
    ffi_boundary! { err_out = err_out;
        let out = out_arg(answer_out, "answer_out")?;
        let client = client_arg(client)?;
        let name = str_arg(name, "name")?;
        let query = bytes_arg(&query, "query.data")?.to_vec();
        let consistency = consistency_arg(consistency)?;
        let answer = block_on(client.state_machine(name).query(query, consistency))??;
        out.set(to_buffer(answer));
        Ok(())
    }
}
