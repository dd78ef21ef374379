//! Progress bars on a terminal; silent when stderr is not one.

use indicatif::{ProgressBar, ProgressStyle};

/// A byte-counting progress bar for one phase of the ingest.
#[derive(Debug)]
pub(crate) struct Progress {
    bar: ProgressBar,
}

impl Progress {
    pub(crate) fn bytes(phase: &'static str, total: u64) -> Progress {
        Progress::new(
            phase,
            total,
            "{prefix:>16} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
        )
    }

    /// A progress bar counting steps (key partition groups).
    pub(crate) fn steps(phase: &'static str, total: u64) -> Progress {
        Progress::new(phase, total, "{prefix:>16} [{bar:40}] {pos}/{len} ({eta})")
    }

    /// Progress nobody sees (a worker's: its coordinator shows one bar).
    pub(crate) fn hidden() -> Progress {
        Progress {
            bar: ProgressBar::hidden(),
        }
    }

    fn new(phase: &'static str, total: u64, template: &str) -> Progress {
        let bar = ProgressBar::new(total);
        let style = ProgressStyle::with_template(template)
            .map(|style| style.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(phase);
        Progress { bar }
    }

    pub(crate) fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl crate::extract::ReadProgress for Progress {
    fn total(&self, bytes: u64) {
        self.bar.set_length(bytes);
    }

    fn advance(&self, bytes: u64) {
        Progress::advance(self, bytes);
    }
}
