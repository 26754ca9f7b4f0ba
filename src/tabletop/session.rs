//! The exercise as a state machine: fed keys and clock readings, it keeps the clock, the
//! current step, the injects due and the room's marks as timeline events. No terminal here,
//! so every rule is tested by feeding it; [`super::console`] only draws it and feeds it.

use jiff::{SignedDuration, Timestamp};

use crate::scenario::{Inject, Scenario, StepAction};
use crate::timeline::{Event, EventKind, Micros, Outcome, Timeline};
use crate::word::EnvironmentKind;

/// A key, as the session understands keys (the console maps the terminal's to these).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// A printable character.
    Char(char),
    /// Enter: commits what is typed, or starts the exercise.
    Enter,
    /// Removes the last character typed.
    Backspace,
    /// Leaves what is being typed.
    Esc,
}

/// Where the exercise is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The brief is on screen; participants are listed; the clock has not started.
    Before,
    /// The clock runs from `t0`.
    During,
    /// The clock stopped; lessons and action items are typed in.
    After,
    /// Everything is written down: the record can be made.
    Done,
}

/// What a line being typed will become.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A participant, `Name:role`.
    Participant,
    /// A note at the current time.
    Note,
    /// A decision at the current time.
    Decision,
    /// An escalation at the current time: to whom, or why.
    Escalation,
    /// A lesson learned.
    Lesson,
    /// An action item: what is to be done.
    ActionWhat,
    /// An action item: who owns it.
    ActionOwner,
    /// An action item: by when.
    ActionDue,
}

impl Entry {
    /// What the console asks.
    pub fn prompt(self) -> &'static str {
        match self {
            Entry::Participant => "participant Name:role (Enter on an empty line when all are listed)",
            Entry::Note => "note",
            Entry::Decision => "decision",
            Entry::Escalation => "escalate to / why",
            Entry::Lesson => "lesson learned (Enter on an empty line when done)",
            Entry::ActionWhat => "action item: what (Enter on an empty line when done)",
            Entry::ActionOwner => "action item: owner",
            Entry::ActionDue => "action item: due (e.g. 2026-12-15)",
        }
    }
}

/// One step as the room works through it.
#[derive(Clone, Debug)]
pub struct StepPlan {
    /// Its name.
    pub name: String,
    /// What the room does, as the runbook says it: the manual text (its first line dropped
    /// when it only repeats the name), or the automated action in words.
    pub instruction: Vec<String>,
    /// Its budget.
    pub budget_us: Option<Micros>,
    /// Its time target (`targets.steps`): done within this long of `t0`.
    pub target_us: Option<Micros>,
    /// Past this, an escalation threshold is shown and recorded.
    pub escalate_after_us: Option<Micros>,
}

/// A facilitated exercise of one scenario.
#[derive(Clone, Debug)]
pub struct Session {
    /// The scenario's name.
    pub scenario: String,
    /// The steps, in order.
    pub steps: Vec<StepPlan>,
    injects: Vec<Inject>,
    procedure_escalate_after_us: Option<Micros>,
    /// The deadline, from `t0`.
    pub deadline_us: Micros,
    /// Where the exercise is.
    pub phase: Phase,
    /// The exercise clock since `t0`, breaks left out.
    pub clock_us: Micros,
    /// The wall clock at the last reading.
    now: Timestamp,
    /// Whether the clock is stopped for a break.
    pub paused: bool,
    /// The step under way (`steps.len()` once all are marked).
    pub current: usize,
    step_started_us: Micros,
    escalated_step: bool,
    escalated_procedure: bool,
    /// How many injects have been shown (they are shown in time order).
    pub shown: usize,
    /// `q` was pressed while steps were unmarked or nothing was restored: the next key says
    /// whether the exercise ends (`y`) or goes on.
    pub confirming_finish: bool,
    /// The line being typed, and what it is for.
    pub typing: Option<(Entry, String)>,
    action: (String, String),
    /// Everything recorded so far.
    pub events: Vec<Event>,
}

impl Session {
    /// A session for `scenario`, its wall clock at `now`, with the participants already known.
    pub fn new(scenario: &Scenario, participants: &[(String, String)], now: Timestamp) -> Session {
        let us = |d: crate::duration::Dur| d.0.as_micros() as Micros;
        let mut injects = scenario.injects.clone();
        injects.sort_by_key(|i| i.at);
        let mut session = Session {
            scenario: scenario.name.clone(),
            steps: scenario
                .steps
                .iter()
                .map(|s| StepPlan {
                    name: s.name.clone(),
                    instruction: instruction(&s.name, &s.action),
                    budget_us: s.budget.map(us),
                    target_us: s.target.map(us),
                    escalate_after_us: s.escalate_after.map(us),
                })
                .collect(),
            injects,
            procedure_escalate_after_us: scenario.procedure_escalate_after.map(us),
            deadline_us: us(scenario.deadline),
            phase: Phase::Before,
            clock_us: 0,
            now,
            paused: false,
            current: 0,
            step_started_us: 0,
            escalated_step: false,
            escalated_procedure: false,
            shown: 0,
            confirming_finish: false,
            typing: None,
            action: Default::default(),
            events: vec![],
        };
        session.record(EventKind::DrillStarted {
            scenario: scenario.name.clone(),
            environment: EnvironmentKind::Tabletop,
        });
        for (name, role) in participants {
            session.record(EventKind::Participant { name: name.clone(), role: role.clone() });
        }
        if participants.is_empty() {
            session.typing = Some((Entry::Participant, String::new()));
        }
        session
            .record(EventKind::FaultInjected { fault: scenario.fault.kind(), description: scenario.fault.describe() });
        session
    }

    /// The injects shown so far, oldest first.
    pub fn shown_injects(&self) -> &[Inject] {
        &self.injects[..self.shown]
    }

    /// The next inject not yet shown.
    pub fn next_inject(&self) -> Option<&Inject> {
        self.injects.get(self.shown)
    }

    /// The step under way, if one is.
    pub fn current_step(&self) -> Option<&StepPlan> {
        (self.phase == Phase::During).then(|| self.steps.get(self.current)).flatten()
    }

    /// How long the step under way has run.
    pub fn step_elapsed_us(&self) -> Micros {
        self.clock_us.saturating_sub(self.step_started_us)
    }

    /// The participants listed.
    pub fn participants(&self) -> impl Iterator<Item = (&str, &str)> {
        self.events.iter().filter_map(|e| match &e.kind {
            EventKind::Participant { name, role } => Some((name.as_str(), role.as_str())),
            _ => None,
        })
    }

    /// Whether the room has marked this mark (`Detected`, `Restored`).
    pub fn marked(&self, kind: &EventKind) -> bool {
        self.events.iter().any(|e| &e.kind == kind)
    }

    /// Escalation thresholds passed so far, in words, for the screen.
    pub fn overruns(&self) -> Vec<String> {
        let mut out = vec![];
        if let Some(step) = self.current_step() {
            if let Some(budget) = step.budget_us.filter(|b| self.step_elapsed_us() > *b) {
                out.push(format!(
                    "step {} over its budget by {}",
                    self.current + 1,
                    clock(self.step_elapsed_us() - budget)
                ));
            }
        }
        for e in &self.events {
            if let EventKind::Escalation { step, after_us } = &e.kind {
                out.push(match step {
                    Some(s) => format!("ESCALATE: step {} passed its threshold ({})", s + 1, clock(*after_us)),
                    None => format!("ESCALATE: the procedure passed its threshold ({})", clock(*after_us)),
                });
            }
        }
        if self.clock_us > self.deadline_us {
            out.push(format!("past the deadline ({})", clock(self.deadline_us)));
        }
        out
    }

    /// A clock reading: the exercise clock runs on while started and not paused; injects
    /// fall due and escalation thresholds pass.
    pub fn tick(&mut self, now: Timestamp) {
        let elapsed = now.duration_since(self.now).max(SignedDuration::ZERO);
        self.now = now;
        if self.phase != Phase::During || self.paused {
            return;
        }
        self.clock_us += elapsed.as_micros() as Micros;
        while let Some(inject) = self.injects.get(self.shown).filter(|i| i.at.0.as_micros() as Micros <= self.clock_us)
        {
            let kind = EventKind::InjectShown { inject: self.shown, text: inject.text.clone() };
            self.shown += 1;
            self.record(kind);
        }
        let step_threshold = self.current_step().and_then(|s| s.escalate_after_us);
        if let Some(after_us) = step_threshold.filter(|t| !self.escalated_step && self.step_elapsed_us() > *t) {
            self.escalated_step = true;
            self.record(EventKind::Escalation { step: Some(self.current), after_us });
        }
        if let Some(after_us) =
            self.procedure_escalate_after_us.filter(|t| !self.escalated_procedure && self.clock_us > *t)
        {
            self.escalated_procedure = true;
            self.record(EventKind::Escalation { step: None, after_us });
        }
    }

    /// A key pressed.
    pub fn key(&mut self, key: Key) {
        if let Some((entry, mut text)) = self.typing.take() {
            match key {
                Key::Char(c) => {
                    text.push(c);
                    self.typing = Some((entry, text));
                }
                Key::Backspace => {
                    text.pop();
                    self.typing = Some((entry, text));
                }
                Key::Esc => self.typing = self.after_entry(entry, None),
                Key::Enter => self.typing = self.after_entry(entry, Some(text.trim().to_string())),
            }
            return;
        }
        if std::mem::take(&mut self.confirming_finish) {
            if key == Key::Char('y') {
                self.finish();
            }
            return;
        }
        match (self.phase, key) {
            (Phase::Before, Key::Enter) => self.start(),
            (Phase::Before, Key::Char('a')) => self.typing = Some((Entry::Participant, String::new())),
            (Phase::During, Key::Char(c)) => self.mark(c),
            _ => {}
        }
    }

    /// What a finished line records, and what is typed next.
    fn after_entry(&mut self, entry: Entry, text: Option<String>) -> Option<(Entry, String)> {
        let text = text.filter(|t| !t.is_empty());
        let next = |e: Entry| Some((e, String::new()));
        match (entry, text) {
            (Entry::Participant, Some(t)) => {
                let (name, role) = t.split_once(':').unwrap_or((&t, "participant"));
                self.record(EventKind::Participant { name: name.trim().into(), role: role.trim().into() });
                next(Entry::Participant)
            }
            (Entry::Note, Some(text)) => self.record_and(EventKind::Note { text }),
            (Entry::Decision, Some(text)) => self.record_and(EventKind::Decision { text }),
            (Entry::Escalation, Some(text)) => {
                let step = (self.current < self.steps.len()).then_some(self.current);
                self.record_and(EventKind::Escalated { step, text })
            }
            (Entry::Lesson, Some(text)) => {
                self.record(EventKind::Lesson { text });
                next(Entry::Lesson)
            }
            (Entry::Lesson, None) => next(Entry::ActionWhat),
            (Entry::ActionWhat, Some(what)) => {
                self.action.0 = what;
                next(Entry::ActionOwner)
            }
            (Entry::ActionOwner, owner) => {
                self.action.1 = owner.unwrap_or_else(|| "unassigned".into());
                next(Entry::ActionDue)
            }
            (Entry::ActionDue, due) => {
                let (what, owner) = std::mem::take(&mut self.action);
                self.record(EventKind::ActionItem { what, owner, due: due.unwrap_or_else(|| "not set".into()) });
                next(Entry::ActionWhat)
            }
            (Entry::ActionWhat, None) => {
                self.close();
                None
            }
            (Entry::Participant | Entry::Note | Entry::Decision | Entry::Escalation, None) => None,
        }
    }

    fn record_and(&mut self, kind: EventKind) -> Option<(Entry, String)> {
        self.record(kind);
        None
    }

    /// `t0`: the clock starts on the first step.
    fn start(&mut self) {
        self.phase = Phase::During;
        // What was set up before (the exercise, who is in the room) takes effect at `t0`, as
        // its exercise time (0) says: reports place `t0` by the wall clock of the first event.
        let now = self.now;
        self.events.iter_mut().for_each(|e| e.at = now);
        self.record(EventKind::FaultActive);
        self.start_step();
    }

    fn start_step(&mut self) {
        self.step_started_us = self.clock_us;
        self.escalated_step = false;
        if let Some(step) = self.steps.get(self.current) {
            let name = step.name.clone();
            self.record(EventKind::StepStarted { step: self.current, name });
        }
    }

    /// A key during the exercise.
    fn mark(&mut self, c: char) {
        let has_step = self.current < self.steps.len();
        match c {
            'd' | 'f' if has_step => {
                self.end_step(EventKind::StepFinished { step: self.current, ok: c == 'd', detail: None })
            }
            's' if has_step => {
                self.end_step(EventKind::StepSkipped { step: self.current, reason: "skipped by the room".into() })
            }
            'D' if !self.marked(&EventKind::Detected) => self.record(EventKind::Detected),
            'R' if !self.marked(&EventKind::Restored) => self.record(EventKind::Restored),
            'n' => self.typing = Some((Entry::Note, String::new())),
            'c' => self.typing = Some((Entry::Decision, String::new())),
            'e' => self.typing = Some((Entry::Escalation, String::new())),
            'p' => {
                self.paused = !self.paused;
                self.record(if self.paused { EventKind::Paused } else { EventKind::Resumed });
            }
            // Ending with work open is asked again: one stray key must not end a meeting.
            'q' if has_step || !self.marked(&EventKind::Restored) => self.confirming_finish = true,
            'q' => self.finish(),
            _ => {}
        }
    }

    /// The clock stops for good; lessons and action items are asked for.
    fn finish(&mut self) {
        if self.paused {
            self.paused = false;
            self.record(EventKind::Resumed);
        }
        self.phase = Phase::After;
        self.typing = Some((Entry::Lesson, String::new()));
    }

    fn end_step(&mut self, kind: EventKind) {
        self.record(kind);
        self.current += 1;
        self.start_step();
    }

    /// The facilitator stopped the exercise (Ctrl-C): what the room marked is kept, ending
    /// `cancelled`, since a result is never lost once the exercise ran. `false` before `t0`:
    /// nothing ran, so there is nothing to keep.
    pub fn interrupt(&mut self) -> bool {
        if self.phase == Phase::Before {
            return false;
        }
        if self.phase != Phase::Done {
            self.typing = None;
            self.record(EventKind::Cancelled);
            self.record(EventKind::DrillEnded { outcome: Outcome::Cancelled });
            self.phase = Phase::Done;
        }
        true
    }

    /// The exercise is over: how it ended is what the room declared.
    fn close(&mut self) {
        let outcome = if self.marked(&EventKind::Restored) {
            Outcome::Recovered
        } else if self.clock_us > self.deadline_us {
            Outcome::DeadlineReached
        } else {
            Outcome::Cancelled
        };
        self.record(EventKind::DrillEnded { outcome });
        self.phase = Phase::Done;
    }

    fn record(&mut self, kind: EventKind) {
        self.events.push(Event { t_us: self.clock_us, at: self.now, kind });
    }

    /// The timeline of the exercise.
    pub fn timeline(&self) -> Timeline {
        Timeline { events: self.events.clone() }
    }
}

/// A step's instruction as lines for the screen.
fn instruction(name: &str, action: &StepAction) -> Vec<String> {
    match action {
        StepAction::Manual(text) => {
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            if lines.first().is_some_and(|l| l.trim() == name.trim()) {
                lines.remove(0);
            }
            lines
        }
        other => vec![other.describe()],
    }
}

/// A clock reading as the room reads it: `12:05`, or `1:02:05` past an hour.
pub fn clock(us: Micros) -> String {
    let s = us / 1_000_000;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m:02}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::metrics::{Measurement, StepStatus};

    const SCENARIO: &str = "name: db
fault: { kind: db_failover }
deadline: 30m
procedure:
  kind: steps
  escalate_after: 20m
  steps:
    - { name: Acknowledge the page, manual: ack, budget: 2m, sim: { duration: 1m } }
    - { name: Promote the replica, manual: promote, budget: 5m, sim: { duration: 3m } }
    - { name: Notify stakeholders, manual: notify, budget: 5m, sim: { duration: 1m } }
injects:
  - { at: 4m, text: The replica is lagging 10 minutes }
";

    fn typed(s: &mut Session, text: &str) {
        text.chars().for_each(|c| s.key(Key::Char(c)));
        s.key(Key::Enter);
    }

    struct Room {
        session: Session,
        start: Timestamp,
    }

    impl Room {
        fn new(participants: &[(String, String)]) -> Room {
            let scenario = crate::scenario::parse(SCENARIO, Path::new("db.yaml")).expect("valid");
            let start: Timestamp = "2026-11-30T10:00:00Z".parse().unwrap();
            Room { session: Session::new(&scenario, participants, start), start }
        }
        /// The wall clock `secs` after the session was made.
        fn at(&mut self, secs: i64) -> &mut Session {
            self.session.tick(self.start + SignedDuration::from_secs(secs));
            &mut self.session
        }
    }

    #[test]
    fn participants_are_asked_when_not_given() {
        let mut room = Room::new(&[]);
        let s = room.at(0);
        assert_eq!(s.typing.as_ref().map(|t| t.0), Some(Entry::Participant));
        typed(s, "Ana:IC");
        typed(s, "Luis");
        s.key(Key::Enter);
        assert_eq!(s.typing, None);
        assert_eq!(s.participants().collect::<Vec<_>>(), [("Ana", "IC"), ("Luis", "participant")]);
        assert_eq!(s.phase, Phase::Before);
    }

    #[test]
    fn a_whole_exercise_becomes_a_timeline_with_declared_times() {
        let mut room = Room::new(&[("Ana".into(), "IC".into())]);
        room.at(10).key(Key::Enter); // t0 at 10 s of wall time
        assert_eq!(room.session.current_step().map(|s| s.name.as_str()), Some("Acknowledge the page"));
        room.at(70).key(Key::Char('D')); // detected at 1:00
        room.at(100).key(Key::Char('s')); // step 1 skipped at 1:30
        room.at(130).key(Key::Char('p')); // break at 2:00…
        room.at(730); // …ten minutes of wall time that the clock leaves out
        assert_eq!(room.session.clock_us, 120_000_000);
        room.at(730).key(Key::Char('p'));
        room.at(880); // 4:30: the inject (4:00) is due; step 2 is 3:00 into its 5:00
        assert_eq!(room.session.shown_injects().len(), 1);
        let s = room.at(1010); // 6:40, step 2 5:10 in: past its threshold, and escalated
        s.key(Key::Char('e'));
        typed(s, "DBA on call");
        s.key(Key::Char('f'));
        room.at(1060).key(Key::Char('d'));
        room.at(1090).key(Key::Char('R')); // restored at 8:00
        let s = room.at(1100);
        s.key(Key::Char('q'));
        typed(s, "the replica lag was unknown");
        s.key(Key::Enter);
        typed(s, "alert on replica lag");
        typed(s, "Luis");
        typed(s, "2026-12-15");
        s.key(Key::Enter);
        assert_eq!(s.phase, Phase::Done);

        let t0: Timestamp = "2026-11-30T10:00:10Z".parse().unwrap();
        assert!(s.events.iter().filter(|e| e.t_us == 0).all(|e| e.at == t0));
        let kinds: Vec<&EventKind> = s.events.iter().map(|e| &e.kind).collect();
        assert!(
            kinds.contains(&&EventKind::InjectShown { inject: 0, text: "The replica is lagging 10 minutes".into() })
        );
        assert!(kinds.contains(&&EventKind::Escalation { step: Some(1), after_us: 300_000_000 }));
        assert!(kinds.contains(&&EventKind::Escalated { step: Some(1), text: "DBA on call".into() }));
        assert!(kinds.contains(&&EventKind::Paused) && kinds.contains(&&EventKind::Resumed));
        assert!(kinds.contains(&&EventKind::ActionItem {
            what: "alert on replica lag".into(),
            owner: "Luis".into(),
            due: "2026-12-15".into()
        }));
        assert_eq!(kinds.last(), Some(&&EventKind::DrillEnded { outcome: Outcome::Recovered }));

        let scenario = crate::scenario::parse(SCENARIO, Path::new("db.yaml")).unwrap();
        let m = crate::metrics::declared(&s.timeline(), &crate::metrics::MetricSpec::of(&scenario));
        assert_eq!(m.mttd, Measurement::Declared { seconds: 60.0 });
        assert_eq!(m.rto, Measurement::Declared { seconds: 480.0 });
        let statuses: Vec<StepStatus> = m.steps.iter().map(|t| t.status).collect();
        assert_eq!(statuses, [StepStatus::Skipped, StepStatus::Failed, StepStatus::Ok]);
        assert!(m.steps[1].over_budget && m.steps[1].escalated);
    }

    #[test]
    fn typing_keys_do_not_mark_and_escape_drops_the_line() {
        let mut room = Room::new(&[("Ana".into(), "IC".into())]);
        let s = room.at(0);
        s.key(Key::Enter);
        s.key(Key::Char('n'));
        "dfsq".chars().for_each(|c| s.key(Key::Char(c)));
        s.key(Key::Esc);
        assert_eq!(s.current, 0);
        assert_eq!(s.phase, Phase::During);
        assert!(!s.events.iter().any(|e| matches!(e.kind, EventKind::Note { .. })));
    }

    #[test]
    fn finishing_with_work_open_is_asked_again_and_any_other_key_goes_on() {
        let mut room = Room::new(&[("Ana".into(), "IC".into())]);
        let s = room.at(0);
        s.key(Key::Enter);
        s.key(Key::Char('q'));
        assert!(s.confirming_finish);
        s.key(Key::Char('d')); // not `y`: the exercise goes on, and the key marks nothing
        assert_eq!((s.phase, s.current, s.confirming_finish), (Phase::During, 0, false));
        s.key(Key::Char('q'));
        s.key(Key::Char('y'));
        assert_eq!(s.phase, Phase::After);
        assert_eq!(s.typing.as_ref().map(|t| t.0), Some(Entry::Lesson));
    }

    #[test]
    fn a_step_shows_its_instruction_without_repeating_its_name_and_its_target() {
        let text = SCENARIO.replace("manual: ack,", "manual: \"Acknowledge the page\\nack in PagerDuty\",")
            + "targets: { steps: { Acknowledge the page: 5m } }\n";
        let scenario = crate::scenario::parse(&text, Path::new("db.yaml")).expect("valid");
        let s = Session::new(&scenario, &[], "2026-11-30T10:00:00Z".parse().unwrap());
        assert_eq!(s.steps[0].instruction, ["ack in PagerDuty"]);
        assert_eq!(s.steps[0].target_us, Some(300_000_000));
        assert_eq!((s.steps[1].instruction.as_slice(), s.steps[1].target_us), (&["promote".to_string()][..], None));
    }

    #[test]
    fn the_clock_reads_as_minutes_and_seconds() {
        assert_eq!(clock(65_000_000), "01:05");
        assert_eq!(clock(3_725_000_000), "1:02:05");
    }

    #[test]
    fn an_interrupted_exercise_keeps_what_the_room_marked_and_one_not_started_keeps_nothing() {
        let mut room = Room::new(&[("Ana".into(), "IC".into())]);
        assert!(!room.at(0).interrupt(), "nothing ran before t0");
        room.at(1).key(Key::Enter);
        room.at(30).key(Key::Char('D'));
        let s = room.at(40);
        assert!(s.interrupt());
        assert_eq!(s.phase, Phase::Done);
        let kinds: Vec<_> = s.events.iter().map(|e| &e.kind).collect();
        assert!(kinds.contains(&&EventKind::Detected));
        assert_eq!(kinds.last(), Some(&&EventKind::DrillEnded { outcome: Outcome::Cancelled }));
    }
}
