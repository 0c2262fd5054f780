//! Prometheus metrics, kept in atomics: calls by operation and outcome code, latency
//! histograms, spend-store latency, and keys by state (computed when scraped).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use privacypass_core::keys::KeyState;
use privacypass_core::store::COMMIT_SIZE_BOUNDS;
use privacypass_core::{CommitSizes, ErrorCode, KeySet, TokenType};

/// Operations counted separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Issue,
    Redeem,
}

impl Op {
    const ALL: [Op; 2] = [Op::Issue, Op::Redeem];

    fn name(self) -> &'static str {
        match self {
            Op::Issue => "issue",
            Op::Redeem => "redeem",
        }
    }
}

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let buckets = BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(bound, n)| (bound, n.load(Ordering::Relaxed)));
        let count = self.count.load(Ordering::Relaxed);
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        write_histogram(out, name, labels, buckets, count, sum);
    }
}

/// A histogram's series in the text exposition: `buckets` are (upper bound, observations in
/// that bucket alone), written cumulative; `labels` is empty or ends with a comma.
fn write_histogram<B: std::fmt::Display>(
    out: &mut String,
    name: &str,
    labels: &str,
    buckets: impl Iterator<Item = (B, u64)>,
    count: u64,
    sum: impl std::fmt::Display,
) {
    let mut cumulative = 0;
    for (bound, n) in buckets {
        cumulative += n;
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{bound}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {count}");
    let labels = labels.trim_end_matches(',');
    let labels = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = writeln!(out, "{name}_sum{labels} {sum}");
    let _ = writeln!(out, "{name}_count{labels} {count}");
}

/// The store's synced writes by the spends each carried, as a histogram.
fn render_commit_sizes(out: &mut String, commits: &CommitSizes) {
    const NAME: &str = "privacypass_store_commit_spends";
    out.push_str("# HELP privacypass_store_commit_spends Spends carried by each synced write of the store (group commit: the spends that shared one fsync).\n");
    out.push_str("# TYPE privacypass_store_commit_spends histogram\n");
    let buckets = COMMIT_SIZE_BOUNDS.iter().zip(commits.buckets);
    write_histogram(out, NAME, "", buckets, commits.writes, commits.spends);
}

/// Outcome slots: success, then one per row of the error table.
const OUTCOMES: usize = ErrorCode::ALL.len() + 1;

#[derive(Debug, Default)]
pub struct Metrics {
    outcomes: [[AtomicU64; OUTCOMES]; 2],
    latency: [Histogram; 2],
    store_latency: Histogram,
    http_requests: AtomicU64,
    /// Calls whose token type is known, by operation, token type (`TYPES`) and outcome
    /// (success, error).
    by_type: [[[AtomicU64; 2]; TYPES.len()]; 2],
    /// Tokens of batched requests, by batch kind (`BatchKind`), token type and whether they
    /// were issued.
    batch_tokens: [[[AtomicU64; 2]; TYPES.len()]; 2],
    /// Batched requests by batch kind.
    batches: [AtomicU64; 2],
    /// Steps of `--rotate`'s rotations done, and rotations that failed.
    rotations: [AtomicU64; 2],
}

/// The two kinds of batch of draft-ietf-privacypass-batched-tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchKind {
    Amortized = 0,
    Generic = 1,
}

impl BatchKind {
    fn name(self) -> &'static str {
        match self {
            BatchKind::Amortized => "amortized",
            BatchKind::Generic => "generic",
        }
    }
}

/// The token types counted separately, in the order of their values.
const TYPES: [TokenType; 3] = [
    TokenType::VoprfP384,
    TokenType::BlindRsa2048,
    TokenType::VoprfRistretto255,
];

fn outcome_slot(outcome: Option<ErrorCode>) -> usize {
    match outcome {
        None => 0,
        Some(code) => 1 + ErrorCode::ALL.iter().position(|c| *c == code).unwrap_or(0),
    }
}

impl Metrics {
    pub fn record(&self, op: Op, outcome: Option<ErrorCode>, elapsed: Duration) {
        let i = op as usize;
        self.outcomes[i][outcome_slot(outcome)].fetch_add(1, Ordering::Relaxed);
        self.latency[i].observe(elapsed);
    }

    /// Counts a call whose token type is known (the key's, the request's or the token's).
    pub fn record_type(&self, op: Op, token_type: TokenType, ok: bool) {
        if let Some(t) = TYPES.iter().position(|t| *t == token_type) {
            self.by_type[op as usize][t][usize::from(!ok)].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one batched request: `issued` of `requested` tokens of `token_type` issued.
    pub fn record_batch_tokens(
        &self,
        kind: BatchKind,
        token_type: TokenType,
        requested: u64,
        issued: u64,
    ) {
        if let Some(t) = TYPES.iter().position(|t| *t == token_type) {
            let slots = &self.batch_tokens[kind as usize][t];
            slots[0].fetch_add(issued, Ordering::Relaxed);
            slots[1].fetch_add(requested.saturating_sub(issued), Ordering::Relaxed);
        }
    }

    pub fn record_batch(&self, kind: BatchKind) {
        self.batches[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a step of an in-process rotation done, or a rotation that failed.
    pub fn record_rotation(&self, ok: bool) {
        self.rotations[usize::from(!ok)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_store(&self, elapsed: Duration) {
        self.store_latency.observe(elapsed);
    }

    pub fn record_http(&self) {
        self.http_requests.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition; `commits` are the store's group-commit sizes, for a
    /// store that batches its durable writes.
    pub fn render(&self, keys: &KeySet, now: u64, commits: Option<&CommitSizes>) -> String {
        let mut out = String::new();
        out.push_str("# HELP privacypass_calls_total Issue and redeem calls by outcome (JSON-RPC code, 0 for success).\n");
        out.push_str("# TYPE privacypass_calls_total counter\n");
        for op in Op::ALL {
            for (slot, n) in self.outcomes[op as usize].iter().enumerate() {
                let code = if slot == 0 {
                    0
                } else {
                    ErrorCode::ALL[slot - 1].code()
                };
                let _ = writeln!(
                    out,
                    "privacypass_calls_total{{op=\"{}\",code=\"{code}\"}} {}",
                    op.name(),
                    n.load(Ordering::Relaxed)
                );
            }
        }
        out.push_str("# HELP privacypass_calls_by_type_total Issue and redeem calls whose token type is known, by token type and outcome.\n");
        out.push_str("# TYPE privacypass_calls_by_type_total counter\n");
        for op in Op::ALL {
            for (t, token_type) in TYPES.iter().enumerate() {
                for (o, outcome) in ["success", "error"].iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "privacypass_calls_by_type_total{{op=\"{}\",token_type=\"{}\",outcome=\"{outcome}\"}} {}",
                        op.name(),
                        token_type.value(),
                        self.by_type[op as usize][t][o].load(Ordering::Relaxed)
                    );
                }
            }
        }
        out.push_str("# HELP privacypass_batches_total Batched issuance requests (/token-request, and issue with blinded-tokens or batch), by batch kind.\n");
        out.push_str("# TYPE privacypass_batches_total counter\n");
        for kind in [BatchKind::Amortized, BatchKind::Generic] {
            let _ = writeln!(
                out,
                "privacypass_batches_total{{kind=\"{}\"}} {}",
                kind.name(),
                self.batches[kind as usize].load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP privacypass_batch_tokens_total Tokens asked for in batched requests, by batch kind, token type and outcome (issued or refused).\n");
        out.push_str("# TYPE privacypass_batch_tokens_total counter\n");
        for kind in [BatchKind::Amortized, BatchKind::Generic] {
            for (t, token_type) in TYPES.iter().enumerate() {
                for (o, outcome) in ["issued", "refused"].iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "privacypass_batch_tokens_total{{kind=\"{}\",token_type=\"{}\",outcome=\"{outcome}\"}} {}",
                        kind.name(),
                        token_type.value(),
                        self.batch_tokens[kind as usize][t][o].load(Ordering::Relaxed)
                    );
                }
            }
        }
        out.push_str(
            "# HELP privacypass_call_duration_seconds Time to answer an issue or redeem call.\n",
        );
        out.push_str("# TYPE privacypass_call_duration_seconds histogram\n");
        for op in Op::ALL {
            self.latency[op as usize].render(
                &mut out,
                "privacypass_call_duration_seconds",
                &format!("op=\"{}\",", op.name()),
            );
        }
        out.push_str("# HELP privacypass_store_duration_seconds Time to record a spend durably.\n");
        out.push_str("# TYPE privacypass_store_duration_seconds histogram\n");
        self.store_latency
            .render(&mut out, "privacypass_store_duration_seconds", "");
        if let Some(commits) = commits {
            render_commit_sizes(&mut out, commits);
        }
        out.push_str("# HELP privacypass_http_requests_total HTTP requests served.\n");
        out.push_str("# TYPE privacypass_http_requests_total counter\n");
        let _ = writeln!(
            out,
            "privacypass_http_requests_total {}",
            self.http_requests.load(Ordering::Relaxed)
        );
        out.push_str("# HELP privacypass_keys Issuer keys of every token type by state.\n");
        out.push_str("# TYPE privacypass_keys gauge\n");
        const STATES: [KeyState; 4] = [
            KeyState::Pending,
            KeyState::Active,
            KeyState::Grace,
            KeyState::Expired,
        ];
        let typed: Vec<(TokenType, KeyState)> = keys
            .entries()
            .iter()
            .map(|e| (TokenType::BlindRsa2048, keys.state(&e.validity, now)))
            .chain(
                keys.voprf_entries()
                    .iter()
                    .map(|e| (e.key.token_type(), keys.state(&e.validity, now))),
            )
            .collect();
        for state in STATES {
            let n = typed.iter().filter(|(_, s)| *s == state).count();
            let _ = writeln!(out, "privacypass_keys{{state=\"{}\"}} {n}", state.as_str());
        }
        out.push_str("# HELP privacypass_keys_by_type Issuer keys by token type and state.\n");
        out.push_str("# TYPE privacypass_keys_by_type gauge\n");
        for token_type in [
            TokenType::VoprfP384,
            TokenType::BlindRsa2048,
            TokenType::VoprfRistretto255,
        ] {
            for state in STATES {
                let n = typed
                    .iter()
                    .filter(|(t, s)| *t == token_type && *s == state)
                    .count();
                let _ = writeln!(
                    out,
                    "privacypass_keys_by_type{{token_type=\"{}\",state=\"{}\"}} {n}",
                    token_type.value(),
                    state.as_str()
                );
            }
        }
        out.push_str("# HELP privacypass_key_issuing_seconds_remaining Seconds until issuance with keys of the type stops unless another key is published (0: none issues).\n");
        out.push_str("# TYPE privacypass_key_issuing_seconds_remaining gauge\n");
        let infos = crate::rotation::key_infos(keys);
        for token_type in [
            TokenType::VoprfP384,
            TokenType::BlindRsa2048,
            TokenType::VoprfRistretto255,
        ] {
            let _ = writeln!(
                out,
                "privacypass_key_issuing_seconds_remaining{{token_type=\"{}\"}} {}",
                token_type.value(),
                crate::rotation::issuing_remaining(&infos, token_type, now)
            );
        }
        out.push_str("# HELP privacypass_rotations_total Steps of --rotate's key rotations (generate, extend, remove) done, and rotations failed.\n");
        out.push_str("# TYPE privacypass_rotations_total counter\n");
        for (i, outcome) in ["done", "failed"].iter().enumerate() {
            let _ = writeln!(
                out,
                "privacypass_rotations_total{{outcome=\"{outcome}\"}} {}",
                self.rotations[i].load(Ordering::Relaxed)
            );
        }
        out
    }
}
