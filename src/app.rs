//! Application start-up, the seed's `MprpcApplication::Init(argc, argv)`.
//!
//! Parses `-i FILE` (with `--help`), loads the config and starts logging, so
//! a provider or consumer `main` is three lines, as in the seed.

use std::path::PathBuf;

use clap::Parser;

use crate::config::{Config, ConfigError};
use crate::logging::{self, LogGuard};

/// The command line every mprpc program accepts.
#[derive(Debug, Clone, Parser)]
#[command(about = "An mprpc program", long_about = None)]
pub struct AppArgs {
    /// Config file in the seed's key=value format (rpcserverip, rpcserverport,
    /// zookeeperip, zookeeperport, ...).
    #[arg(short = 'i', long = "config", value_name = "FILE")]
    pub config: PathBuf,
}

/// A started application: its config and the logger's guard.
pub struct Application {
    pub config: Config,
    _log: LogGuard,
}

impl Application {
    /// Loads the config named by `-i` and starts logging.
    pub fn init_from(args: &AppArgs) -> Result<Application, ConfigError> {
        let config = Config::load(&args.config)?;
        let log = logging::init(&config.log_dir, &config.log_level);
        Ok(Application { config, _log: log })
    }

    /// The seed's `Init(argc, argv)`: parses the process's arguments (exits
    /// with usage on `--help` or a missing `-i`) and exits with a clear
    /// message when the config is bad.
    pub fn init() -> Application {
        let args = AppArgs::parse();
        match Application::init_from(&args) {
            Ok(app) => app,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(2);
            }
        }
    }
}
