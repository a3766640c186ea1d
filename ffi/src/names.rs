//! The shared vocabulary in C: the one role enum `jk_role`, the standing enum `jk_standing`,
//! and the canonical names of roles and levels (`jk_role_name`, `jk_response_config_name`,
//! `jk_query_consistency_name`), which are the core's `name()` strings — the same text the CLI,
//! Python and Node use — and of standings (`jk_standing_name`, the upper-case variant names,
//! as Python and Node spell them; the core has no `name()` for `Standing`).

use std::ffi::{CStr, c_char};

use journalkeeper::api::{NodeRole, QueryConsistency, ResponseConfig};
use journalkeeper::server::Standing;

use crate::args::{consistency_arg, response_arg};

/// A node's role, as `jk_server_status` (the embedded node's own view) and `jk_admin_status`
/// (any node, over the network) report it. Over the network a pre-candidate reports
/// `JK_ROLE_CANDIDATE`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum jk_role {
    /// No role yet: the embedded node has not started.
    None = 0,
    /// The voter that orders writes for the current term.
    Leader = 1,
    /// A voter following a leader (or waiting for one).
    Follower = 2,
    /// A voter checking whether it could win before starting an election (pre-vote).
    PreCandidate = 3,
    /// A voter campaigning for leadership.
    Candidate = 4,
    /// A non-voting replica.
    Observer = 5,
}

impl From<Option<NodeRole>> for jk_role {
    fn from(r: Option<NodeRole>) -> Self {
        match r {
            None => jk_role::None,
            Some(NodeRole::Leader) => jk_role::Leader,
            Some(NodeRole::Follower) => jk_role::Follower,
            Some(NodeRole::PreCandidate) => jk_role::PreCandidate,
            Some(NodeRole::Candidate) => jk_role::Candidate,
            Some(NodeRole::Observer) => jk_role::Observer,
        }
    }
}

/// An embedded node's standing in its cluster (`jk_server_standing`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum jk_standing {
    /// Started to join a running cluster (`jk_server_start_joining`); not a member until a
    /// leader adds it (`jk_admin_add_voter`). It serves no client meanwhile.
    Joining = 0,
    /// In the configuration (a voter, or a learner catching up).
    Member = 1,
    /// A committed configuration no longer holds this node: it serves nothing, and its data
    /// directory cannot start a node again.
    Removed = 2,
    /// A read replica outside the configuration that pulls committed entries from parents
    /// (started with `role = "observer"`, or converted with `jk_admin_convert_role`).
    Observer = 3,
}

impl From<Standing> for jk_standing {
    fn from(s: Standing) -> Self {
        match s {
            Standing::Joining => jk_standing::Joining,
            Standing::Member => jk_standing::Member,
            Standing::Removed => jk_standing::Removed,
            Standing::Observer => jk_standing::Observer,
        }
    }
}

const STANDINGS: [jk_standing; 4] = [
    jk_standing::Joining,
    jk_standing::Member,
    jk_standing::Removed,
    jk_standing::Observer,
];

fn standing_cstr(s: jk_standing) -> &'static CStr {
    match s {
        jk_standing::Joining => c"JOINING",
        jk_standing::Member => c"MEMBER",
        jk_standing::Removed => c"REMOVED",
        jk_standing::Observer => c"OBSERVER",
    }
}

fn role_cstr(r: NodeRole) -> &'static CStr {
    match r {
        NodeRole::Leader => c"LEADER",
        NodeRole::Follower => c"FOLLOWER",
        NodeRole::PreCandidate => c"PRE_CANDIDATE",
        NodeRole::Candidate => c"CANDIDATE",
        NodeRole::Observer => c"OBSERVER",
    }
}

fn response_cstr(r: ResponseConfig) -> &'static CStr {
    match r {
        ResponseConfig::OneWay => c"ONE_WAY",
        ResponseConfig::Receive => c"RECEIVE",
        ResponseConfig::Persistence => c"PERSISTENCE",
        ResponseConfig::Replication => c"REPLICATION",
        ResponseConfig::All => c"ALL",
    }
}

fn consistency_cstr(c: QueryConsistency) -> &'static CStr {
    match c {
        QueryConsistency::Strict => c"STRICT",
        QueryConsistency::Sequential => c"SEQUENTIAL",
        QueryConsistency::None => c"NONE",
    }
}

/// The canonical name of a `jk_role` value (`"LEADER"`, `"PRE_CANDIDATE"`, …); NULL for
/// `JK_ROLE_NONE` and for values that are not a `jk_role`. Static; do not free.
#[unsafe(no_mangle)]
pub extern "C" fn jk_role_name(role: u32) -> *const c_char {
    ffi_boundary! { default = std::ptr::null();
        NodeRole::ALL
            .into_iter()
            .find(|&r| jk_role::from(Some(r)) as u32 == role)
            .map_or(std::ptr::null(), |r| role_cstr(r).as_ptr())
    }
}

/// The canonical name of a `jk_response_config` value (`"ONE_WAY"`, …); NULL for other
/// values. Static; do not free.
#[unsafe(no_mangle)]
pub extern "C" fn jk_response_config_name(response: u32) -> *const c_char {
    ffi_boundary! { default = std::ptr::null();
        response_arg(response).map_or(std::ptr::null(), |r| response_cstr(r).as_ptr())
    }
}

/// The canonical name of a `jk_query_consistency` value (`"STRICT"`, …); NULL for other
/// values. Static; do not free.
#[unsafe(no_mangle)]
pub extern "C" fn jk_query_consistency_name(consistency: u32) -> *const c_char {
    ffi_boundary! { default = std::ptr::null();
        consistency_arg(consistency).map_or(std::ptr::null(), |c| consistency_cstr(c).as_ptr())
    }
}

/// The name of a `jk_standing` value (`"JOINING"`, `"MEMBER"`, `"REMOVED"`); NULL for other
/// values. Static; do not free.
#[unsafe(no_mangle)]
pub extern "C" fn jk_standing_name(standing: u32) -> *const c_char {
    ffi_boundary! { default = std::ptr::null();
        STANDINGS
            .into_iter()
            .find(|&s| s as u32 == standing)
            .map_or(std::ptr::null(), |s| standing_cstr(s).as_ptr())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_names_are_the_core_names() {
        for r in NodeRole::ALL {
            assert_eq!(role_cstr(r).to_str().unwrap(), r.name());
        }
        for r in ResponseConfig::ALL {
            assert_eq!(response_cstr(r).to_str().unwrap(), r.name());
        }
        for c in QueryConsistency::ALL {
            assert_eq!(consistency_cstr(c).to_str().unwrap(), c.name());
        }
    }

    #[test]
    fn role_values_are_distinct_and_none_has_no_name() {
        let values: std::collections::BTreeSet<u32> = NodeRole::ALL
            .into_iter()
            .map(|r| jk_role::from(Some(r)) as u32)
            .collect();
        assert_eq!(values.len(), NodeRole::ALL.len());
        assert!(!values.contains(&(jk_role::None as u32)));
        assert!(jk_role_name(jk_role::None as u32).is_null());
        assert!(jk_role_name(999).is_null());
        assert!(jk_response_config_name(5).is_null());
        assert!(jk_query_consistency_name(3).is_null());
        assert!(jk_standing_name(4).is_null());
    }

    #[test]
    fn every_standing_has_a_distinct_value_and_name() {
        for s in [
            Standing::Joining,
            Standing::Member,
            Standing::Removed,
            Standing::Observer,
        ] {
            let c = jk_standing::from(s);
            assert!(STANDINGS.contains(&c));
            let name = standing_cstr(c).to_str().unwrap();
            assert_eq!(name, format!("{s:?}").to_uppercase());
            // SAFETY: a non-NULL result is a static NUL-terminated string.
            let got = unsafe { CStr::from_ptr(jk_standing_name(c as u32)) };
            assert_eq!(got.to_str().unwrap(), name);
        }
    }
}
