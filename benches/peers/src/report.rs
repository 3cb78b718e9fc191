//! Per-round figures of the four systems, and the table that shows them:
//! medians, and each system's ratio to the raw baseline of the same round
//! (median and min-max of those paired ratios).

use std::fmt::Write as _;

/// The systems, in table order.
pub const SYSTEMS: [&str; 4] = ["raw", "mobility", "ractor", "kameo"];

/// How a figure is shown.
#[derive(Clone, Copy)]
pub enum Unit {
    /// Nanoseconds per operation.
    Nanos,
    /// Nanoseconds per message, shown with the rate.
    NanosRate,
    /// Bytes.
    Bytes,
}

/// One figure: a value per round for each system (or why there is none).
pub struct Row {
    pub name: String,
    pub unit: Unit,
    pub values: [Vec<f64>; 4],
    pub na: [Option<String>; 4],
}

impl Row {
    pub fn new(name: &str, unit: Unit) -> Self {
        Row {
            name: name.to_owned(),
            unit,
            values: Default::default(),
            na: Default::default(),
        }
    }

    /// Records the value of system `sys` in this round.
    pub fn push(&mut self, sys: usize, value: f64) {
        self.values[sys].push(value);
    }

    /// Marks system `sys` as having no figure, for `reason`.
    pub fn na(&mut self, sys: usize, reason: &str) {
        self.na[sys].get_or_insert_with(|| reason.to_owned());
    }

    /// The per-round ratios of `sys` to raw (rounds where both measured).
    fn ratios(&self, sys: usize) -> Vec<f64> {
        let mut r: Vec<f64> = self.values[sys]
            .iter()
            .zip(&self.values[0])
            .map(|(v, raw)| v / raw)
            .collect();
        r.sort_by(f64::total_cmp);
        r
    }

    fn cell(&self, sys: usize) -> String {
        if let Some(reason) = &self.na[sys] {
            return format!("n/a ({reason})");
        }
        if self.values[sys].is_empty() {
            return "n/a".to_owned();
        }
        let value = show(self.unit, median(&self.values[sys]));
        if sys == 0 {
            return value;
        }
        let r = self.ratios(sys);
        if r.is_empty() {
            return value;
        }
        format!(
            "{value}; {:.2}x ({:.2}-{:.2})",
            median(&r),
            r[0],
            r[r.len() - 1]
        )
    }
}

pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn show(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Nanos => nanos(v),
        Unit::NanosRate => {
            let rate = 1e9 / v;
            let rate = if rate >= 1e6 {
                format!("{:.2} M/s", rate / 1e6)
            } else {
                format!("{:.0} k/s", rate / 1e3)
            };
            format!("{} ({rate})", nanos(v))
        }
        Unit::Bytes => format!("{:.0} B", v),
    }
}

fn nanos(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1} us", v / 1e3)
    } else if v >= 1_000.0 {
        format!("{:.2} us", v / 1e3)
    } else {
        format!("{:.0} ns", v)
    }
}

/// The table in Markdown: one row per figure; each cell the median, then
/// (but for raw) the median of the paired per-round ratios to raw and
/// their min-max.
pub fn table(title: &str, rows: &[Row]) -> String {
    let mut out = String::new();
    let rounds = rows.iter().map(|r| r.values[0].len()).max().unwrap_or(0);
    let _ = writeln!(out, "\n### {title} ({rounds} rounds)\n");
    let _ = writeln!(out, "| figure | {} |", SYSTEMS.join(" | "));
    let _ = writeln!(out, "|---|---|---|---|---|");
    for row in rows {
        let cells: Vec<String> = (0..4).map(|s| row.cell(s)).collect();
        let _ = writeln!(out, "| {} | {} |", row.name, cells.join(" | "));
    }
    out
}

/// The order in which the systems run in round `round`: rotated, so no
/// system always runs first or last.
pub fn order(round: usize) -> [usize; 4] {
    let mut o = [0, 1, 2, 3];
    o.rotate_left(round % 4);
    o
}
