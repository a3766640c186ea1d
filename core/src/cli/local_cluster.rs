//! [`LocalCluster`]: N `journalkeeper server --config FILE` child processes on loopback, each
//! with its own generated TOML configuration, data directory and log file.

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::api::{Error, ErrorKind};
use crate::client::protocol::{NodeRole, NodeStatus};
use crate::client::{Client, ClientConfig};

/// Settings of the nodes a [`LocalCluster`] generates configurations for.
#[derive(Debug, Clone)]
pub struct LocalClusterOptions {
    pub nodes: usize,
    pub cluster_id: u64,
    pub election_timeout_ms: u64,
    pub heartbeat_interval_ms: u64,
    pub tick_ms: u64,
    /// Snapshot every this many applied entries (0: never).
    pub snapshot_interval: u64,
    /// Log entries kept behind a snapshot (fewer: a lagging node sooner needs the snapshot).
    pub snapshot_retained_entries: u64,
    /// Largest journal segment file; compaction drops whole segments, so a small one lets a
    /// test compact a short log.
    pub max_segment_bytes: u64,
    /// The journal partitions declared at start (`partitions` in the TOML).
    pub partitions: Vec<u16>,
    /// `RUST_LOG` of the children (their stdout and stderr go to `node<i>.log`).
    pub rust_log: String,
}

impl Default for LocalClusterOptions {
    /// Three nodes with short timeouts (loopback), partitions 0..=7, logging at `info`.
    fn default() -> Self {
        LocalClusterOptions {
            nodes: 3,
            cluster_id: 42,
            election_timeout_ms: 300,
            heartbeat_interval_ms: 30,
            tick_ms: 5,
            snapshot_interval: 100_000,
            snapshot_retained_entries: 1000,
            max_segment_bytes: 64 << 20,
            partitions: (0..8).collect(),
            rust_log: "info".into(),
        }
    }
}

impl LocalClusterOptions {
    /// Three nodes with the timeouts of [`ServerConfig::new`](crate::server::ServerConfig::new)
    /// (what a deployment gets without setting them), logging at `warn`.
    pub fn server_defaults() -> Self {
        let d = crate::server::ServerConfig::new(
            1,
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            42,
            "",
        );
        LocalClusterOptions {
            election_timeout_ms: d.election_timeout_ms,
            heartbeat_interval_ms: d.heartbeat_interval_ms,
            tick_ms: d.tick_ms,
            rust_log: "warn".into(),
            ..LocalClusterOptions::default()
        }
    }
}

struct NodeSlot {
    addr: SocketAddr,
    config: PathBuf,
    data_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    paused: bool,
}

/// A cluster of child processes. Node `i` (0-based) has node id `i + 1`. Dropping it kills
/// (SIGKILL) every child that still runs; the directory is removed when it was a temporary one.
pub struct LocalCluster {
    exe: PathBuf,
    root: PathBuf,
    _temp: Option<tempfile::TempDir>,
    options: LocalClusterOptions,
    /// The arguments before `--config FILE` (`["server"]` unless
    /// [`set_server_command`](LocalCluster::set_server_command) changed them).
    server_command: Vec<String>,
    nodes: Vec<NodeSlot>,
}

impl std::fmt::Debug for LocalCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCluster")
            .field("root", &self.root)
            .field("addrs", &self.addrs())
            .finish()
    }
}

impl LocalCluster {
    /// Picks free loopback ports, makes a temporary directory and writes one configuration per
    /// node into it. Starts nothing.
    pub fn create(exe: impl Into<PathBuf>, options: LocalClusterOptions) -> io::Result<Self> {
        let temp = tempfile::Builder::new().prefix("jk-cluster-").tempdir()?;
        let root = temp.path().to_path_buf();
        Self::create_in(exe, root, Some(temp), options)
    }

    fn create_in(
        exe: impl Into<PathBuf>,
        root: PathBuf,
        temp: Option<tempfile::TempDir>,
        options: LocalClusterOptions,
    ) -> io::Result<Self> {
        let addrs = free_loopback_ports(options.nodes)?;
        let mut nodes = Vec::new();
        for (i, addr) in addrs.iter().enumerate() {
            let id = i + 1;
            let data_dir = root.join(format!("node{id}"));
            let config = root.join(format!("node{id}.toml"));
            let text = node_toml(id as u64, &addrs, options.nodes, &data_dir, &options);
            std::fs::write(&config, text)?;
            nodes.push(NodeSlot {
                addr: *addr,
                config,
                data_dir,
                log: root.join(format!("node{id}.log")),
                child: None,
                paused: false,
            });
        }
        Ok(LocalCluster {
            exe: exe.into(),
            root,
            _temp: temp,
            options,
            server_command: vec!["server".into()],
            nodes,
        })
    }

    /// Adds node `len() + 1` with an empty data directory and `join = true` (its peers: the
    /// founding nodes and itself), and starts it. It serves nothing until an `add_voter` on the
    /// leader adds it. Returns its index.
    pub fn add_joining_node(&mut self) -> io::Result<usize> {
        let (founders, options) = (self.options.nodes, self.options.clone());
        self.add_node(|id, addrs, data_dir| node_toml(id, addrs, founders, data_dir, &options))
    }

    /// Starts a new node as an observer (`role = "observer"`) pulling from the nodes `parents`
    /// (indexes of this cluster: voters or other observers); returns its index.
    pub fn add_observer(&mut self, parents: &[usize]) -> io::Result<usize> {
        let options = self.options.clone();
        self.add_node(|id, addrs, data_dir| {
            let own = id as usize - 1;
            let parent_addrs: Vec<String> = parents
                .iter()
                .filter_map(|&p| addrs.get(p).filter(|_| p != own))
                .map(|a| toml_string(&a.to_string()))
                .collect();
            // Founders 0: the peers name only this node; an observer does not join.
            node_toml(id, addrs, 0, data_dir, &options).replacen(
                "join = true\n",
                &format!(
                    "join = false\nrole = \"observer\"\nparents = [{}]\n",
                    parent_addrs.join(", ")
                ),
                1,
            )
        })
    }

    /// Adds node `len + 1` on a free port with the configuration `toml(id, addrs, data_dir)`
    /// (`addrs` ends with its own) and starts it; returns its index.
    fn add_node(
        &mut self,
        toml: impl FnOnce(u64, &[SocketAddr], &Path) -> String,
    ) -> io::Result<usize> {
        let i = self.nodes.len();
        let id = i + 1;
        let mut addrs: Vec<SocketAddr> = self.nodes.iter().map(|n| n.addr).collect();
        addrs.push(free_loopback_ports(1)?[0]);
        let data_dir = self.root.join(format!("node{id}"));
        let config = self.root.join(format!("node{id}.toml"));
        std::fs::write(&config, toml(id as u64, &addrs, &data_dir))?;
        self.nodes.push(NodeSlot {
            addr: addrs[i],
            config,
            data_dir,
            log: self.root.join(format!("node{id}.log")),
            child: None,
            paused: false,
        });
        self.start(i)?;
        Ok(i)
    }

    /// Whether node `i`'s process has exited on its own (e.g. after the cluster removed it),
    /// with its exit status.
    pub fn exited(&mut self, i: usize) -> Option<std::process::ExitStatus> {
        let child = self.nodes.get_mut(i)?.child.as_mut()?;
        child.try_wait().ok().flatten()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn cluster_id(&self) -> u64 {
        self.options.cluster_id
    }

    /// The directory holding configurations, data directories and logs.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every node's address, `"127.0.0.1:port"`.
    pub fn addrs(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.addr.to_string()).collect()
    }

    pub fn addr(&self, i: usize) -> String {
        self.nodes[i].addr.to_string()
    }

    pub fn config_path(&self, i: usize) -> &Path {
        &self.nodes[i].config
    }

    pub fn data_dir(&self, i: usize) -> &Path {
        &self.nodes[i].data_dir
    }

    pub fn log_path(&self, i: usize) -> &Path {
        &self.nodes[i].log
    }

    /// Makes every later [`start`](Self::start) spawn `exe ARGS… --config FILE` instead of
    /// `exe server --config FILE` (e.g. a bench subcommand hosting a state machine on a node
    /// that reads the same TOML).
    pub fn set_server_command(&mut self, args: &[&str]) {
        self.server_command = args.iter().map(|a| a.to_string()).collect();
    }

    /// Starts every node that is not running.
    pub fn start_all(&mut self) -> io::Result<()> {
        for i in 0..self.nodes.len() {
            if !self.is_running(i) {
                self.start(i)?;
            }
        }
        Ok(())
    }

    /// Spawns node `i` (`journalkeeper server --config nodeN.toml`, or the command of
    /// [`set_server_command`](Self::set_server_command)), appending its output to its log file.
    pub fn start(&mut self, i: usize) -> io::Result<()> {
        if self.is_running(i) {
            return Err(io::Error::other(format!("node {} is running", i + 1)));
        }
        let node = &mut self.nodes[i];
        let log = File::options().create(true).append(true).open(&node.log)?;
        let child = Command::new(&self.exe)
            .args(&self.server_command)
            .arg("--config")
            .arg(&node.config)
            .env("RUST_LOG", &self.options.rust_log)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        node.child = Some(child);
        node.paused = false;
        Ok(())
    }

    /// Whether node `i` was started and has not exited.
    pub fn is_running(&mut self, i: usize) -> bool {
        let node = &mut self.nodes[i];
        match node.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => true,
            Some(_) => {
                node.child = None;
                false
            }
            None => false,
        }
    }

    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].child.as_ref().map(|c| c.id())
    }

    /// SIGKILL node `i` (as `kill -9`) and reap it.
    pub fn kill(&mut self, i: usize) -> io::Result<()> {
        let node = &mut self.nodes[i];
        if let Some(mut child) = node.child.take() {
            child.kill()?;
            child.wait()?;
        }
        node.paused = false;
        Ok(())
    }

    /// SIGTERM node `i` and wait up to `timeout` for its clean exit (then SIGKILL). Returns
    /// whether it exited on its own, successfully.
    pub fn stop(&mut self, i: usize, timeout: Duration) -> io::Result<bool> {
        if self.nodes[i].paused {
            self.resume(i)?;
        }
        let Some(pid) = self.pid(i) else {
            return Ok(true);
        };
        signal(pid, "-TERM")?;
        let deadline = Instant::now() + timeout;
        let node = &mut self.nodes[i];
        let Some(child) = node.child.as_mut() else {
            return Ok(true);
        };
        loop {
            if let Some(status) = child.try_wait()? {
                node.child = None;
                return Ok(status.success());
            }
            if Instant::now() > deadline {
                self.kill(i)?;
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGSTOP node `i`: it keeps its sockets but does nothing until [`resume`](Self::resume).
    pub fn pause(&mut self, i: usize) -> io::Result<()> {
        let pid = self.running_pid(i)?;
        signal(pid, "-STOP")?;
        self.nodes[i].paused = true;
        Ok(())
    }

    /// SIGCONT node `i`.
    pub fn resume(&mut self, i: usize) -> io::Result<()> {
        let pid = self.running_pid(i)?;
        signal(pid, "-CONT")?;
        self.nodes[i].paused = false;
        Ok(())
    }

    pub fn is_paused(&self, i: usize) -> bool {
        self.nodes[i].paused
    }

    fn running_pid(&self, i: usize) -> io::Result<u32> {
        self.pid(i)
            .ok_or_else(|| io::Error::other(format!("node {} is not running", i + 1)))
    }

    /// Peak resident set size of node `i` in KiB (`VmHWM` in `/proc/PID/status`).
    pub fn peak_rss_kib(&self, i: usize) -> Option<u64> {
        let pid = self.pid(i)?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// CPU time (user + system) node `i` has used so far (`/proc/PID/stat`).
    pub fn cpu_time(&self, i: usize) -> Option<Duration> {
        cpu_time_of(self.pid(i)?)
    }

    /// The last `lines` lines of node `i`'s log (for failure messages).
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.nodes[i].log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Kills every running child.
    pub fn kill_all(&mut self) {
        for i in 0..self.nodes.len() {
            let _ = self.kill(i);
        }
    }

    /// A client for this cluster (every address, [`local_client_config`]).
    pub async fn client(&self) -> Result<Client, Error> {
        Client::connect(self.addrs(), local_client_config(self.cluster_id())).await
    }

    /// A client that knows only node `i` (reads with `Sequential`/`None` are served there).
    pub async fn client_of(&self, i: usize) -> Result<Client, Error> {
        Client::connect([self.addr(i)], local_client_config(self.cluster_id())).await
    }

    /// Node `i`'s own status, asked over a fresh connection within about `timeout`.
    pub async fn status(&self, i: usize, timeout: Duration) -> Result<NodeStatus, Error> {
        let mut cfg = local_client_config(self.cluster_id());
        cfg.request_timeout = timeout;
        cfg.attempt_timeout = timeout;
        cfg.net.connect_timeout = timeout;
        cfg.max_attempts = 1;
        let addr = self.addr(i);
        let client = Client::connect([addr.as_str()], cfg).await?;
        let status = client.admin().status(&addr).await;
        client.close();
        status
    }

    /// Waits until exactly one node among `among` is leader and every node of `among` agrees
    /// on it and its term and has applied up to its commit index; returns the leader's
    /// position (0-based) and status.
    pub async fn wait_for_leader(
        &self,
        among: &[usize],
        timeout: Duration,
    ) -> Result<(usize, NodeStatus), Error> {
        let deadline = Instant::now() + timeout;
        let mut last = String::from("no status yet");
        loop {
            let mut statuses = Vec::new();
            for &i in among {
                match self.status(i, Duration::from_millis(500)).await {
                    Ok(s) => statuses.push((i, s)),
                    Err(e) => last = format!("node {}: {e}", i + 1),
                }
            }
            if statuses.len() == among.len() {
                let leaders: Vec<&(usize, NodeStatus)> = statuses
                    .iter()
                    .filter(|(_, s)| s.role == NodeRole::Leader)
                    .collect();
                if let [(li, l)] = leaders.as_slice() {
                    let agreed = statuses.iter().all(|(_, s)| {
                        s.term == l.term
                            && s.leader.as_ref().map(|m| m.node_id) == Some(l.node_id)
                            && s.applied_index >= s.commit_index
                    });
                    if agreed && l.commit_index > 0 {
                        return Ok((*li, l.clone()));
                    }
                }
                last = format!(
                    "statuses: {:?}",
                    statuses
                        .iter()
                        .map(|(i, s)| (i + 1, s.role, s.term, s.commit_index))
                        .collect::<Vec<_>>()
                );
            }
            if Instant::now() > deadline {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!("no agreed leader within {timeout:?}; last: {last}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until node `i` has applied at least `index`; returns its status.
    pub async fn wait_for_applied(
        &self,
        i: usize,
        index: u64,
        timeout: Duration,
    ) -> Result<NodeStatus, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.status(i, Duration::from_millis(500)).await {
                Ok(s) if s.applied_index >= index => return Ok(s),
                Ok(s) => format!("applied {}", s.applied_index),
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "node {} did not apply index {index} within {timeout:?} ({last})",
                        i + 1
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// Client settings for a loopback cluster: short attempts and backoff, 20 s per call.
pub fn local_client_config(cluster_id: u64) -> ClientConfig {
    let mut cfg = ClientConfig::new(cluster_id);
    cfg.request_timeout = Duration::from_secs(20);
    cfg.attempt_timeout = Duration::from_secs(2);
    cfg.backoff_initial = Duration::from_millis(10);
    cfg.backoff_max = Duration::from_millis(200);
    cfg.net.connect_timeout = Duration::from_secs(1);
    cfg
}

/// CPU time (user + system) of process `pid` from `/proc/PID/stat` (USER_HZ = 100 on Linux).
pub fn cpu_time_of(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at field 3 (state).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

fn signal(pid: u32, sig: &str) -> io::Result<()> {
    let status = Command::new("kill")
        .arg(sig)
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "kill {sig} {pid} failed: {status}"
        )))
    }
}

/// `n` distinct ports that were free on 127.0.0.1 a moment ago (bound together, then released).
fn free_loopback_ports(n: usize) -> io::Result<Vec<SocketAddr>> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<io::Result<Vec<_>>>()?;
    listeners.iter().map(|l| l.local_addr()).collect()
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The configuration of node `id` (listening on `addrs[id - 1]`): its peers are the founders
/// `addrs[..founders]`, and itself when it joins later (`join = true`).
fn node_toml(
    id: u64,
    addrs: &[SocketAddr],
    founders: usize,
    data_dir: &Path,
    o: &LocalClusterOptions,
) -> String {
    let own = id as usize - 1;
    let join = own >= founders;
    let mut text = format!(
        "node_id = {id}\nlisten = \"{}\"\ncluster_id = {}\ndata_dir = {}\n\
         election_timeout_ms = {}\nheartbeat_interval_ms = {}\ntick_ms = {}\n\
         snapshot_interval = {}\nsnapshot_retained_entries = {}\nmax_segment_bytes = {}\n\
         partitions = {:?}\njoin = {join}\n\n[peers]\n",
        addrs[own],
        o.cluster_id,
        toml_string(&data_dir.to_string_lossy()),
        o.election_timeout_ms,
        o.heartbeat_interval_ms,
        o.tick_ms,
        o.snapshot_interval,
        o.snapshot_retained_entries,
        o.max_segment_bytes,
        o.partitions,
    );
    for (j, a) in addrs.iter().enumerate() {
        if j < founders || j == own {
            text.push_str(&format!("{} = \"{a}\"\n", j + 1));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_observer_configuration_parses_and_validates() {
        let addrs = free_loopback_ports(4).unwrap();
        let o = LocalClusterOptions::default();
        let text = node_toml(4, &addrs, 0, Path::new("/tmp/o"), &o).replacen(
            "join = true\n",
            &format!(
                "join = false\nrole = \"observer\"\nparents = [\"{}\"]\n",
                addrs[0]
            ),
            1,
        );
        let cfg = crate::server::ServerConfig::from_toml_str(&text).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.role, crate::server::ServerRole::Observer);
        assert_eq!(cfg.parents, vec![addrs[0]]);
    }

    #[test]
    fn generated_configurations_parse_and_validate() {
        let addrs = free_loopback_ports(3).unwrap();
        let o = LocalClusterOptions::default();
        for id in 1..=3u64 {
            let text = node_toml(id, &addrs, 3, Path::new("/tmp/a \"b\\c"), &o);
            let cfg = crate::server::ServerConfig::from_toml_str(&text).unwrap();
            cfg.validate().unwrap();
            assert_eq!(cfg.node_id, id);
            assert_eq!(cfg.listen, addrs[id as usize - 1]);
            assert_eq!(cfg.peers.len(), 3);
            assert_eq!(cfg.data_dir, Path::new("/tmp/a \"b\\c"));
            assert_eq!(cfg.election_timeout_ms, 300);
            assert_eq!(cfg.partitions, (0..8).collect());
        }
    }

    #[test]
    fn the_example_cluster_configurations_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/cluster");
        for id in 1..=3u64 {
            let cfg =
                crate::server::ServerConfig::from_toml_file(dir.join(format!("node{id}.toml")))
                    .unwrap();
            cfg.validate().unwrap();
            assert_eq!(cfg.node_id, id);
            assert_eq!(cfg.peers.len(), 3);
            assert_eq!(cfg.peers[&id], cfg.listen);
            assert!(!cfg.join);
        }
        let joiner = crate::server::ServerConfig::from_toml_file(dir.join("node4.toml")).unwrap();
        joiner.validate().unwrap();
        assert!(joiner.join);
        assert_eq!(joiner.peers[&4], joiner.listen);
        assert_eq!(joiner.partitions, (0..4).collect());
    }
}
