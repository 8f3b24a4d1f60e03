//! `app_bench`: launch time and idle memory of the built workstation app.
//!
//! Run it on an X display, e.g. `bash scripts/bench-app.sh`, or
//! `xvfb-run -a env WEBKIT_DISABLE_COMPOSITING_MODE=1 cargo run -p clinic-bench --release --bin app_bench -- [APP_BINARY]`.
//!
//! Each run starts the app on a fresh temporary database (`--db`) with
//! `CLINIC_READY_FILE` set; the app writes the Unix epoch milliseconds at which
//! the UI called `ui_ready` (sign-in screen painted) into that file. After the
//! app idles at the sign-in screen, the PSS of the app and all its descendant
//! processes (WebKit web and network processes) is summed. Medians are printed:
//!
//! ```text
//! bench: app_cold_start_ms <value> ms
//! bench: app_idle_pss_mb <value> MB
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clinic_bench::{comm, median, process_tree, pss_kb, resolve_app_binary};

const USAGE: &str = "usage: app_bench [--runs N] [--idle-secs S] [--timeout-secs S] [APP_BINARY]
  APP_BINARY  default: $CLINIC_APP_BINARY, else $CARGO_TARGET_DIR/{release,debug}/clinic-workstation
Needs an X display: run inside xvfb-run (see scripts/bench-app.sh).";

struct Options {
    binary: Option<PathBuf>,
    runs: usize,
    idle: Duration,
    timeout: Duration,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        binary: None,
        runs: 5,
        idle: Duration::from_secs(5),
        timeout: Duration::from_secs(60),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a whole number\n{USAGE}"))
        };
        match arg.as_str() {
            "--runs" => options.runs = number("--runs")?.max(1) as usize,
            "--idle-secs" => options.idle = Duration::from_secs(number("--idle-secs")?),
            "--timeout-secs" => options.timeout = Duration::from_secs(number("--timeout-secs")?),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other if other.starts_with('-') => {
                return Err(format!("unknown option {other}\n{USAGE}"));
            }
            other => options.binary = Some(PathBuf::from(other)),
        }
    }
    Ok(options)
}

fn epoch_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// A launched app with its scratch directory; killed (with its descendants) on drop.
struct Launched {
    child: Child,
    dir: PathBuf,
}

impl Launched {
    fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.dir.join("app.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        let tree = process_tree(self.child.id());
        for pid in tree.iter().rev() {
            // No libc dependency: the `kill` utility sends the signal.
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn scratch_dir(run: usize) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!(
        "clinic-bench-{}-{run}-{}",
        std::process::id(),
        epoch_ms()
    ));
    fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    Ok(dir)
}

fn launch(binary: &Path, run: usize) -> Result<(Launched, u128), String> {
    let dir = scratch_dir(run)?;
    let log = fs::File::create(dir.join("app.log")).map_err(|e| e.to_string())?;
    let log_err = log.try_clone().map_err(|e| e.to_string())?;
    let started = epoch_ms();
    let child = Command::new(binary)
        .arg("--db")
        .arg(dir.join("clinic.db"))
        .env("CLINIC_READY_FILE", dir.join("ready"))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("start {}: {e}", binary.display()))?;
    Ok((Launched { child, dir }, started))
}

/// Wait for the ready file; returns the epoch ms the app wrote.
fn wait_ready(app: &mut Launched, timeout: Duration) -> Result<u128, String> {
    let ready = app.dir.join("ready");
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(ms) = fs::read_to_string(&ready)
            .ok()
            .and_then(|s| s.trim().parse::<u128>().ok())
        {
            return Ok(ms);
        }
        if let Ok(Some(status)) = app.child.try_wait() {
            return Err(format!(
                "the app exited ({status}) before it was ready; its log:\n{}",
                app.log_tail()
            ));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "no ready time in CLINIC_READY_FILE after {} s (does the app call ui_ready?); its log:\n{}",
                timeout.as_secs(),
                app.log_tail()
            ));
        }
        sleep(Duration::from_millis(5));
    }
}

fn run() -> Result<(), String> {
    let options = parse_args()?;
    let binary = resolve_app_binary(options.binary.clone())?;
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        return Err(format!("no DISPLAY: run inside xvfb-run\n{USAGE}"));
    }
    eprintln!(
        "app_bench: {} ({} runs, {} s idle)",
        binary.display(),
        options.runs,
        options.idle.as_secs()
    );

    let mut start_ms = Vec::new();
    let mut pss_mb = Vec::new();
    for run in 1..=options.runs {
        let (mut app, started) = launch(&binary, run)?;
        let ready = wait_ready(&mut app, options.timeout)?;
        let launch_ms = ready.saturating_sub(started) as f64;
        sleep(options.idle);
        if let Ok(Some(status)) = app.child.try_wait() {
            return Err(format!(
                "the app exited ({status}) while idle; its log:\n{}",
                app.log_tail()
            ));
        }
        let mut total_kb = 0;
        let mut parts = Vec::new();
        for pid in process_tree(app.child.id()) {
            if let Some(kb) = pss_kb(pid) {
                total_kb += kb;
                parts.push(format!("{} {:.1}", comm(pid), kb as f64 / 1024.0));
            }
        }
        let mb = total_kb as f64 / 1024.0;
        eprintln!(
            "app_bench: run {run}: ready after {launch_ms:.0} ms; idle PSS {mb:.1} MB ({})",
            parts.join(", ")
        );
        start_ms.push(launch_ms);
        pss_mb.push(mb);
        drop(app);
    }
    println!(
        "bench: app_cold_start_ms {:.0} ms",
        median(&start_ms).unwrap_or(f64::NAN)
    );
    println!(
        "bench: app_idle_pss_mb {:.1} MB",
        median(&pss_mb).unwrap_or(f64::NAN)
    );
    Ok(())
}

fn main() {
    if let Err(message) = run() {
        eprintln!("app_bench: {message}");
        std::process::exit(1);
    }
}
