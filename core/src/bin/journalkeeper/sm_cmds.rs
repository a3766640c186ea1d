//! User state machine commands (`sm …`): update a machine the servers host by name with one
//! or more commands (one log entry), or query it. Commands, queries and results are shown as
//! UTF-8 text (lossy); `--json` prints each result with its error code.

use clap::Subcommand;
use journalkeeper::api::{QueryConsistency, ResponseConfig};
use serde_json::json;

use crate::AnyResult;
use crate::client_cmds::ConnArgs;
use crate::coord_cmds::print;

#[derive(Subcommand, Debug)]
pub enum SmOp {
    /// Apply commands, in order, as one update; prints one result per command. Exits non-zero
    /// when any command was refused.
    Update {
        machine: String,
        #[arg(required = true)]
        commands: Vec<String>,
        #[arg(long, default_value = "REPLICATION")]
        response: ResponseConfig,
    },
    /// Ask a query; prints the machine's answer.
    Query {
        machine: String,
        query: String,
        #[arg(long, default_value = "STRICT")]
        consistency: QueryConsistency,
    },
}

pub async fn run(conn: ConnArgs, op: SmOp) -> AnyResult<()> {
    let client = conn.connect().await?;
    let j = conn.json;
    let outcome = match op {
        SmOp::Update {
            machine,
            commands,
            response,
        } => {
            let sm = client.state_machine(&machine);
            let commands = commands.into_iter().map(String::into_bytes).collect();
            match sm.update_batch(commands, response).await {
                Ok(None) => {
                    print(
                        j,
                        json!({"acknowledged": response.name()}),
                        "acknowledged".into(),
                    );
                    Ok(())
                }
                Ok(Some(results)) => {
                    let mut refused = 0;
                    for r in results {
                        match r {
                            Ok(bytes) => {
                                let text = String::from_utf8_lossy(&bytes).into_owned();
                                print(j, json!({"result": text}), text.clone());
                            }
                            Err(e) => {
                                refused += 1;
                                print(
                                    j,
                                    json!({"error": e.kind.code(), "message": e.message}),
                                    format!("error {}: {}", e.kind.code(), e.message),
                                );
                            }
                        }
                    }
                    if refused == 0 {
                        Ok(())
                    } else {
                        Err(format!("{refused} command(s) refused").into())
                    }
                }
                Err(e) => Err(e.into()),
            }
        }
        SmOp::Query {
            machine,
            query,
            consistency,
        } => client
            .state_machine(&machine)
            .query(query.into_bytes(), consistency)
            .await
            .map(|bytes| {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                print(j, json!({"answer": text}), text.trim_end().to_string());
            })
            .map_err(Into::into),
    };
    client.close();
    outcome
}
