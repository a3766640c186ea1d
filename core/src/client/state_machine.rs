//! [`StateMachineClient`]: updates and queries of a user state machine the servers host by
//! name (the seed's JK-RAFT client: `update` and `query`).
//!
//! Owns: argument checks (name, bounds: `InvalidArgument` before any traffic) and the mapping
//! of replies to results. Every update carries a session id, so a retried call applies once.
//! A command the machine refuses comes back as `Err` with kind `Rejected` and the machine's
//! message; it changed nothing.

use super::cluster::Target;
use super::protocol::{ReplyBody, RequestBody};
use super::{Client, unexpected};
use crate::api::{Error, QueryConsistency, ResponseConfig};
use crate::server::user_machines::{self, MAX_QUERY_BYTES};

/// One user state machine of the cluster ([`Client::state_machine`]).
#[derive(Debug, Clone, Copy)]
pub struct StateMachineClient<'a> {
    client: &'a Client,
    name: &'a str,
}

impl<'a> StateMachineClient<'a> {
    pub(crate) fn new(client: &'a Client, name: &'a str) -> Self {
        StateMachineClient { client, name }
    }

    /// The machine's name.
    pub fn name(&self) -> &str {
        self.name
    }

    /// Applies `command` once it is committed (`Replication`) and returns what the machine's
    /// `apply` returned; `Rejected` when the machine refused it.
    pub async fn update(&self, command: Vec<u8>) -> Result<Vec<u8>, Error> {
        self.update_with(command, ResponseConfig::Replication)
            .await
            .map(Option::unwrap_or_default)
    }

    /// [`update`](Self::update) acknowledged at `response`: `Some(result)` for `Replication`
    /// and `All`; `None` for `Receive` and `Persistence` (the result is not known yet) and for
    /// `OneWay`, which this client sends as `Receive` so a refused update is never silent.
    pub async fn update_with(
        &self,
        command: Vec<u8>,
        response: ResponseConfig,
    ) -> Result<Option<Vec<u8>>, Error> {
        let mut results = self.update_batch(vec![command], response).await?;
        match results.as_mut().map(|r| r.pop()) {
            None => Ok(None),
            Some(Some(r)) => r.map(Some),
            Some(None) => Err(Error::new(
                crate::api::ErrorKind::Internal,
                "the server answered an update without a result",
            )),
        }
    }

    /// Applies `commands` in order as one log entry (atomically durable, each applied on its
    /// own): one result per command for `Replication` / `All`, `None` below. The outer `Err`
    /// is a failure of the whole call (nothing or everything applied; a retry applies once).
    pub async fn update_batch(
        &self,
        commands: Vec<Vec<u8>>,
        response: ResponseConfig,
    ) -> Result<Option<Vec<Result<Vec<u8>, Error>>>, Error> {
        user_machines::check_any_name(self.name)?;
        user_machines::check_update(&commands)?;
        let response = match response {
            ResponseConfig::OneWay => ResponseConfig::Receive,
            r => r,
        };
        let cluster = &self.client.inner;
        let session = cluster.begin_write();
        let body = RequestBody::SmUpdate {
            machine: self.name.to_string(),
            commands,
            response,
            session: session.id,
        };
        match cluster.call(Target::Leader, body).await? {
            ReplyBody::SmUpdated(Some(results)) if response.returns_result() => {
                Ok(Some(results.into_iter().map(Into::into).collect()))
            }
            ReplyBody::SmUpdated(None) if !response.returns_result() => Ok(None),
            other => Err(unexpected("SmUpdate", &other)),
        }
    }

    /// What the machine's `query` answers for `query`, read at `consistency`.
    pub async fn query(
        &self,
        query: Vec<u8>,
        consistency: QueryConsistency,
    ) -> Result<Vec<u8>, Error> {
        user_machines::check_any_name(self.name)?;
        if query.len() > MAX_QUERY_BYTES {
            return Err(super::invalid(format!(
                "a query of {} bytes exceeds the limit of {MAX_QUERY_BYTES} bytes",
                query.len()
            )));
        }
        let cluster = &self.client.inner;
        let (target, read) = cluster.read_at(consistency);
        let body = RequestBody::SmQuery {
            machine: self.name.to_string(),
            query,
            read,
        };
        match cluster.call(target, body).await? {
            ReplyBody::SmAnswer(bytes) => Ok(bytes),
            other => Err(unexpected("SmQuery", &other)),
        }
    }
}
