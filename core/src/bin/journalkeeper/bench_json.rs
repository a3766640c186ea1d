//! The JSON shapes every benchmark line shares: a summary's fields under a prefix, and
//! samples in milliseconds with a tenth of a millisecond.

use journalkeeper::cli::failover::Summary;
use serde_json::{Value, json};

pub fn add_summary(line: &mut Value, prefix: &str, s: Summary) {
    line[format!("{prefix}min_ms")] = json!(s.min_ms);
    line[format!("{prefix}median_ms")] = json!(s.median_ms);
    line[format!("{prefix}p90_ms")] = json!(s.p90_ms);
    line[format!("{prefix}max_ms")] = json!(s.max_ms);
}

pub fn ms_list(d: &[std::time::Duration]) -> Vec<f64> {
    d.iter()
        .map(|d| (d.as_secs_f64() * 10_000.0).round() / 10.0)
        .collect()
}
