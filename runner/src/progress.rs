//! The progress line of a long command (`run`, `mutants`, `fuzz`, `audit`):
//! an indicatif bar on stderr, drawn only when stderr is a terminal and the
//! command is not `--quiet`. Anywhere else (a pipe, a file, CI logs, tests)
//! it is hidden and every call does nothing, so logs stay clean.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar, or nothing.
pub(crate) struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar over `len` steps (a spinner when the count is unknown) whose
    /// line starts with `what`; hidden when `quiet` or stderr is not a
    /// terminal.
    pub(crate) fn new(what: &str, len: Option<u64>, quiet: bool) -> Progress {
        Progress::to(what, len, !quiet && std::io::stderr().is_terminal())
    }

    fn to(what: &str, len: Option<u64>, visible: bool) -> Progress {
        if !visible {
            return Progress {
                bar: ProgressBar::hidden(),
            };
        }
        let (bar, template) = match len {
            Some(n) => (
                ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()),
                "{prefix} [{bar:30}] {pos}/{len} {elapsed} {wide_msg}",
            ),
            None => (
                ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
                "{prefix} {spinner} {pos} {elapsed} {wide_msg}",
            ),
        };
        // The templates are constants: a parse error would be a bug here,
        // and the default style is still a progress line.
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(what.to_string());
        // Redrawn on a timer too, so the elapsed time moves while one long
        // step runs.
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress { bar }
    }

    /// Whether anything is drawn.
    pub(crate) fn is_visible(&self) -> bool {
        !self.bar.is_hidden()
    }

    /// One more step done; `message` says which.
    pub(crate) fn step(&self, message: impl Into<String>) {
        self.bar.set_message(message.into());
        self.bar.inc(1);
    }

    /// A line printed above the bar (nothing when hidden).
    pub(crate) fn println(&self, line: impl AsRef<str>) {
        self.bar.println(line);
    }

    /// Removes the bar, leaving the lines printed above it.
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // A command that returns early (an error, a finding) leaves no
        // half-drawn bar behind.
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_or_not_a_terminal_draws_nothing() {
        // Tests run with stderr captured or piped: never a terminal here.
        let p = Progress::new("x", Some(3), false);
        if !std::io::stderr().is_terminal() {
            assert!(!p.is_visible());
        }
        assert!(!Progress::new("x", Some(3), true).is_visible());
        assert!(!Progress::to("x", None, false).is_visible());
        p.step("a");
        p.println("above");
        p.finish();
    }
}
