//! Sans-IO Raft consensus core: a deterministic state machine. No threads, sockets, files or clock reads.
