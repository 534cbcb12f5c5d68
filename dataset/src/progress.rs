//! Progress bars shared by the long-running steps.
//!
//! At a terminal a bar redraws in place. Anywhere else (a log file, CI, `nohup`) it
//! writes its current line once a minute instead, so that a long step is neither silent
//! nor a wall of redraws.

use std::fmt;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

/// How often a bar writes a line when stderr is not a terminal.
pub const LOG_EVERY: Duration = Duration::from_secs(60);

/// A bar for `len` items of the named kind, e.g. `bar(29_994, "images")`.
pub fn bar(len: u64, unit: &str) -> ProgressBar {
    let template = if std::io::stderr().is_terminal() {
        format!(
            "{{spinner}} {{msg}} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} {unit} ({{per_sec}}, eta {{eta}})"
        )
    } else {
        // no bar graphics in a log: the numbers are what is read
        format!("{{msg}} [{{elapsed_precise}}] {{pos}}/{{len}} {unit} ({{per_sec}}, eta {{eta}})")
    };
    let style =
        ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::with_draw_target(Some(len), draw_target()).with_style(style)
}

/// A spinner for work whose length is not known in advance (a crawl's page count).
pub fn spinner(unit: &str) -> ProgressBar {
    let template =
        format!("{{spinner}} {{msg}} [{{elapsed_precise}}] {{pos}} {unit} ({{per_sec}})");
    let style = ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    ProgressBar::with_draw_target(None, draw_target()).with_style(style)
}

fn draw_target() -> ProgressDrawTarget {
    if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::term_like_with_hz(
            Box::new(LogLines::new(Box::new(std::io::stderr()), LOG_EVERY)),
            1,
        )
    }
}

/// A "terminal" for indicatif that is a log: cursor moves and clears are ignored, and a
/// drawn line is written only when `every` has passed since the last one written.
struct LogLines {
    out: Mutex<Box<dyn Write + Send>>,
    every: Duration,
    last: Mutex<Option<Instant>>,
}

impl LogLines {
    fn new(out: Box<dyn Write + Send>, every: Duration) -> Self {
        LogLines {
            out: Mutex::new(out),
            every,
            last: Mutex::new(None),
        }
    }

    fn due(&self) -> bool {
        let Ok(mut last) = self.last.lock() else {
            return false;
        };
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < self.every) {
            return false;
        }
        *last = Some(now);
        true
    }
}

impl fmt::Debug for LogLines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogLines")
            .field("every", &self.every)
            .finish()
    }
}

impl TermLike for LogLines {
    fn width(&self) -> u16 {
        120
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, line: &str) -> std::io::Result<()> {
        let line = line.trim();
        if line.is_empty() || !self.due() {
            return Ok(());
        }
        match self.out.lock() {
            Ok(mut out) => writeln!(out, "{line}"),
            Err(_) => Ok(()),
        }
    }
    fn write_str(&self, text: &str) -> std::io::Result<()> {
        self.write_line(text)
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        match self.out.lock() {
            Ok(mut out) => out.flush(),
            Err(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_bar_in_a_log_writes_a_line_now_and_then_instead_of_nothing() {
        let out = Shared::default();
        let log = LogLines::new(Box::new(out.clone()), Duration::from_millis(200));
        log.write_line("batches 1/100").unwrap();
        log.write_line("batches 2/100").unwrap(); // too soon: dropped
        log.clear_line().unwrap();
        std::thread::sleep(Duration::from_millis(250));
        log.write_line("batches 50/100").unwrap();
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text, "batches 1/100\nbatches 50/100\n");
    }

    #[test]
    fn a_bar_drawn_into_a_log_shows_its_numbers() {
        let out = Shared::default();
        let log = LogLines::new(Box::new(out.clone()), Duration::ZERO);
        let style = ProgressStyle::with_template("{pos}/{len} photos").unwrap();
        let bar = ProgressBar::with_draw_target(
            Some(10),
            ProgressDrawTarget::term_like_with_hz(Box::new(log), 20),
        )
        .with_style(style);
        bar.inc(4);
        bar.abandon(); // draws the final state
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("4/10 photos"), "{text:?}");
    }
}
