//! The one progress display of the crate: downloads (bytes, on standard error) and
//! burn-train epochs ([`crate::train::ProgressRenderer`], items, on standard output) draw
//! with it.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// What a [`Progress`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Bytes, shown in MB and MB/s.
    Bytes,
    /// Items (images, samples), shown as counts and items/s.
    Items,
}

/// Where a [`Progress`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// A progress line: on a terminal a bar redrawn in place (at most 10 times a second), in a
/// log one line per 10 % (fewer with [`Progress::with_log_lines`]).
///
/// `label [#######          ]  42.0 % 420/1000 items 85 items/s, 0m07s left`
///
/// # Example
/// ```
/// use burn_distill::progress::{Progress, Stream, Unit};
///
/// let mut progress = Progress::new("epoch 1/4 train", 1000, Unit::Items, Stream::Stderr);
/// for done in (100..=1000).step_by(100) {
///     progress.update(done);
/// }
/// assert!(progress.line(500).contains("50.0 %"));
/// progress.finish();
/// ```
#[derive(Debug)]
pub struct Progress {
    label: String,
    total: u64,
    unit: Unit,
    stream: Stream,
    started: Instant,
    last_draw: Instant,
    last_step: u64,
    log_steps: u64,
    log_final: bool,
    terminal: bool,
    drawn: bool,
}

impl Progress {
    /// Starts a display of `total` units of work named `label`.
    pub fn new(label: impl Into<String>, total: u64, unit: Unit, stream: Stream) -> Self {
        let now = Instant::now();
        let terminal = match stream {
            Stream::Stdout => std::io::stdout().is_terminal(),
            Stream::Stderr => std::io::stderr().is_terminal(),
        };
        Self {
            label: label.into(),
            total: total.max(1),
            unit,
            stream,
            started: now,
            last_draw: now,
            last_step: 0,
            log_steps: 10,
            log_final: true,
            terminal,
            drawn: false,
        }
    }

    /// In a log (not a terminal), write `lines` evenly spaced lines before the end (for
    /// `lines = 1`, one at 50 %) and none at 100 %, where the caller prints its own summary.
    #[must_use]
    pub fn with_log_lines(mut self, lines: u64) -> Self {
        self.log_steps = lines + 1;
        self.log_final = false;
        self
    }

    /// Seconds since the start.
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Reports `done` units finished so far.
    pub fn update(&mut self, done: u64) {
        if self.terminal {
            if self.last_draw.elapsed() >= Duration::from_millis(100) {
                self.last_draw = Instant::now();
                let line = format!("\r{}\x1b[K", self.line(done));
                self.write(&line);
                self.drawn = true;
            }
        } else {
            let step = done.min(self.total) * self.log_steps / self.total;
            if step > self.last_step {
                self.last_step = step;
                if step < self.log_steps || self.log_final {
                    let line = format!("{}\n", self.line(done));
                    self.write(&line);
                }
            }
        }
    }

    /// Ends the display: clears a bar drawn on a terminal (the caller prints its summary).
    pub fn finish(&mut self) {
        if self.terminal && self.drawn {
            self.write("\r\x1b[K");
            self.drawn = false;
        }
    }

    /// The text of the line for `done` units.
    pub fn line(&self, done: u64) -> String {
        let seconds = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = done as f64 / seconds;
        let fraction = (done as f64 / self.total as f64).min(1.0);
        let width = 20;
        let filled = ((fraction * width as f64) as usize).min(width);
        let left = if rate > 0.0 {
            self.total.saturating_sub(done) as f64 / rate
        } else {
            f64::INFINITY
        };
        let amount = match self.unit {
            Unit::Bytes => format!(
                "{:.1}/{:.1} MB {:.2} MB/s",
                done as f64 / 1e6,
                self.total as f64 / 1e6,
                rate / 1e6
            ),
            Unit::Items => format!("{done}/{} items {rate:.0} items/s", self.total),
        };
        format!(
            "{} [{}{}] {:5.1} % {amount}, {} left",
            self.label,
            "#".repeat(filled),
            " ".repeat(width - filled),
            100.0 * fraction,
            format_seconds(left)
        )
    }

    fn write(&self, text: &str) {
        // Progress output is best effort: a closed pipe must not stop the work.
        let _ = match self.stream {
            Stream::Stdout => {
                let mut out = std::io::stdout();
                out.write_all(text.as_bytes()).and_then(|()| out.flush())
            }
            Stream::Stderr => {
                let mut out = std::io::stderr();
                out.write_all(text.as_bytes()).and_then(|()| out.flush())
            }
        };
    }
}

/// `1h02m`, `3m07s`, or `?` for an unknown time.
pub fn format_seconds(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "?".into();
    }
    let s = seconds.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// A number in plain decimals with about four significant digits (`0`, `0.0123`, `2.731`,
/// `49.83`, `1250.5`), never in exponent form: what logs print for metrics.
///
/// ```
/// use burn_distill::progress::plain_number;
///
/// assert_eq!(plain_number(0.0), "0");
/// assert_eq!(plain_number(2.73051), "2.731");
/// assert_eq!(plain_number(0.000123456), "0.0001235");
/// assert_eq!(plain_number(49.8312), "49.83");
/// ```
pub fn plain_number(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = (3 - magnitude).clamp(1, 12) as usize;
    let text = format!("{value:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    if text == "-0" { "0".into() } else { text }
}
