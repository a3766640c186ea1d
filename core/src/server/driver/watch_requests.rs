//! Opening a watch: admit it, replay the retained events from the requested index, then hand
//! it to the registry (`server/watches.rs`), which pushes what is applied after.

use super::{Conn, Driver, reply};
use crate::client::protocol::{ReplyBody, ServerMessage, Wire};
use crate::server::apply::{self};
use crate::state::kv::{KvQuery, KvQueryResult};
use crate::state::watch::WatchFilter;

impl Driver {
    pub(super) fn open_watch(
        &mut self,
        conn: Conn,
        req: u64,
        watch_id: u64,
        filter: WatchFilter,
        from: u64,
    ) {
        if let Err(e) = self.watches.admit(conn.id(), watch_id) {
            reply(&conn, req, Err(e), self.applied());
            return;
        }
        let m = self.lock();
        let applied = m.applied;
        let start = if from == 0 { applied + 1 } else { from };
        let mut replay = Vec::new();
        let mut next = start;
        let page = 1000usize;
        let result = loop {
            if next > applied {
                break Ok(());
            }
            match m.kv.read(&KvQuery::Events {
                filter: filter.clone(),
                from_index: next,
                max: page,
            }) {
                Ok(KvQueryResult::Events(evs)) => {
                    let full = evs.len() >= page;
                    next = evs.last().map_or(applied + 1, |e| e.index + 1);
                    replay.extend(evs.into_iter().filter(|e| e.index <= applied));
                    if !full {
                        break Ok(());
                    }
                }
                Ok(_) => break Ok(()),
                Err(e) => break Err(apply::state_error(e)),
            }
        };
        drop(m);
        if let Err(e) = result {
            reply(&conn, req, Err(e), applied);
            return;
        }
        reply(
            &conn,
            req,
            Ok(ReplyBody::Watching { from_index: start }),
            applied,
        );
        for chunk in replay.chunks(page) {
            let _ = conn.send(&Wire::Server(ServerMessage::WatchEvents {
                watch_id,
                events: chunk.to_vec(),
            }));
        }
        let cursor = applied.max(start - 1);
        self.watches.insert(conn, watch_id, filter, cursor);
    }
}
