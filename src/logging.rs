//! Logging for both binaries: plain lines on a terminal, priority-prefixed lines under
//! journald.

use std::io::IsTerminal;
use tracing_subscriber::fmt::FormatFields as _;

/// Sets the global subscriber: only errors when `quiet`, else `default` (at least info under
/// journald) made one level more verbose by each -v, down to debug.
pub fn init(quiet: bool, verbose: u8, default: tracing::Level) {
    use tracing::Level;
    // journald stamps each line itself and reads its priority from a `<N>` prefix.
    let under_journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let base = if under_journal {
        default.max(Level::INFO)
    } else {
        default
    };
    let steps = [Level::WARN, Level::INFO, Level::DEBUG];
    let from = steps.iter().position(|l| *l == base).unwrap_or(0);
    let level = if quiet {
        Level::ERROR
    } else {
        steps[(from + usize::from(verbose)).min(steps.len() - 1)]
    };
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level);
    if under_journal {
        // Fields are formatted by the builder's writer, which colours them unless told not to.
        builder.with_ansi(false).event_format(JournalFormat).init();
    } else {
        builder
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .without_time()
            .init();
    }
}

/// One line per event with a syslog priority prefix, which journald turns into the entry's
/// priority (so `journalctl -p warning` shows redwarden's warnings).
struct JournalFormat;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for JournalFormat
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let priority = match *event.metadata().level() {
            tracing::Level::ERROR => 3,
            tracing::Level::WARN => 4,
            tracing::Level::INFO => 6,
            _ => 7,
        };
        write!(writer, "<{priority}>redwarden: ")?;
        ctx.format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}
