//! The facilitator's screen: draws a [`Session`] and feeds it the terminal's keys and the
//! wall clock. Thin on purpose; every rule is in the session. Works in small and colourless
//! terminals (`NO_COLOR`): colour only repeats what the words already say.

use std::io::IsTerminal;
use std::time::Duration;

use jiff::Timestamp;
use ratatui::crossterm::event::{self, Event as TermEvent, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;

use super::session::{clock, Key, Phase, Session};
use super::TabletopError;
use crate::timeline::EventKind;

/// What the screen shows before `t0`, besides the session: the scenario's brief and what the
/// simulation predicts, in words.
pub struct Brief {
    /// Description and fault.
    pub lines: Vec<String>,
    /// The prediction, or why there is none.
    pub prediction: String,
}

/// Runs the exercise on this terminal until everything is written down.
pub fn run(session: &mut Session, brief: &Brief) -> Result<(), TabletopError> {
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        return Err(TabletopError::NoTerminal);
    }
    let colour = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut terminal = ratatui::try_init().map_err(TabletopError::Terminal)?;
    let result = (|| {
        while session.phase != Phase::Done {
            session.tick(Timestamp::now());
            terminal.draw(|f| draw(f, session, brief, colour)).map_err(TabletopError::Terminal)?;
            if !event::poll(Duration::from_millis(200)).map_err(TabletopError::Terminal)? {
                continue;
            }
            // Resizes need nothing but the redraw above.
            if let TermEvent::Key(k) = event::read().map_err(TabletopError::Terminal)? {
                if k.kind == KeyEventKind::Release {
                    continue;
                }
                if k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c') {
                    session.tick(Timestamp::now());
                    return if session.interrupt() { Ok(()) } else { Err(TabletopError::Interrupted) };
                }
                let key = match k.code {
                    KeyCode::Char(c) => Key::Char(c),
                    KeyCode::Enter => Key::Enter,
                    KeyCode::Backspace => Key::Backspace,
                    KeyCode::Esc => Key::Esc,
                    _ => continue,
                };
                session.tick(Timestamp::now());
                session.key(key);
            }
        }
        Ok(())
    })();
    ratatui::restore();
    result
}

fn draw(f: &mut Frame, s: &Session, brief: &Brief, colour: bool) {
    let paint = |style: Style| if colour { style } else { Style::new() };
    let alert = paint(Style::new().fg(Color::Red).add_modifier(Modifier::BOLD));
    let news = paint(Style::new().fg(Color::Yellow));
    let [top, body, bottom] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(1), Constraint::Length(3)]).areas(f.area());

    let state = match s.phase {
        Phase::Before => "not started".to_string(),
        Phase::During if s.paused => "PAUSED".into(),
        Phase::During => "running".into(),
        Phase::After | Phase::Done => "finished".into(),
    };
    f.render_widget(
        Line::from(format!("{}  T+{}  {state}", s.scenario, clock(s.clock_us)))
            .style(paint(Style::new().add_modifier(Modifier::REVERSED))),
        top,
    );

    let mut lines: Vec<Line> = vec![];
    match s.phase {
        Phase::Before => {
            // The shortest first, so that a small terminal still shows who is in the room
            // and what the model expects.
            let people: Vec<String> = s.participants().map(|(n, r)| format!("{n} ({r})")).collect();
            let people = if people.is_empty() { "nobody yet".into() } else { people.join(", ") };
            lines.push(Line::from(format!("In the room: {people}")));
            lines.push(Line::from(format!("Prediction: {}", brief.prediction)));
            lines.extend(brief.lines.iter().map(|l| Line::from(l.clone())));
        }
        Phase::During => {
            match s.current_step() {
                Some(step) => {
                    let left = step.budget_us.map(|b| match b.checked_sub(s.step_elapsed_us()) {
                        Some(left) => format!("{} left", clock(left)),
                        None => format!("OVER by {}", clock(s.step_elapsed_us() - b)),
                    });
                    lines.push(Line::from(format!("Step {}/{}: {}", s.current + 1, s.steps.len(), step.name)));
                    let target = step.target_us.map(|t| match t.checked_sub(s.clock_us) {
                        Some(left) => format!("; target: done by {} ({} left)", clock(t), clock(left)),
                        None => format!("; target: done by {}, PASSED", clock(t)),
                    });
                    lines.push(Line::from(format!(
                        "  {} in, {}{}",
                        clock(s.step_elapsed_us()),
                        left.unwrap_or_else(|| "no budget".into()),
                        target.unwrap_or_default()
                    )));
                }
                None => lines.push(Line::from("All steps marked. R when restored, q to finish.")),
            }
            let detected = if s.marked(&EventKind::Detected) { "detected" } else { "not detected" };
            let restored = if s.marked(&EventKind::Restored) { "restored" } else { "not restored" };
            lines.push(Line::from(format!("{detected}, {restored}")));
            lines.extend(s.overruns().into_iter().map(|o| Line::styled(o, alert)));
            lines.extend(
                s.shown_injects()
                    .iter()
                    .rev()
                    .map(|i| Line::styled(format!("INJECT {}: {}", clock(i.at.0.as_micros() as u64), i.text), news)),
            );
            // What the room said last, so the facilitator sees it was taken down.
            let said: Vec<Line> = s
                .events
                .iter()
                .filter_map(|e| match &e.kind {
                    EventKind::Note { text } => Some(format!("{} note: {text}", clock(e.t_us))),
                    EventKind::Decision { text } => Some(format!("{} decision: {text}", clock(e.t_us))),
                    EventKind::Escalated { text, .. } => Some(format!("{} escalated: {text}", clock(e.t_us))),
                    _ => None,
                })
                .rev()
                .take(3)
                .map(Line::from)
                .collect();
            lines.extend(said.into_iter().rev());
            // Last, so that a small terminal keeps the alerts and injects above.
            if let Some(step) = s.current_step() {
                lines.extend(step.instruction.iter().map(|l| Line::from(format!("  | {l}"))));
            }
        }
        Phase::After | Phase::Done => {
            lines.push(Line::from("The exercise is over. Lessons learned, then action items."));
            lines.extend(s.events.iter().filter_map(|e| match &e.kind {
                EventKind::Lesson { text } => Some(Line::from(format!("lesson: {text}"))),
                EventKind::ActionItem { what, owner, due } => {
                    Some(Line::from(format!("action: {what} ({owner}, {due})")))
                }
                _ => None,
            }));
        }
    }
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(Block::new()), body);

    let help = match (&s.typing, s.phase) {
        (Some((entry, text)), _) => vec![Line::from(format!("{}:", entry.prompt())), Line::from(format!("> {text}_"))],
        (None, Phase::During) if s.confirming_finish => vec![
            Line::from("Steps are open or nothing is restored."),
            Line::from("y: end the exercise; any other key goes on"),
        ],
        (None, Phase::Before) => vec![Line::from("Enter start (t0)  a add participant")],
        (None, _) => vec![
            Line::from("d done f failed s skip D detected R restored"),
            Line::from("n note c decision e escalate p pause q finish"),
        ],
    };
    f.render_widget(Paragraph::new(help).wrap(Wrap { trim: false }), bottom);
}
