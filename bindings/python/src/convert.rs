//! Python values ↔ core types: enum names, ranged integers, byte strings, and the status /
//! configuration records (returned as dicts; `journalkeeper/types.py` has their `TypedDict`s).
//!
//! Never does: validation the core does itself (bounds of entries, keys, values, configs).

use journalkeeper::api::Error;
use journalkeeper::api::{ErrorKind, NodeRole, QueryConsistency, ResponseConfig};
use journalkeeper::client::NodeSnapshots;
use journalkeeper::client::protocol::{
    ClusterConfiguration, Member, NodeResources, NodeStatus, SnapshotInfo,
};
use journalkeeper::server::{ServerStatus, Standing};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes};

use crate::errors::{invalid, to_py_err};

/// `ResponseConfig` from its name (`"REPLICATION"`, `"one_way"`, `"One-Way"`: any case, `-`
/// or `_`; the core's rule).
pub fn response_config(name: &str) -> PyResult<ResponseConfig> {
    name.parse().map_err(to_py_err)
}

/// `QueryConsistency` from its name (`"STRICT"`, `"sequential"`: any case; the core's rule).
pub fn consistency(name: &str) -> PyResult<QueryConsistency> {
    name.parse().map_err(to_py_err)
}

/// The canonical names of roles, levels and error kinds (`_native.vocabulary()`), from the
/// core: what every binding prints and accepts.
#[derive(IntoPyObject)]
pub struct Vocabulary {
    roles: Vec<&'static str>,
    response_configs: Vec<&'static str>,
    query_consistencies: Vec<&'static str>,
    error_codes: Vec<&'static str>,
}

pub fn vocabulary() -> Vocabulary {
    Vocabulary {
        roles: NodeRole::ALL.iter().map(|r| r.name()).collect(),
        response_configs: ResponseConfig::ALL.iter().map(|r| r.name()).collect(),
        query_consistencies: QueryConsistency::ALL.iter().map(|c| c.name()).collect(),
        error_codes: ErrorKind::ALL.iter().map(|k| k.code()).collect(),
    }
}

/// An integer argument in the range of `T`, else `InvalidArgumentError` naming it.
pub fn ranged<T>(name: &str, value: i128) -> PyResult<T>
where
    T: TryFrom<i128> + num_bounds::Bounds,
{
    T::try_from(value).map_err(|_| {
        invalid(format!(
            "{name} {value} is outside {}..={}",
            T::MIN_I128,
            T::MAX_I128
        ))
    })
}

/// The bounds [`ranged`] reports, per integer type.
pub mod num_bounds {
    pub trait Bounds {
        const MIN_I128: i128;
        const MAX_I128: i128;
    }
    macro_rules! bounds {
        ($($t:ty),*) => {$(
            impl Bounds for $t {
                const MIN_I128: i128 = <$t>::MIN as i128;
                const MAX_I128: i128 = <$t>::MAX as i128;
            }
        )*};
    }
    bounds!(u16, u32, u64);
}

/// The bytes of a `bytes` / `bytearray` argument.
pub fn bytes_arg(what: &str, value: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(b) = value.cast::<PyBytes>() {
        Ok(b.as_bytes().to_vec())
    } else if let Ok(b) = value.cast::<PyByteArray>() {
        Ok(b.to_vec())
    } else {
        Err(PyTypeError::new_err(format!(
            "{what} must be bytes or bytearray, not {}",
            value.get_type().name()?
        )))
    }
}

/// An optional `bytes` argument (`None` stays `None`).
pub fn opt_bytes_arg(what: &str, value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<u8>>> {
    match value {
        Some(v) if !v.is_none() => bytes_arg(what, v).map(Some),
        _ => Ok(None),
    }
}

/// A cluster member: `{"node_id": int, "addr": str}`.
#[derive(IntoPyObject)]
pub struct MemberDict {
    node_id: u64,
    addr: String,
}

impl From<Member> for MemberDict {
    fn from(m: Member) -> Self {
        MemberDict {
            node_id: m.node_id,
            addr: m.addr,
        }
    }
}

fn members(list: Vec<Member>) -> Vec<MemberDict> {
    list.into_iter().map(MemberDict::from).collect()
}

/// `admin.cluster_configuration()`.
#[derive(IntoPyObject)]
pub struct ConfigurationDict {
    voters: Vec<MemberDict>,
    joint_old_voters: Option<Vec<MemberDict>>,
    observers: Vec<MemberDict>,
    leader: Option<MemberDict>,
}

impl From<ClusterConfiguration> for ConfigurationDict {
    fn from(c: ClusterConfiguration) -> Self {
        ConfigurationDict {
            voters: members(c.voters),
            joint_old_voters: c.joint_old_voters.map(members),
            observers: members(c.observers),
            leader: c.leader.map(MemberDict::from),
        }
    }
}

/// `admin.status(node)`.
#[derive(IntoPyObject)]
pub struct NodeStatusDict {
    node_id: u64,
    role: &'static str,
    term: u64,
    leader: Option<MemberDict>,
    commit_index: u64,
    applied_index: u64,
    last_index: u64,
    configuration: ConfigurationDict,
    /// `None` from a node older than protocol 1.2.
    resources: Option<ResourcesDict>,
    /// `None` from a node older than protocol 1.4.
    detail: Option<crate::status_detail::DetailDict>,
}

/// `admin.status(node)["resources"]`: what the node holds for its clients.
#[derive(IntoPyObject)]
pub struct ResourcesDict {
    client_connections: u64,
    peer_connections: u64,
    watches: u64,
    watching_connections: u64,
    pending_requests: u64,
    sessions_in_flight: u64,
}

impl From<NodeResources> for ResourcesDict {
    fn from(r: NodeResources) -> Self {
        ResourcesDict {
            client_connections: r.client_connections,
            peer_connections: r.peer_connections,
            watches: r.watches,
            watching_connections: r.watching_connections,
            pending_requests: r.pending_requests,
            sessions_in_flight: r.sessions_in_flight,
        }
    }
}

impl From<NodeStatus> for NodeStatusDict {
    fn from(s: NodeStatus) -> Self {
        NodeStatusDict {
            node_id: s.node_id,
            role: s.role.name(),
            term: s.term,
            leader: s.leader.map(MemberDict::from),
            commit_index: s.commit_index,
            applied_index: s.applied_index,
            last_index: s.last_index,
            configuration: s.configuration.into(),
            resources: s.resources.map(ResourcesDict::from),
            detail: s.detail.map(|d| (*d).into()),
        }
    }
}

/// One retained snapshot (`admin.snapshots()[i]["snapshots"]`).
#[derive(IntoPyObject)]
pub struct SnapshotInfoDict {
    index: u64,
    term: u64,
    time_ms: u64,
    size_bytes: u64,
}

impl From<SnapshotInfo> for SnapshotInfoDict {
    fn from(s: SnapshotInfo) -> Self {
        SnapshotInfoDict {
            index: s.index,
            term: s.term,
            time_ms: s.time_ms,
            size_bytes: s.size_bytes,
        }
    }
}

/// A core error as a value: the exception instance of its class (not raised).
pub struct ErrorValue(Error);

impl<'py> IntoPyObject<'py> for ErrorValue {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = std::convert::Infallible;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        Ok(to_py_err(self.0).into_value(py).into_bound(py).into_any())
    }
}

/// One node of `admin.snapshots()`: its snapshots, or the error that kept it from answering.
#[derive(IntoPyObject)]
pub struct NodeSnapshotsDict {
    node_id: u64,
    addr: String,
    snapshots: Vec<SnapshotInfoDict>,
    error: Option<ErrorValue>,
}

impl From<NodeSnapshots> for NodeSnapshotsDict {
    fn from(n: NodeSnapshots) -> Self {
        NodeSnapshotsDict {
            node_id: n.node.node_id,
            addr: n.node.addr,
            snapshots: n.snapshots.into_iter().map(Into::into).collect(),
            error: n.error.map(ErrorValue),
        }
    }
}

/// `Server.status()`: the embedded node's own view.
#[derive(IntoPyObject)]
pub struct ServerStatusDict {
    node_id: u64,
    role: Option<&'static str>,
    is_leader: bool,
    leader: Option<u64>,
    term: u64,
    commit_index: u64,
    applied_index: u64,
    durable_index: u64,
    first_index: u64,
    last_index: u64,
    voters: Vec<u64>,
    failed: bool,
    standing: &'static str,
    preferred_leader: Option<u64>,
}

/// The name of a standing (`"JOINING"`, `"MEMBER"`, `"REMOVED"`, `"OBSERVER"`: as C's `jk_standing_name` and
/// Node's `Standing`; the core has no `name()` for it).
pub fn standing_name(s: Standing) -> &'static str {
    match s {
        Standing::Joining => "JOINING",
        Standing::Member => "MEMBER",
        Standing::Removed => "REMOVED",
        Standing::Observer => "OBSERVER",
    }
}

impl From<ServerStatus> for ServerStatusDict {
    fn from(s: ServerStatus) -> Self {
        ServerStatusDict {
            node_id: s.node_id,
            role: s.node_role().map(|r| r.name()),
            is_leader: s.is_leader(),
            leader: s.leader,
            term: s.term,
            commit_index: s.commit_index,
            applied_index: s.applied_index,
            durable_index: s.durable_index,
            first_index: s.first_index,
            last_index: s.last_index,
            voters: s.membership.voters.iter().copied().collect(),
            failed: s.failed,
            standing: standing_name(s.standing),
            preferred_leader: s.preferred_leader,
        }
    }
}
