//! `auth_bench`: what checking every request against the user's current
//! state costs (issue 9), side by side in one run, on a real server over a
//! real PostgreSQL on loopback.
//!
//! ```text
//! bash scripts/with-pg.sh cargo run -p clinic-bench --release --bin auth_bench -- [--samples N]
//! ```
//!
//! - `auth_lookup_p50_us` / `_p95_us`: the one query each authenticated
//!   request adds (the user's role, disabled flag and auth version, by
//!   primary key), run on the server's own pool.
//! - `request_health_p50_ms`: a request with no token and no database, the
//!   floor of an HTTP round trip here.
//! - `request_authenticated_p50_ms`: `GET /v1/me`, whose handler reads the
//!   user once more: token check, the lookup, one query.
//!
//! Needs `CLINIC_TEST_PG_URL` (scripts/with-pg.sh sets it).

use std::time::Instant;

use clinic_domain::Role;
use clinic_server::testing::{TestDb, TestServer};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

#[tokio::main]
async fn main() {
    let samples: usize = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => 5_000,
        [flag, n] if flag == "--samples" => n.parse().expect("--samples needs a number"),
        _ => {
            eprintln!("usage: auth_bench [--samples N]");
            std::process::exit(2);
        }
    };
    let db = TestDb::new().await;
    let user = db.user(db.clinic_id, "alice", Role::Admin).await;
    let s = TestServer::start(&db).await;
    let token = s.tokens_for(user).await.access_token;

    // Warm the pool, the statement caches and the HTTP connection.
    for _ in 0..200 {
        s.get("/v1/me", Some(&token)).await;
    }

    let mut lookup = Vec::with_capacity(samples);
    let mut health = Vec::with_capacity(samples);
    let mut authed = Vec::with_capacity(samples);
    // Interleaved, so a busy moment of the machine hits all three alike.
    for _ in 0..samples {
        let t = Instant::now();
        let _: Option<(String, bool, i64)> = sqlx::query_as(
            "SELECT role, disabled, auth_version FROM users WHERE id = $1 AND clinic_id = $2",
        )
        .bind(user)
        .bind(db.clinic_id)
        .fetch_optional(&s.state.pool)
        .await
        .unwrap();
        lookup.push(t.elapsed().as_secs_f64() * 1e6);

        let t = Instant::now();
        assert_eq!(s.get("/health", None).await.0, 200);
        health.push(t.elapsed().as_secs_f64() * 1e3);

        let t = Instant::now();
        assert_eq!(s.get("/v1/me", Some(&token)).await.0, 200);
        authed.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (lookup, health, authed) = (sorted(lookup), sorted(health), sorted(authed));
    println!(
        "bench: auth_lookup_p50_us {:.0} us",
        percentile(&lookup, 0.5)
    );
    println!(
        "bench: auth_lookup_p95_us {:.0} us",
        percentile(&lookup, 0.95)
    );
    println!(
        "bench: request_health_p50_ms {:.3} ms",
        percentile(&health, 0.5)
    );
    println!(
        "bench: request_authenticated_p50_ms {:.3} ms",
        percentile(&authed, 0.5)
    );
    println!(
        "bench: request_authenticated_p95_ms {:.3} ms",
        percentile(&authed, 0.95)
    );
}
