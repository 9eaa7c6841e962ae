//! `flowscope generate`: the man pages and shell completion scripts, made
//! from the command's own clap definitions (what packaging installs).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

/// What `flowscope generate` writes.
#[derive(Debug, clap::Subcommand)]
pub enum Generate {
    /// The man pages, `flowscope.1` and one per subcommand, into DIR.
    Man {
        /// Directory to write them to (created if missing).
        dir: PathBuf,
    },
    /// The completion script of SHELL, on standard output.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Writes what `what` asks for, for the command `cmd` (the whole
/// `flowscope` command line).
///
/// # Errors
///
/// The directory or a page cannot be written.
pub fn run(mut cmd: clap::Command, what: Generate) -> anyhow::Result<ExitCode> {
    match what {
        Generate::Man { dir } => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(cmd, &dir)
                .with_context(|| format!("writing man pages to {}", dir.display()))?;
        }
        Generate::Completions { shell } => {
            let name = cmd.get_name().to_owned();
            clap_complete::generate(shell, &mut cmd, name, &mut std::io::stdout());
        }
    }
    Ok(ExitCode::SUCCESS)
}
