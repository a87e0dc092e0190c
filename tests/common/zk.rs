//! Real Apache ZooKeeper for tests: a standalone server or a 3-server
//! ensemble on loopback, each on free ports with a temporary data dir.
//!
//! Uses Debian's `zookeeper` package (`/usr/share/java/zookeeper.jar`, run as
//! `java ... QuorumPeerMain zoo.cfg`; override the class path with
//! `MPRPC_ZK_CLASSPATH`). `tickTime=500` makes the minimum session timeout
//! 1 s, so a dead provider's node vanishes quickly. Startup waits until the
//! server answers the `srvr` four-letter word with a `Mode:` line, bounded
//! by [`START_TIMEOUT`]; the harness panics with the server's log tail when
//! something is wrong (library code never panics, a harness may). Servers are
//! killed and their directories removed on drop; a tiny shell watchdog also
//! kills the JVM if the test process itself dies without unwinding.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a server may take to start serving.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

const DEFAULT_CLASSPATH: &str = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar";

/// A port that was free a moment ago (bind to port 0, read it, drop it),
/// and never one this process was given before: the kernel may hand a
/// just-freed port out again at once, and two "different" addresses that
/// are the same (two fake providers, two ZooKeeper servers) make a test
/// fail for the wrong reason.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..1000 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local_addr").port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
    panic!("free_port: the kernel kept handing out ports this test process already used");
}

/// A fresh, empty directory under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!(
        "mprpc-{tag}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// Sends a four-letter word and returns the answer ("" if none).
pub fn four_letter(port: u16, word: &str) -> String {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(word.as_bytes()).is_err() {
        return String::new();
    }
    let _ = stream.shutdown(Shutdown::Write);
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

/// The `Mode:` of the server on `port` ("standalone", "leader", "follower"), if it serves.
pub fn mode(port: u16) -> Option<String> {
    four_letter(port, "srvr")
        .lines()
        .find_map(|l| l.strip_prefix("Mode:").map(|m| m.trim().to_owned()))
}

/// One ZooKeeper JVM: its config, data dir, log and process.
struct Node {
    dir: PathBuf,
    client_port: u16,
    child: Option<Child>,
}

impl Node {
    fn new(dir: PathBuf, client_port: u16, extra_cfg: &str, myid: Option<usize>) -> Node {
        let data = dir.join("data");
        std::fs::create_dir_all(&data).expect("create data dir");
        if let Some(id) = myid {
            std::fs::write(data.join("myid"), format!("{id}\n")).expect("write myid");
        }
        let cfg = format!(
            "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={client_port}\n\
             clientPortAddress=127.0.0.1\nadmin.enableServer=false\n\
             4lw.commands.whitelist=srvr,ruok\nforceSync=no\nmaxClientCnxns=0\n{extra_cfg}",
            data.display()
        );
        std::fs::write(dir.join("zoo.cfg"), cfg).expect("write zoo.cfg");
        Node {
            dir,
            client_port,
            child: None,
        }
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "ZooKeeper node already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("zk.log"))
            .expect("open zk.log");
        let classpath =
            std::env::var("MPRPC_ZK_CLASSPATH").unwrap_or_else(|_| DEFAULT_CLASSPATH.to_owned());
        let child = Command::new("java")
            .args([
                "-Xmx128m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-Dzookeeper.root.logger=INFO,CONSOLE",
                "-Dzookeeper.console.threshold=INFO",
            ])
            .arg(format!("-Dzookeeper.log.dir={}", self.dir.display()))
            .arg("-cp")
            .arg(classpath)
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(self.dir.join("zoo.cfg"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log fd"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run java for ZooKeeper (is the `zookeeper` package installed?): {e}")
            });
        watchdog(child.id());
        self.child = Some(child);
    }

    /// Waits until the server reports a mode; `Err` with the log tail if
    /// the process exited first (e.g. its port was taken meanwhile).
    fn try_serving(&mut self, deadline: Instant) -> Result<String, String> {
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(format!(
                        "ZooKeeper exited ({status}) before serving on port {}:\n{}",
                        self.client_port,
                        log_tail(&self.dir)
                    ));
                }
            }
            // Asked only while our process runs, so a server that took the
            // port in between is not mistaken for ours for long: it makes
            // ours exit with "Address already in use".
            if let Some(mode) = mode(self.client_port) {
                return Ok(mode);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "ZooKeeper on port {} not serving after {START_TIMEOUT:?}:\n{}",
                    self.client_port,
                    log_tail(&self.dir)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Kills `pid` if this test process dies without running destructors.
fn watchdog(pid: u32) {
    let me = std::process::id();
    let script = format!(
        "while kill -0 {me} 2>/dev/null && kill -0 {pid} 2>/dev/null; do sleep 1; done; kill -9 {pid} 2>/dev/null"
    );
    let _ = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}

fn log_tail(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("zk.log")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// A standalone ZooKeeper on a free 127.0.0.1 port.
pub struct ZkServer {
    node: Node,
    root: PathBuf,
}

impl ZkServer {
    /// Starts a server and waits until it serves. The port is picked by
    /// binding port 0 and releasing it, so another process may take it
    /// before ZooKeeper binds: then ZooKeeper exits and we retry on a new
    /// port instead of failing the test.
    pub fn start() -> ZkServer {
        let mut last = String::new();
        for _ in 0..5 {
            let root = temp_dir("zk");
            let mut node = Node::new(root.clone(), free_port(), "", None);
            node.spawn();
            match node.try_serving(Instant::now() + START_TIMEOUT) {
                Ok(_) => return ZkServer { node, root },
                Err(why) => last = why,
            }
        }
        panic!("ZooKeeper did not start in 5 attempts; last: {last}")
    }

    pub fn port(&self) -> u16 {
        self.node.client_port
    }

    /// `127.0.0.1:<port>`.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.node.client_port)
    }

    /// Kills the server (SIGKILL); the data dir stays for [`ZkServer::restart`].
    pub fn kill(&mut self) {
        self.node.kill();
    }

    /// Same as [`ZkServer::kill`]: ZooKeeper is crash-safe, so there is no
    /// gentler stop worth waiting for.
    pub fn stop(&mut self) {
        self.kill();
    }

    /// Starts the server again on the same port and data dir (stops it first
    /// if it is running) and waits until it serves. The port must stay the
    /// same (clients know it): if it is briefly taken (the old socket not
    /// yet released, or another process's ephemeral port), retry a few
    /// times instead of failing at once.
    pub fn restart(&mut self) {
        self.node.kill();
        let mut last = String::new();
        for _ in 0..5 {
            self.node.spawn();
            match self.node.try_serving(Instant::now() + START_TIMEOUT) {
                Ok(_) => return,
                Err(why) => last = why,
            }
            self.node.kill();
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!("ZooKeeper did not restart in 5 attempts; last: {last}")
    }

    pub fn is_running(&self) -> bool {
        self.node.is_running()
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        self.node.kill();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A ZooKeeper ensemble of N servers on loopback.
pub struct ZkEnsemble {
    nodes: Vec<Node>,
    root: PathBuf,
}

impl ZkEnsemble {
    /// Starts `n` servers (server.N=127.0.0.1:peer:election) and waits until
    /// every one of them serves as leader or follower. Ports are picked as
    /// in [`ZkServer::start`]; if one was taken meanwhile (a server exits),
    /// the whole ensemble is retried on new ports.
    pub fn start(n: usize) -> ZkEnsemble {
        let mut last = String::new();
        for _ in 0..5 {
            let root = temp_dir("zk-ensemble");
            let mut nodes = Self::spawn_nodes(&root, n);
            match Self::wait_all_serving(&mut nodes) {
                Ok(()) => return ZkEnsemble { nodes, root },
                Err(why) => {
                    for node in &mut nodes {
                        node.kill();
                    }
                    let _ = std::fs::remove_dir_all(&root);
                    last = why;
                }
            }
        }
        panic!("ZooKeeper ensemble did not start in 5 attempts; last: {last}")
    }

    /// Configures and starts `n` servers on fresh free ports under `root`.
    fn spawn_nodes(root: &Path, n: usize) -> Vec<Node> {
        let ports: Vec<(u16, u16, u16)> = (0..n)
            .map(|_| (free_port(), free_port(), free_port()))
            .collect();
        let servers: String = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer, election))| {
                format!("server.{}=127.0.0.1:{peer}:{election}\n", i + 1)
            })
            .collect();
        let mut nodes: Vec<Node> = ports
            .iter()
            .enumerate()
            .map(|(i, (client, _, _))| {
                let dir = root.join(format!("server{}", i + 1));
                Node::new(dir, *client, &servers, Some(i + 1))
            })
            .collect();
        for node in &mut nodes {
            node.spawn();
        }
        nodes
    }

    /// Waits until every node serves as leader or follower.
    fn wait_all_serving(nodes: &mut [Node]) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        for node in nodes {
            match node.try_serving(deadline)?.as_str() {
                "leader" | "follower" => {}
                mode => return Err(format!("unexpected ZooKeeper mode {mode}")),
            }
        }
        Ok(())
    }

    /// Every server: `127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3`.
    pub fn connect_string(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The client port of server `i` (0-based).
    pub fn port(&self, i: usize) -> u16 {
        self.nodes[i].client_port
    }

    /// Index of the current leader, if one is known.
    pub fn leader(&self) -> Option<usize> {
        (0..self.nodes.len()).find(|&i| {
            self.nodes[i].is_running()
                && mode(self.nodes[i].client_port).as_deref() == Some("leader")
        })
    }

    /// Kills server `i` (0-based, SIGKILL).
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    /// Waits until the running servers have a leader again; panics after [`START_TIMEOUT`].
    pub fn wait_quorum(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            let serving = self
                .nodes
                .iter()
                .filter(|n| n.is_running())
                .all(|n| matches!(mode(n.client_port).as_deref(), Some("leader" | "follower")));
            if serving && self.leader().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("ZooKeeper ensemble has no quorum after {START_TIMEOUT:?}");
    }
}

impl Drop for ZkEnsemble {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A plain ZooKeeper client for tests to read back (or plant) nodes, on its
/// own runtime thread so its session stays alive between calls.
pub struct RawZk {
    client: zookeeper_client::Client,
    connect_string: String,
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How long a raw request may take.
const RAW_TIMEOUT: Duration = Duration::from_secs(30);

impl RawZk {
    /// Connects to `connect` (session timeout 20 s), optionally with a digest.
    pub fn connect(connect: &str, digest: Option<&str>) -> RawZk {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let connect_string = connect.to_owned();
        let connect = connect.to_owned();
        let digest = digest.map(str::to_owned);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let mut connector = zookeeper_client::Client::connector()
                    .with_session_timeout(Duration::from_secs(20));
                if let Some(d) = &digest {
                    connector = connector.with_auth("digest", d.as_bytes());
                }
                let client = connector.connect(&connect).await;
                let _ = ready_tx.send((client, tokio::runtime::Handle::current()));
                let _ = stopped.await;
            });
        });
        let (client, handle) = ready_rx
            .recv_timeout(RAW_TIMEOUT)
            .expect("raw client thread");
        RawZk {
            client: client.expect("raw ZooKeeper client connects"),
            connect_string,
            handle,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Runs `op` with a clone of the client on the client's runtime.
    pub fn run<T, F>(&self, op: impl FnOnce(zookeeper_client::Client) -> F) -> T
    where
        F: std::future::Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        let fut = op(self.client.clone());
        self.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv_timeout(RAW_TIMEOUT)
            .expect("raw ZooKeeper request timed out")
    }

    /// Sorted children of `path`, or `None` if it does not exist.
    pub fn children(&self, path: &str) -> Option<Vec<String>> {
        let path = path.to_owned();
        match self.run(|c| async move { c.list_children(&path).await }) {
            Ok(mut children) => {
                children.sort();
                Some(children)
            }
            Err(zookeeper_client::Error::NoNode) => None,
            Err(e) => panic!("list children: {e}"),
        }
    }

    /// Data and stat of `path`, or `None` if it does not exist.
    pub fn get(&self, path: &str) -> Option<(Vec<u8>, zookeeper_client::Stat)> {
        let path = path.to_owned();
        match self.run(|c| async move { c.get_data(&path).await }) {
            Ok(found) => Some(found),
            Err(zookeeper_client::Error::NoNode) => None,
            Err(e) => panic!("get data: {e}"),
        }
    }

    /// Creates `path` with `data` (open ACL); parents must exist.
    pub fn create(
        &self,
        path: &str,
        data: &[u8],
        mode: zookeeper_client::CreateMode,
    ) -> Result<(), zookeeper_client::Error> {
        let (path, data) = (path.to_owned(), data.to_vec());
        self.run(move |c| async move {
            let options = mode.with_acls(zookeeper_client::Acls::anyone_all());
            c.create(&path, &data, &options).await.map(|_| ())
        })
    }

    pub fn delete(&self, path: &str) -> Result<(), zookeeper_client::Error> {
        let path = path.to_owned();
        self.run(|c| async move { c.delete(&path, None).await })
    }

    pub fn acl(&self, path: &str) -> Vec<zookeeper_client::Acl> {
        let path = path.to_owned();
        self.run(|c| async move { c.get_acl(&path).await })
            .expect("get acl")
            .0
    }
}

impl Drop for RawZk {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A TCP proxy in front of a ZooKeeper server that can cut the network
/// (close every connection and refuse new ones) and heal it: a partition
/// longer than the session timeout makes the server expire the sessions
/// behind it, which is how tests force a real session expiry.
pub struct ZkProxy {
    port: u16,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<TcpStream>>>,
    /// Connections refused while cut: a client's attempts to get through.
    refused: std::sync::Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ZkProxy {
    /// Forwards a free 127.0.0.1 port to `127.0.0.1:upstream_port`.
    pub fn start(upstream_port: u16) -> ZkProxy {
        use std::sync::atomic::AtomicBool;
        use std::sync::{Arc, Mutex};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let upstream = SocketAddr::from(([127, 0, 0, 1], upstream_port));
        let cut = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let refused = Arc::new(AtomicUsize::new(0));
        let (cut2, stop2, conns2, refused2) =
            (cut.clone(), stop.clone(), conns.clone(), refused.clone());
        let thread = std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                if cut2.load(Ordering::SeqCst) {
                    refused2.fetch_add(1, Ordering::SeqCst);
                    continue; // dropped: the partition refuses it
                }
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let mut list = conns2.lock().unwrap();
                list.push(client.try_clone().unwrap());
                list.push(server.try_clone().unwrap());
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
        ZkProxy {
            port,
            cut,
            stop,
            conns,
            refused,
            thread: Some(thread),
        }
    }

    /// How many connections the cut has refused so far.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }

    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Closes every proxied connection and refuses new ones until [`ZkProxy::heal`].
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for conn in self.conns.lock().unwrap().drain(..) {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }

    pub fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// Copies `from` to `to` on a thread until either side closes.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}

impl Drop for ZkProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.cut();
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
