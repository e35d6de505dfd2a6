//! Logging for both binaries: plain lines on a terminal, priority-prefixed lines under
//! journald. A subscriber of its own rather than tracing-subscriber's formatter: redwarden
//! logs events with a few fields and no spans, and the formatter's code is resident in the
//! front door for its whole life (its memory follows its binary's size).

use std::fmt::{self, Write as _};
use std::io::{IsTerminal, Write as _};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata};

/// Sets the global subscriber: only errors when `quiet`, else `default` (at least info under
/// journald) made one level more verbose by each -v, down to debug.
pub fn init(quiet: bool, verbose: u8, default: Level) {
    // journald stamps each line itself and reads its priority from a `<N>` prefix.
    let under_journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let base = if under_journal {
        default.max(Level::INFO)
    } else {
        default
    };
    let steps = [Level::WARN, Level::INFO, Level::DEBUG];
    let from = steps.iter().position(|l| *l == base).unwrap_or(0);
    let max = if quiet {
        Level::ERROR
    } else {
        steps[(from + usize::from(verbose)).min(steps.len() - 1)]
    };
    let style = if under_journal {
        Style::Journal
    } else if std::io::stderr().is_terminal() {
        Style::Colour
    } else {
        Style::Plain
    };
    // One write per line, so that lines from two threads do not interleave; a log line that
    // cannot be written has nowhere else to go.
    let to_stderr = |line: String| {
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    };
    // A second init (tests that run both entry points) keeps the first subscriber.
    let _ = tracing::subscriber::set_global_default(Lines {
        max,
        style,
        write: to_stderr,
    });
}

#[derive(Clone, Copy)]
enum Style {
    /// `<4>redwarden: message field=value`: journald turns the prefix into the entry's
    /// priority (so `journalctl -p warning` shows redwarden's warnings).
    Journal,
    /// ` WARN message field=value`, the level coloured.
    Colour,
    Plain,
}

/// Formats each event as one line and hands it to `write`.
struct Lines<W> {
    max: Level,
    style: Style,
    write: W,
}

impl<W> Lines<W> {
    fn enabled_at(&self, level: &Level) -> bool {
        // tracing orders levels by verbosity: ERROR is the smallest.
        *level <= self.max
    }
}

impl<W: Fn(String) + Send + Sync + 'static> tracing::Subscriber for Lines<W> {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if self.enabled_at(metadata.level()) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(self.max.into())
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.enabled_at(metadata.level())
    }

    // Spans carry nothing to print: every span is the same inert one.
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        (self.write)(format_line(self.style, event));
    }
}

/// The line for one event: the level (or its priority), the message, then the other fields
/// as `name=value`.
fn format_line(style: Style, event: &Event<'_>) -> String {
    let mut fields = Fields::default();
    event.record(&mut fields);
    let level = event.metadata().level();
    let mut line = match style {
        Style::Journal => {
            let priority = match *level {
                Level::ERROR => 3,
                Level::WARN => 4,
                Level::INFO => 6,
                _ => 7,
            };
            format!("<{priority}>redwarden: ")
        }
        Style::Colour => {
            let colour = match *level {
                Level::ERROR => 31,
                Level::WARN => 33,
                Level::INFO => 32,
                Level::DEBUG => 34,
                _ => 35,
            };
            format!("\x1b[{colour}m{level:>5}\x1b[0m ")
        }
        Style::Plain => format!("{level:>5} "),
    };
    line.push_str(&fields.message);
    line.push_str(&fields.rest);
    line.push('\n');
    line
}

#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `{:?}` of the message, which tracing records as format_args!, is its text.
        let _ = if field.name() == "message" {
            write!(self.message, "{value:?}")
        } else {
            write!(self.rest, " {}={value:?}", field.name())
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `log` under a subscriber of `style` that collects lines instead of writing them.
    fn lines_of(style: Style, log: impl FnOnce()) -> Vec<String> {
        use std::sync::{Arc, Mutex};
        let collected = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&collected);
        let subscriber = Lines {
            max: Level::INFO,
            style,
            write: move |line| sink.lock().unwrap().push(line),
        };
        tracing::subscriber::with_default(subscriber, log);
        let lines = collected.lock().unwrap().clone();
        lines
    }

    #[test]
    fn journal_lines_carry_the_priority_message_and_fields() {
        let lines = lines_of(Style::Journal, || {
            tracing::warn!(files = 3, path = "a b", "changed in {}", "both folders");
            tracing::error!("gone");
        });
        assert_eq!(
            lines,
            [
                "<4>redwarden: changed in both folders files=3 path=\"a b\"\n",
                "<3>redwarden: gone\n"
            ]
        );
    }

    #[test]
    fn levels_above_the_maximum_are_not_written() {
        let lines = lines_of(Style::Plain, || {
            tracing::debug!("hidden");
            tracing::info!(step = "user", "shown");
        });
        assert_eq!(lines, [" INFO shown step=\"user\"\n"]);
    }

    #[test]
    fn terminal_lines_colour_only_the_level() {
        let lines = lines_of(Style::Colour, || tracing::warn!("careful"));
        assert_eq!(lines, ["\x1b[33m WARN\x1b[0m careful\n"]);
    }
}
