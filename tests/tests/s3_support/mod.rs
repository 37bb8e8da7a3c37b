//! Shared helpers of the `s3_*` end-to-end tests: a real S3-compatible server (`moto_server`
//! from the `moto` pip package, installed by `.ci/run`) on 127.0.0.1 with a free port, a
//! TCP proxy in front of it that can be "stopped" and "restarted" (the server's data
//! survives, as MinIO's does on disk), and a few bucket operations through boto3 (an
//! independent client, so the tests do not check sluice with itself).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "sluice-test";
pub const SECRET_KEY: &str = "sluice-test-secret";

/// Whether `moto_server` can be run here (the tests skip, saying so, when it cannot).
pub fn moto_available() -> bool {
    Command::new("moto_server")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto_server did not start on {port}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// A `moto_server` child process; killed (by its own pid) when dropped.
pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Moto {
    /// Start a server; `auth` makes it check credentials (`INITIAL_NO_AUTH_ACTION_COUNT=0`:
    /// every request must be signed by a known key, so wrong keys get 403).
    pub fn start(auth: bool) -> Moto {
        let port = free_port();
        let mut c = Command::new("moto_server");
        c.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if auth {
            c.env("INITIAL_NO_AUTH_ACTION_COUNT", "0");
        }
        let child = c.spawn().expect("spawn moto_server");
        wait_listening(port);
        Moto { child, port }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run a boto3 snippet against `endpoint`; `s3` is the client. Panics with its stderr.
pub fn boto(endpoint: &str, code: &str) -> String {
    let script = format!(
        "import boto3, os, sys, json\n\
         s3 = boto3.client('s3', endpoint_url={endpoint:?}, aws_access_key_id={ACCESS_KEY:?},\n\
             aws_secret_access_key={SECRET_KEY:?}, region_name='us-east-1')\n{code}\n"
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("spawn python3");
    assert!(
        out.status.success(),
        "boto3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Create `bucket` and upload every file under `dir` as `<prefix>/<relative path>`.
pub fn upload_dir(endpoint: &str, bucket: &str, dir: &Path, prefix: &str) {
    boto(
        endpoint,
        &format!(
            "try:\n    s3.create_bucket(Bucket={bucket:?})\nexcept s3.exceptions.BucketAlreadyOwnedByYou:\n    pass\n\
             root = {root:?}\n\
             for d, _, fs in os.walk(root):\n    for f in fs:\n        p = os.path.join(d, f)\n        \
             s3.upload_file(p, {bucket:?}, {prefix:?} + '/' + os.path.relpath(p, root))\n",
            root = dir.display().to_string()
        ),
    );
}

/// Keys under `prefix` with their sizes, sorted.
pub fn list(endpoint: &str, bucket: &str, prefix: &str) -> Vec<(String, u64)> {
    let out = boto(
        endpoint,
        &format!(
            "keys = []\n\
             for page in s3.get_paginator('list_objects_v2').paginate(Bucket={bucket:?}, Prefix={prefix:?}):\n    \
             keys += [[o['Key'], o['Size']] for o in page.get('Contents', [])]\n\
             print(json.dumps(sorted(keys)))"
        ),
    );
    serde_json::from_str(out.trim()).expect("key list")
}

/// The bytes of one object.
pub fn get(endpoint: &str, bucket: &str, key: &str) -> Vec<u8> {
    let out = boto(
        endpoint,
        &format!(
            "sys.stdout.write(s3.get_object(Bucket={bucket:?}, Key={key:?})['Body'].read().hex())"
        ),
    );
    let hex = out.trim();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Multipart uploads still open in `bucket` (orphaned parts).
pub fn open_uploads(endpoint: &str, bucket: &str) -> usize {
    let out = boto(
        endpoint,
        &format!("print(len(s3.list_multipart_uploads(Bucket={bucket:?}).get('Uploads', [])))"),
    );
    out.trim().parse().expect("count")
}

/// Point a `sluice` command at `endpoint` with the test credentials.
pub fn s3_env(c: &mut Command, endpoint: &str) {
    c.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", "us-east-1")
        .env_remove("OBJECT_STORE_ENDPOINT")
        .env_remove("OBJECT_STORE_REGION")
        .env_remove("AWS_SESSION_TOKEN");
}

/// A TCP proxy on its own port in front of `target`. [`Proxy::stop`] closes the listening
/// socket and cuts every open connection (a server that died); [`Proxy::restart`] listens
/// again on the same port (the server is back, with its data).
pub struct Proxy {
    pub port: u16,
    target: u16,
    running: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    acceptor: Option<thread::JoinHandle<()>>,
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

impl Proxy {
    pub fn start(target: u16) -> Proxy {
        let mut p = Proxy {
            port: free_port(),
            target,
            running: Arc::new(AtomicBool::new(false)),
            conns: Arc::new(Mutex::new(Vec::new())),
            acceptor: None,
        };
        p.restart();
        p
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Listen (again) on the proxy's port.
    pub fn restart(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("bind the proxy port");
        listener.set_nonblocking(true).expect("nonblocking");
        self.running.store(true, Ordering::SeqCst);
        let (running, conns, target) = (self.running.clone(), self.conns.clone(), self.target);
        self.acceptor = Some(thread::spawn(move || {
            while running.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                            continue;
                        };
                        let mut held = conns.lock().unwrap();
                        held.push(client.try_clone().unwrap());
                        held.push(server.try_clone().unwrap());
                        let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                        thread::spawn(move || pipe(client, server));
                        thread::spawn(move || pipe(s2, c2));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
            // The listener drops here: connections are refused from now on.
        }));
    }

    /// Refuse new connections and cut the open ones.
    pub fn stop(&mut self) {
        self.running.store(false, Ordering::SeqCst);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
    }
}
