//! `app_bench`: launch time and idle memory of the built workstation app.
//!
//! Run it on an X display, e.g. `bash scripts/bench-app.sh`, or
//! `xvfb-run -a env WEBKIT_DISABLE_COMPOSITING_MODE=1 cargo run -p clinic-bench --release --bin app_bench -- [APP_BINARY]`.
//!
//! Before the timed runs it prepares, once, a database with an admin account
//! (through the store library), so the app starts at the sign-in screen and
//! not at the first-start setup screen. Each run copies that database into a
//! fresh temporary directory, starts the app on it (`--db`) with
//! `CLINIC_READY_FILE` set, and waits for the file: the UI calls `ui_ready`
//! after its first screen has painted, and the app writes that time, the
//! screen's name (the bench insists on `sign_in`) and its start-up marks (see
//! `src-tauri/startup.rs`). The time counted is from just before the process
//! is spawned to the moment `ui_ready` arrives. After the app idles at the
//! sign-in screen, the PSS of the app and all its descendant processes
//! (WebKit web and network processes) is summed. Per-run figures and the
//! median start-up breakdown go to stderr; the medians to stdout:
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

use clinic_bench::{
    ReadyReport, comm, cpu_ms, median, parse_ready, process_tree, pss_kb, resolve_app_binary,
};
use clinic_domain::Role;
use clinic_domain::user::{Language, NewUser};
use clinic_store::{OpenOptions, Store, Workstation};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

const USAGE: &str = "usage: app_bench [--runs N] [--idle-secs S] [--timeout-secs S] [APP_BINARY]
       app_bench --prepare-db DIR
  APP_BINARY  default: $CLINIC_APP_BINARY, else $CARGO_TARGET_DIR/{release,debug}/clinic-workstation
  --prepare-db DIR  only write the benchmark's database (admin `bench.admin`) to DIR/clinic.db
Needs an X display: run inside xvfb-run (see scripts/bench-app.sh).";

struct Options {
    binary: Option<PathBuf>,
    runs: usize,
    idle: Duration,
    timeout: Duration,
    prepare_only: Option<PathBuf>,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        binary: None,
        runs: 5,
        idle: Duration::from_secs(5),
        timeout: Duration::from_secs(60),
        prepare_only: None,
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
            "--prepare-db" => {
                let dir = args
                    .next()
                    .ok_or(format!("--prepare-db needs a directory\n{USAGE}"))?;
                options.prepare_only = Some(PathBuf::from(dir));
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other if other.starts_with('-') => {
                return Err(format!("unknown option {other}\n{USAGE}"));
            }
            other => options.binary = Some(PathBuf::from(other)),
        }
    }
    Ok(options)
}

fn epoch_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
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

fn scratch_dir(name: &str) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!(
        "clinic-bench-{}-{name}-{:.0}",
        std::process::id(),
        epoch_ms()
    ));
    fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// A database with an admin account, so the app opens at the sign-in screen.
/// Made once; each run starts on a copy.
fn prepare_database(dir: &Path) -> Result<PathBuf, String> {
    let path = dir.join("clinic.db");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime
        .block_on(async {
            let options = OpenOptions {
                create: true,
                exclusive: false,
            };
            let workstation = Workstation::new(Store::open(&path, options).await?).await?;
            workstation
                .setup_admin(NewUser {
                    username: "bench.admin".to_owned(),
                    display_name: "Bench admin".to_owned(),
                    role: Role::Admin,
                    password: "Bench-Admin-Pass-2026".to_owned(),
                    language: Language::En,
                })
                .await?;
            workstation.sign_out().await?;
            workstation.store().close().await;
            Ok::<_, clinic_store::StoreError>(())
        })
        .map_err(|e| format!("prepare the database: {e}"))?;
    // Fold the WAL into the file, as a cleanly closed app leaves it, so each
    // run starts from one file like a normal start.
    runtime
        .block_on(async {
            let mut conn = SqliteConnectOptions::new()
                .filename(&path)
                .connect()
                .await?;
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&mut conn)
                .await?;
            conn.close().await
        })
        .map_err(|e| format!("checkpoint the prepared database: {e}"))?;
    Ok(path)
}

/// Copies the prepared database into `dir`.
fn copy_database(template: &Path, dir: &Path) -> Result<PathBuf, String> {
    let target = dir.join("clinic.db");
    fs::copy(template, &target).map_err(|e| format!("copy {}: {e}", template.display()))?;
    Ok(target)
}

fn launch(binary: &Path, template: &Path, run: usize) -> Result<(Launched, f64), String> {
    let dir = scratch_dir(&format!("run{run}"))?;
    let db = copy_database(template, &dir)?;
    let log = fs::File::create(dir.join("app.log")).map_err(|e| e.to_string())?;
    let log_err = log.try_clone().map_err(|e| e.to_string())?;
    let started = epoch_ms();
    let child = Command::new(binary)
        .arg("--db")
        .arg(db)
        .env("CLINIC_READY_FILE", dir.join("ready"))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("start {}: {e}", binary.display()))?;
    Ok((Launched { child, dir }, started))
}

/// Wait for the ready file; returns what the app wrote.
fn wait_ready(app: &mut Launched, timeout: Duration) -> Result<ReadyReport, String> {
    let ready = app.dir.join("ready");
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(report) = fs::read_to_string(&ready)
            .ok()
            .and_then(|s| parse_ready(&s))
        {
            return Ok(report);
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
    if let Some(dir) = &options.prepare_only {
        fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let path = prepare_database(dir)?;
        eprintln!("app_bench: prepared {}", path.display());
        return Ok(());
    }
    let binary = resolve_app_binary(options.binary.clone())?;
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        return Err(format!("no DISPLAY: run inside xvfb-run\n{USAGE}"));
    }
    eprintln!(
        "app_bench: {} ({} runs, {} s idle); load average {}",
        binary.display(),
        options.runs,
        options.idle.as_secs(),
        load_average()
    );

    let template_dir = scratch_dir("template")?;
    let template = prepare_database(&template_dir);
    let result = template.and_then(|template| measure(&options, &binary, &template));
    let _ = fs::remove_dir_all(&template_dir);
    // Other work on the machine stretches every step; say how much there was.
    eprintln!("app_bench: load average after the runs {}", load_average());
    result
}

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`).
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn measure(options: &Options, binary: &Path, template: &Path) -> Result<(), String> {
    let mut start_ms = Vec::new();
    let mut pss_mb = Vec::new();
    let mut cpu = Vec::new();
    // Start-up step -> its time after spawn in each run, for the median breakdown.
    let mut steps: Vec<(String, Vec<f64>)> = Vec::new();
    for run in 1..=options.runs {
        let (mut app, started) = launch(binary, template, run)?;
        let ready = wait_ready(&mut app, options.timeout)?;
        // CPU used by the app and its WebKit processes up to now (about the
        // ready time): the part of the start that other load cannot stretch.
        let mut cpu_parts = Vec::new();
        let mut cpu_total = 0.0;
        for pid in process_tree(app.child.id()) {
            if let Some(ms) = cpu_ms(pid) {
                cpu_total += ms;
                cpu_parts.push(format!("{} {ms:.0}", comm(pid)));
            }
        }
        if ready.screen != "sign_in" {
            return Err(format!(
                "the app painted the {:?} screen, not sign_in; its log:\n{}",
                ready.screen,
                app.log_tail()
            ));
        }
        let launch_ms = ready.ready_ms - started;
        eprintln!(
            "app_bench: run {run}: CPU until ready {cpu_total:.0} ms ({})",
            cpu_parts.join(", ")
        );
        cpu.push(cpu_total);
        let mut marks: Vec<(String, f64)> = ready
            .marks
            .iter()
            .map(|(name, ms)| (name.clone(), ms - started))
            .collect();
        marks.sort_by(|a, b| a.1.total_cmp(&b.1));
        eprintln!(
            "app_bench: run {run}: steps (ms after spawn): {}",
            marks
                .iter()
                .map(|(name, ms)| format!("{name} {ms:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for (name, ms) in marks {
            match steps.iter_mut().find(|(n, _)| *n == name) {
                Some((_, times)) => times.push(ms),
                None => steps.push((name, vec![ms])),
            }
        }
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
    let mut medians: Vec<(String, f64)> = steps
        .into_iter()
        .filter_map(|(name, times)| median(&times).map(|m| (name, m)))
        .collect();
    medians.sort_by(|a, b| a.1.total_cmp(&b.1));
    eprintln!(
        "app_bench: median CPU until ready: {:.0} ms (app and WebKit processes together)",
        median(&cpu).unwrap_or(f64::NAN)
    );
    eprintln!("app_bench: median start-up steps (ms after spawn):");
    for (name, ms) in &medians {
        eprintln!("app_bench:   {ms:7.0}  {name}");
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
