//! `privacypassd completions SHELL` and `privacypassd man DIR`: shell completion scripts and
//! man pages, generated from the command line's own definitions (clap), so they cannot drift
//! from it. `make install` writes both.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

use crate::config::Cli;

/// The completion script for `shell`, for the binary named `privacypassd`.
pub fn completions(shell: Shell, out: &mut dyn Write) {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "privacypassd", out);
}

/// Writes `privacypassd.1` and a page per subcommand (`privacypassd-keys-generate.1`, …) into
/// `dir`, creating it. Returns the files written.
pub fn man_pages(dir: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut written = Vec::new();
    let mut command = Cli::command();
    command.build();
    write_pages(&command, "privacypassd", dir, &mut written)?;
    Ok(written)
}

fn write_pages(
    command: &clap::Command,
    name: &str,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> Result<(), String> {
    // A subcommand's page is titled with its full name, as `man privacypassd-keys-rotate` finds it.
    let page = command.clone().name(name.to_string());
    let mut text = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut text)
        .map_err(|e| format!("cannot render the man page of {name}: {e}"))?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    written.push(path);
    for sub in command.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every flag of a command, as `--long`.
    fn flags(command: &clap::Command) -> Vec<String> {
        command
            .get_arguments()
            .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
            .collect()
    }

    #[test]
    fn a_man_page_for_every_command_names_each_of_its_flags() {
        let dir = tempfile::tempdir().unwrap();
        let written = man_pages(dir.path()).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for expected in [
            "privacypassd.1",
            "privacypassd-serve.1",
            "privacypassd-keys.1",
            "privacypassd-keys-rotate.1",
            "privacypassd-keys-generate.1",
            "privacypassd-api-keys-new.1",
            "privacypassd-completions.1",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} in {names:?}"
            );
        }
        let mut command = Cli::command();
        command.build();
        let serve = command.find_subcommand("serve").unwrap();
        let page = std::fs::read_to_string(dir.path().join("privacypassd-serve.1")).unwrap();
        assert!(
            page.starts_with(".ie") || page.contains(".TH privacypassd-serve"),
            "{page:.200}"
        );
        let flags = flags(serve);
        assert!(flags.len() > 30, "{flags:?}");
        for flag in flags {
            // roff escapes each dash of a flag
            assert!(
                page.contains(&flag.replace('-', "\\-")),
                "{flag} missing from the serve page"
            );
        }
    }

    #[test]
    fn completions_offer_the_subcommands_and_flags() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut out = Vec::new();
            completions(shell, &mut out);
            let text = String::from_utf8(out).unwrap();
            for word in ["serve", "rotate", "publish-ahead", "keys-dir", "api-keys"] {
                assert!(text.contains(word), "{shell}: {word} missing");
            }
        }
    }
}
