//! Application start-up, the seed's `MprpcApplication::Init(argc, argv)`.
//!
//! Parses `-i FILE` (with `--help`), loads the config and starts logging, so
//! a provider or consumer `main` is three lines, as in the seed. A program
//! with flags of its own flattens [`AppArgs`] into its own clap parser and
//! hands them to [`Application::init_with`]:
//!
//! ```no_run
//! use clap::Parser;
//! use mprpc::prelude::*;
//!
//! #[derive(Parser)]
//! struct Args {
//!     #[command(flatten)]
//!     app: AppArgs,
//!     /// How many calls to make.
//!     #[arg(long, default_value_t = 1)]
//!     n: u32,
//! }
//!
//! let args = Args::parse();                  // -i test.conf --n 10
//! let app = Application::init_with(&args.app);
//! ```

use std::path::{Path, PathBuf};

use clap::{CommandFactory, FromArgMatches, Parser};

use crate::app::config::{Config, ConfigError};
use crate::app::logging::{self, LogGuard};

/// The command line every mprpc program accepts; `#[command(flatten)]` it
/// into a program's own arguments to add flags.
///
/// Its `--help` names the running binary and describes it as the program
/// says ([`Application::init_about`]); a program with its own parser shows
/// its own doc comment.
#[derive(Debug, Clone, Parser)]
#[command(about = None, long_about = None)]
pub struct AppArgs {
    /// Config file in the seed's key=value format (rpcserverip, rpcserverport,
    /// zookeeperip, zookeeperport, ...).
    #[arg(short = 'i', long = "config", value_name = "FILE")]
    pub config: PathBuf,
}

/// A started application: its config and the logger's guard.
#[derive(Debug)]
pub struct Application {
    /// The loaded config file's settings.
    pub config: Config,
    _log: LogGuard,
}

impl Application {
    /// Loads the config named by `-i` and starts logging; unknown config
    /// keys are then logged as warnings (on stderr and in the log file).
    pub fn init_from(args: &AppArgs) -> Result<Application, ConfigError> {
        let (config, warnings) = Config::load_with_warnings(&args.config)?;
        let limits = logging::LogLimits {
            max_bytes: config.log.max_bytes,
            max_files: config.log.max_files,
        };
        let log = logging::init(&config.log.dir, &config.log.level, limits);
        for warning in &warnings {
            tracing::warn!("{warning}");
        }
        Ok(Application { config, _log: log })
    }

    /// The seed's `Init(argc, argv)`: parses the process's arguments (exits
    /// with usage on `--help` or a missing `-i`) and exits with a clear
    /// message when the config is bad.
    pub fn init() -> Application {
        Application::init_with(&parse_args(None))
    }

    /// Like [`Application::init`], with `about` as the program's
    /// description in `--help` (without it, `--help` names the binary).
    pub fn init_about(about: &str) -> Application {
        Application::init_with(&parse_args(Some(about)))
    }

    /// Like [`Application::init`], from arguments the program parsed itself
    /// (its own clap parser with `#[command(flatten)] app: AppArgs`): exits
    /// with a clear message when the config is bad.
    pub fn init_with(args: &AppArgs) -> Application {
        Application::init_from(args).unwrap_or_else(|e| {
            eprintln!("error: {e}");
            std::process::exit(2);
        })
    }
}

/// The process's arguments, with `--help` naming the running binary and
/// showing `about` (default: "<binary>: an mprpc program"); exits with
/// usage on `--help` or a bad command line, as clap does.
fn parse_args(about: Option<&str>) -> AppArgs {
    let binary = std::env::args_os()
        .next()
        .and_then(|path| Some(Path::new(&path).file_name()?.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "mprpc-program".to_owned());
    let about = about.map_or_else(|| format!("{binary}: an mprpc program"), str::to_owned);
    let matches = AppArgs::command()
        .bin_name(binary)
        .about(about)
        .get_matches();
    AppArgs::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}
