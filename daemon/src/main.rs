//! `privacypassd`: parse the command line and hand over to the library.

use clap::Parser;
use privacypassd::config::{Cli, Command};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => args.resolve().and_then(privacypassd::serve),
        Command::Keys(command) => privacypassd::keys(command),
        Command::ApiKeys(command) => privacypassd::api_keys(command),
        Command::Demo { url, api_key } => privacypassd::demo::run(&url, api_key.as_deref()),
        Command::Completions { shell } => {
            privacypassd::manual::completions(shell, &mut std::io::stdout());
            Ok(())
        }
        Command::Man { dir } => privacypassd::manual::man_pages(&dir).map(|pages| {
            for page in pages {
                println!("{}", page.display());
            }
        }),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("privacypassd: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
