//! The README's error table (the "### Errors" section), read from the README itself: what the
//! targets hold the daemon's answers to. A JSON-RPC error's HTTP status (of a single call) and
//! its message, and a REST error's status and title, must be those of its code's row.

use std::collections::HashMap;

const README: &str = include_str!("../../README.md");

/// A row of the table: the HTTP status and the meaning of a code.
#[derive(Clone, Debug)]
pub struct Row {
    pub status: u16,
    pub meaning: String,
}

#[derive(Debug)]
pub struct ErrorTable {
    rows: HashMap<i64, Row>,
}

impl ErrorTable {
    /// The table of the README this crate was built from.
    pub fn from_readme() -> ErrorTable {
        let start = README
            .find("| code | HTTP | meaning |")
            .expect("the README has an error table");
        let mut rows = HashMap::new();
        for line in README[start..].lines().skip(2) {
            let Some(cells) = line.strip_prefix("| ").and_then(|l| l.strip_suffix(" |")) else {
                break;
            };
            let mut cells = cells.splitn(3, " | ");
            let (Some(code), Some(status), Some(meaning)) =
                (cells.next(), cells.next(), cells.next())
            else {
                panic!("README error table row {line:?} is not | code | HTTP | meaning |");
            };
            let code: i64 = code.parse().expect("a code is an integer");
            let status: u16 = status.parse().expect("an HTTP status is an integer");
            rows.insert(
                code,
                Row {
                    status,
                    meaning: meaning.to_owned(),
                },
            );
        }
        assert!(
            rows.len() > 10,
            "the README's error table has {} rows",
            rows.len()
        );
        ErrorTable { rows }
    }

    pub fn row(&self, code: i64) -> Option<&Row> {
        self.rows.get(&code)
    }

    /// Whether some code of the table answers this status.
    pub fn has_status(&self, status: u16) -> bool {
        self.rows.values().any(|r| r.status == status)
    }
}
