//! Tables for people and dots while waiting.

use std::io::Write;

/// `println!` that does not panic when stdout is closed early (`connectorctl status | head`).
#[macro_export]
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// `print!` that does not panic when stdout is closed early.
#[macro_export]
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}

/// Left-aligned columns, two spaces apart, headers first.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    for row in &rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// "waiting for ... ." on stderr, a dot per poll, then the outcome.
pub struct Progress;

impl Progress {
    pub fn start(what: &str) -> Self {
        eprint!("{what} ");
        let _ = std::io::stderr().flush();
        Progress
    }

    pub fn tick(&self) {
        eprint!(".");
        let _ = std::io::stderr().flush();
    }

    pub fn finish(self, outcome: &str) {
        eprintln!(" {outcome}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let out = table(
            &["NAME", "STATE"],
            vec![
                vec!["a-long-name".into(), "RUNNING".into()],
                vec!["b".into(), "FAILED".into()],
            ],
        );
        assert_eq!(out, "NAME         STATE\na-long-name  RUNNING\nb            FAILED\n");
    }
}
