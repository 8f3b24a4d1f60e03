//! `clinic-server`: migrate, serve, and manage clinics and users.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use clinic_domain::Role;
use clinic_domain::user::{Language, NewUser};
use clinic_server::Config;

#[derive(Parser)]
#[command(version, about = "The clinic's central server")]
struct Cli {
    /// Configuration file (TOML); CLINIC_SERVER_* variables override it.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply the database migrations.
    Migrate,
    /// Serve the API.
    Serve,
    /// Create a clinic (a branch).
    CreateClinic {
        /// Short code users type at sign-in, e.g. `central`.
        #[arg(long)]
        code: String,
        /// Display name.
        #[arg(long)]
        name: String,
    },
    /// After restoring the database from a backup: give every clinic's
    /// change feed a new epoch, so workstations pull it again from the
    /// start and push again what the restored copy may have lost.
    NewEpoch,
    /// Create a user; the password is read from the first line of stdin.
    CreateUser {
        /// The clinic's code.
        #[arg(long)]
        clinic: String,
        #[arg(long)]
        username: String,
        #[arg(long)]
        display_name: String,
        /// admin, doctor, nurse, reception or imaging_operator.
        #[arg(long)]
        role: String,
        /// en, ru or th.
        #[arg(long, default_value = "en")]
        language: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Migrate => {
            let url = database_url(cli.config.as_deref())?;
            clinic_server::migrate(&clinic_server::connect(&url).await?).await?;
            println!("migrations applied");
        }
        Command::Serve => {
            let config = Config::load(cli.config.as_deref())?;
            let pool = clinic_server::connect(&config.database_url).await?;
            clinic_server::migrate(&pool).await?;
            let listener = tokio::net::TcpListener::bind(&config.listen)
                .await
                .with_context(|| format!("cannot listen on {}", config.listen))?;
            tracing::info!(addr = %listener.local_addr()?, "serving");
            let state = clinic_server::state(pool, config).await?;
            clinic_server::serve(listener, state, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        }
        Command::NewEpoch => {
            let url = database_url(cli.config.as_deref())?;
            let pool = clinic_server::connect(&url).await?;
            let clinics = clinic_server::feed::new_epoch(&pool).await?;
            println!("new feed epoch for {clinics} clinic(s)");
        }
        Command::CreateClinic { code, name } => {
            let url = database_url(cli.config.as_deref())?;
            let pool = clinic_server::connect(&url).await?;
            let id = clinic_server::users::create_clinic(&pool, &code, &name).await?;
            println!("{id}");
        }
        Command::CreateUser {
            clinic,
            username,
            display_name,
            role,
            language,
        } => {
            let role = Role::parse(&role).context("unknown role")?;
            let language = Language::parse(&language).context("unknown language")?;
            let mut password = String::new();
            std::io::stdin().read_line(&mut password)?;
            let url = database_url(cli.config.as_deref())?;
            let pool = clinic_server::connect(&url).await?;
            let clinic_id = clinic_server::users::clinic_id(&pool, &clinic).await?;
            let user = clinic_server::users::create_user(
                &pool,
                clinic_id,
                None,
                NewUser {
                    username,
                    display_name,
                    role,
                    password: password.trim_end_matches(['\r', '\n']).to_owned(),
                    language,
                },
            )
            .await
            .map_err(|e| match e {
                clinic_server::ApiError::Validation(f) => anyhow::anyhow!(
                    "{}",
                    f.iter()
                        .map(|e| format!("{}: {}", e.field, e.message))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                other => anyhow::anyhow!(other),
            })?;
            println!("{}", user.id);
        }
    }
    Ok(())
}

/// The database URL alone (migrate and the admin commands need no secret).
fn database_url(file: Option<&std::path::Path>) -> anyhow::Result<String> {
    if let Ok(url) = std::env::var("CLINIC_SERVER_DATABASE_URL") {
        return Ok(url);
    }
    let path = file.context("give --config FILE or set CLINIC_SERVER_DATABASE_URL")?;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let table: toml::Table = text.parse().context("config is not valid TOML")?;
    table
        .get("database_url")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .context("database_url missing from the config")
}
