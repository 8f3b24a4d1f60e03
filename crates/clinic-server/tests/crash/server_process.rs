//! The real `clinic-server serve` binary as a child process, so a test can
//! kill it with SIGKILL and start it again on the same database.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use clinic_server::testing::SECRET;

/// A running server process.
pub struct ServerProcess {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl ServerProcess {
    /// Starts `clinic-server serve` on `database_url`, on a free loopback
    /// port, and waits until it says where it listens.
    pub fn start(database_url: &str) -> ServerProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_clinic-server"))
            .arg("serve")
            .env("CLINIC_SERVER_DATABASE_URL", database_url)
            .env("CLINIC_SERVER_LISTEN", "127.0.0.1:0")
            .env("CLINIC_SERVER_TOKEN_SECRET", SECRET)
            .env("RUST_LOG", "info,sqlx=warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the clinic-server binary starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        // Reads the log to its end, so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("serving") {
                    let _ = tx.send(line);
                }
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the server logs its address within a minute");
        let addr = listen_address(&line)
            .unwrap_or_else(|| panic!("no address in the server's log line {line:?}"));
        ServerProcess { child, addr }
    }

    /// SIGKILL: no shutdown, no flushing, no goodbye.
    pub fn kill(mut self) {
        self.kill_now();
    }

    fn kill_now(&mut self) {
        // `Child::kill` sends SIGKILL on Unix.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill_now();
    }
}

/// `127.0.0.1:PORT` out of a log line (colours or not).
fn listen_address(line: &str) -> Option<SocketAddr> {
    let start = line.find("127.0.0.1:")?;
    let rest = &line[start + "127.0.0.1:".len()..];
    let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
    format!("127.0.0.1:{port}").parse().ok()
}
