//! `client.stateMachine(name)`: updates and queries of a user state machine the servers host
//! (`journalkeeper::client::StateMachineClient`) as Promises.
//!
//! Owns only conversions. A command the machine refused rejects (or, in a batch, is an entry)
//! with an `Error` whose `code` is `'REJECTED'` and whose message is the machine's.

use journalkeeper::api;
use journalkeeper::client::Client as CoreClient;
use napi::bindgen_prelude::{Array, Buffer, PromiseRaw};
use napi::{Env, Unknown};
use napi_derive::napi;

use crate::args::{self, R};
use crate::client::{AppendOptions, consistency};
use crate::{js_error, js_error_object, promise};

/// One user state machine of the cluster, by name (`client.stateMachine('bank')`).
#[napi]
pub struct StateMachineClient {
    inner: CoreClient,
    name: String,
}

impl StateMachineClient {
    pub fn new(inner: CoreClient, name: String) -> Self {
        StateMachineClient { inner, name }
    }
}

fn response(options: Unknown) -> R<api::ResponseConfig> {
    Ok(args::options::<AppendOptions>("options", options)?
        .and_then(|o| o.response)
        .map(Into::into)
        .unwrap_or_default())
}

type Batch = Option<Vec<Result<Vec<u8>, api::Error>>>;

/// A batch's results as a JS array: a `Buffer` per applied command, an `Error` (`code`
/// `'REJECTED'`) per refused one. Runs on the JS thread.
fn batch_to_js(env: &Env, results: Batch) -> napi::Result<Option<Array<'_>>> {
    let Some(results) = results else {
        return Ok(None);
    };
    let len = u32::try_from(results.len())
        .map_err(|_| napi::Error::from_reason("a batch result longer than u32::MAX"))?;
    let mut out = env.create_array(len)?;
    for (i, r) in (0..len).zip(results) {
        match r {
            Ok(b) => out.set(i, Buffer::from(b))?,
            Err(e) => out.set(i, js_error_object(env, &e)?)?,
        }
    }
    Ok(Some(out))
}

#[napi]
impl StateMachineClient {
    /// The machine's name.
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// Applies `command` once committed and resolves to what the machine's `apply` returned,
    /// for `REPLICATION` (the default) and `ALL`; null for `RECEIVE` and `PERSISTENCE` (the
    /// result is not known yet) and for `ONE_WAY`, which is sent as `RECEIVE` so a refusal is
    /// never silent. A refused command rejects with `code` `'REJECTED'` and the machine's
    /// message (it changed nothing). A retried call applies once (session ids).
    #[napi(
        ts_args_type = "command: Buffer, options?: AppendOptions | undefined | null",
        ts_return_type = "Promise<Buffer | null>"
    )]
    pub fn update<'env>(
        &self,
        env: &'env Env,
        command: Unknown<'env>,
        options: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, Option<Buffer>>> {
        let (c, name) = (self.inner.clone(), self.name.clone());
        let args = args::checked(|| Ok((args::buffer("command", command)?, response(options)?)));
        promise(env, async move {
            let (command, response) = args?;
            let r = c
                .state_machine(&name)
                .update_with(command, response)
                .await?;
            Ok(r.map(Buffer::from))
        })
    }

    /// Applies `commands` in order as one log entry (durable together, each applied on its
    /// own): one entry per command — its result `Buffer`, or an `Error` with `code`
    /// `'REJECTED'` when the machine refused it — for `REPLICATION` / `ALL`; null below.
    /// Rejects when the whole call failed (nothing or everything applied; a retry applies
    /// once).
    #[napi(
        ts_args_type = "commands: Array<Buffer>, options?: AppendOptions | undefined | null",
        ts_return_type = "Promise<Array<Buffer | JournalKeeperError> | null>"
    )]
    pub fn update_batch<'env>(
        &self,
        env: &'env Env,
        commands: Unknown<'env>,
        options: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, Option<Array<'env>>>> {
        let (c, name) = (self.inner.clone(), self.name.clone());
        let args = args::checked(|| Ok((args::buffers("commands", commands)?, response(options)?)));
        let fut = async move {
            let (commands, response) = args?;
            c.state_machine(&name)
                .update_batch(commands, response)
                .await
        };
        env.spawn_future_with_callback(async move { Ok(fut.await) }, |env, r: R<Batch>| match r {
            Ok(results) => batch_to_js(env, results),
            Err(e) => Err(js_error(env, &e)),
        })
    }

    /// What the machine's `query` answers for `query`, read at `options.consistency`
    /// (default `STRICT`). A query the machine refuses rejects with its message.
    #[napi(
        ts_args_type = "query: Buffer, options?: ReadOptions | undefined | null",
        ts_return_type = "Promise<Buffer>"
    )]
    pub fn query<'env>(
        &self,
        env: &'env Env,
        query: Unknown<'env>,
        options: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, Buffer>> {
        let (c, name) = (self.inner.clone(), self.name.clone());
        let args = args::checked(|| Ok((args::buffer("query", query)?, consistency(options)?)));
        promise(env, async move {
            let (query, level) = args?;
            Ok(Buffer::from(
                c.state_machine(&name).query(query, level).await?,
            ))
        })
    }
}
