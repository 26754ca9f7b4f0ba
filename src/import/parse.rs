//! Reading a runbook's Markdown as teams write it: which sections are procedures, their steps,
//! the budgets in the steps' titles, and the targets and escalation thresholds in the prose
//! and tables. Only prose is read for times: a `sleep 10` in a code block is a command.
//!
//! A procedure is a section (a heading of level 1 to 3) with numbered steps somewhere in it:
//! numbered list items, `Step N` / `Paso N` lines, sub-headings with a time (`#### Diagnóstico
//! (1-2 minutos)`), or `# 1. …` comments in its code. Its steps are, in order, its
//! sub-headings, its `Step N` lines and its numbered list items; a sub-heading with nothing
//! under it before the next step only groups them (`#### Pasos de Respuesta`) and is dropped.
//! A section whose only numbers are the `# N.` comments of its scripts gets those as steps.

use crate::duration::Dur;

/// A line of the runbook that a value was read from, or that looked like a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mention {
    /// Its number, from 1.
    pub line: usize,
    /// Its text, trimmed.
    pub text: String,
}

/// A duration read from a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timed {
    /// The duration; of a range (`1-2 minutos`), its upper end.
    pub value: Dur,
    /// Where it was read.
    pub from: Mention,
}

/// What a runbook holds that a scenario can use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Runbook {
    /// Its procedures, in the order written.
    pub procedures: Vec<Procedure>,
    /// RTO/RPO per service, from tables with `RTO` or `RPO` columns.
    pub service_targets: Vec<ServiceTarget>,
    /// Prose lines with a time that nothing was read from.
    pub unused: Vec<Mention>,
}

/// One procedure: a section with numbered steps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Procedure {
    /// Its heading's text.
    pub title: String,
    /// Its heading's line.
    pub line: usize,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Recovery time objective (`RTO: 30 minutos`, `Tiempo de Resolución Objetivo: 15 minutos`),
    /// its own or the runbook's.
    pub rto: Option<Timed>,
    /// Recovery point objective, its own or the runbook's.
    pub rpo: Option<Timed>,
    /// Team response time (`Tiempo de respuesta: < 5 minutos`).
    pub response: Option<Timed>,
    /// Escalation thresholds (`Escalamiento: 15 minutos si no hay progreso`, the lines under an
    /// escalation heading), in the order written.
    pub escalations: Vec<Timed>,
}

/// One step of a procedure.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Its title, without the budget written after it.
    pub title: String,
    /// The line it starts on.
    pub line: usize,
    /// Its budget, from its title; none when the runbook gives no time.
    pub budget: Option<Timed>,
    /// The lines under it: the commands of its code blocks and its prose, as written.
    pub body: Vec<String>,
    /// Whether the runbook numbers it (a list item, `Paso N`, a budget): only numbered steps
    /// make a section a procedure.
    numbered: bool,
    /// Whether it is a numbered heading or `Paso N` line, whose numbered list is its
    /// instructions rather than more steps.
    holds_list: bool,
}

/// RTO and RPO of one service (a row of an RTO/RPO table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceTarget {
    /// The service or scenario the row names.
    pub service: String,
    /// Its row.
    pub line: usize,
    /// Its RTO, when the cell holds a time.
    pub rto: Option<Dur>,
    /// Its RPO, when the cell holds a time.
    pub rpo: Option<Dur>,
}

/// The targets a line can state.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TargetKind {
    Rto,
    Rpo,
    Response,
    Escalation,
}

/// A section being read: a procedure when it turns out to have numbered steps.
#[derive(Default)]
struct Section {
    procedure: Procedure,
    /// The steps the `# N.` comments of its code blocks would make.
    script_steps: Vec<Step>,
    /// Inside an escalation heading: every time is a threshold.
    in_escalation: bool,
}

/// Reads a runbook (already repaired) into procedures, targets and the times left unused.
pub fn parse(text: &str) -> Runbook {
    let mut runbook = Runbook::default();
    let mut global = Procedure::default();
    let mut section = Section::default();
    let mut in_code = false;
    let mut table: Option<(Option<usize>, Option<usize>)> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            read_code_line(&mut section, trimmed, line);
            continue;
        }
        if trimmed.starts_with('|') {
            let cells: Vec<String> = trimmed.trim_matches('|').split('|').map(clean).collect();
            match table {
                None => {
                    let column =
                        |word: &str| cells.iter().position(|c| c.to_lowercase().split_whitespace().any(|w| w == word));
                    table = Some((column("rto"), column("rpo")));
                }
                Some(_) if cells.iter().all(|c| c.chars().all(|ch| ch == '-' || ch == ':')) => {}
                Some((rto, rpo)) if rto.is_some() || rpo.is_some() => {
                    let cell =
                        |at: Option<usize>| at.and_then(|i| cells.get(i)).and_then(|c| durations(c).last().copied());
                    runbook.service_targets.push(ServiceTarget {
                        service: cells.first().cloned().unwrap_or_default(),
                        line,
                        rto: cell(rto),
                        rpo: cell(rpo),
                    });
                }
                Some(_) => note_unused(&mut runbook, trimmed, line),
            }
            continue;
        }
        table = None;
        if trimmed.is_empty() {
            continue;
        }
        let mention = Mention { line, text: trimmed.to_string() };
        if let Some((level, heading)) = heading(trimmed) {
            if let Some((kind, value)) = target(&heading) {
                record_target(&mut section.procedure, kind, Timed { value, from: mention });
            } else if level >= 4 || is_marker(&heading) {
                let lower = heading.to_lowercase();
                section.in_escalation = lower.contains("escala");
                if !section.in_escalation {
                    start_step(&mut section, &heading, line, false);
                }
            } else {
                close(&mut runbook, &mut global, std::mem::take(&mut section));
                section.procedure.title = heading;
                section.procedure.line = line;
            }
            continue;
        }
        let prose = clean(trimmed);
        if let Some(value) = durations(&prose).first().copied().filter(|_| section.in_escalation) {
            section.procedure.escalations.push(Timed { value, from: mention });
        } else if let Some((kind, value)) = target(&prose) {
            record_target(&mut section.procedure, kind, Timed { value, from: mention });
        } else if is_marker(&prose) && trimmed.starts_with(['*', 'S', 'P', 's', 'p']) {
            start_step(&mut section, &prose, line, false);
        } else if let Some(item) =
            numbered_item(raw).filter(|_| !section.procedure.steps.last().is_some_and(|s| s.holds_list))
        {
            start_step(&mut section, &item, line, true);
        } else {
            if let Some(step) = section.procedure.steps.last_mut().filter(|_| !prose.is_empty()) {
                step.body.push(prose.clone());
            }
            if !durations(&prose).is_empty() {
                note_unused(&mut runbook, trimmed, line);
            }
        }
    }
    close(&mut runbook, &mut global, section);
    for procedure in &mut runbook.procedures {
        procedure.rto = procedure.rto.take().or_else(|| global.rto.clone());
        procedure.rpo = procedure.rpo.take().or_else(|| global.rpo.clone());
        procedure.response = procedure.response.take().or_else(|| global.response.clone());
        if procedure.escalations.is_empty() {
            procedure.escalations = global.escalations.clone();
        }
    }
    runbook.unused.sort_by_key(|m| m.line);
    runbook
}

/// A line inside a code block: a command of the current step, and a `# N. title` comment
/// starts a script step.
fn read_code_line(section: &mut Section, trimmed: &str, line: usize) {
    if trimmed.is_empty() {
        return;
    }
    if let Some(step) = section.procedure.steps.last_mut() {
        step.body.push(trimmed.to_string());
    }
    let comment = trimmed.strip_prefix('#').map(str::trim_start);
    if let Some(title) = comment.and_then(numbered_item) {
        section.script_steps.push(Step { title, line, numbered: true, ..Step::default() });
    } else if let Some(step) = section.script_steps.last_mut() {
        step.body.push(trimmed.to_string());
    }
}

/// Starts a step titled by `text` (a list item's, a heading's or a `Paso N` line's), its
/// budget read from the title.
fn start_step(section: &mut Section, text: &str, line: usize, list_item: bool) {
    section.in_escalation = false;
    let budget = title_budget(text).map(|value| Timed { value, from: Mention { line, text: text.to_string() } });
    let holds_list = !list_item && (budget.is_some() || is_marker(text));
    let step = Step {
        title: strip_budget(text),
        line,
        budget,
        body: Vec::new(),
        numbered: list_item || holds_list,
        holds_list,
    };
    section.procedure.steps.push(step);
}

/// Ends a section: a procedure when it has numbered steps; otherwise its targets count for
/// the whole runbook and its budgets were not used.
fn close(runbook: &mut Runbook, global: &mut Procedure, section: Section) {
    let Section { mut procedure, script_steps, .. } = section;
    let numbered = procedure.steps.iter().any(|s| s.numbered) || !script_steps.is_empty();
    if numbered && !procedure.title.is_empty() {
        let count = procedure.steps.len();
        let steps = std::mem::take(&mut procedure.steps);
        procedure.steps = steps
            .into_iter()
            .enumerate()
            .filter(|(i, s)| s.numbered || !s.body.is_empty() || i + 1 == count)
            .map(|(_, s)| s)
            .collect();
        if procedure.steps.is_empty() {
            procedure.steps = script_steps;
        }
        runbook.procedures.push(procedure);
        return;
    }
    if !durations(&procedure.title).is_empty() {
        runbook.unused.push(Mention { line: procedure.line, text: procedure.title.clone() });
    }
    for step in &procedure.steps {
        if let Some(budget) = &step.budget {
            runbook.unused.push(budget.from.clone());
        }
    }
    global.rto = global.rto.take().or(procedure.rto);
    global.rpo = global.rpo.take().or(procedure.rpo);
    global.response = global.response.take().or(procedure.response);
    global.escalations.extend(procedure.escalations);
}

fn note_unused(runbook: &mut Runbook, trimmed: &str, line: usize) {
    if !durations(trimmed).is_empty() {
        runbook.unused.push(Mention { line, text: trimmed.to_string() });
    }
}

/// A target's first writing wins; every escalation threshold is kept.
fn record_target(procedure: &mut Procedure, kind: TargetKind, timed: Timed) {
    let slot = match kind {
        TargetKind::Rto => &mut procedure.rto,
        TargetKind::Rpo => &mut procedure.rpo,
        TargetKind::Response => &mut procedure.response,
        TargetKind::Escalation => return procedure.escalations.push(timed),
    };
    if slot.is_none() {
        *slot = Some(timed);
    }
}

/// The target a line states, when it names one and gives a time.
fn target(text: &str) -> Option<(TargetKind, Dur)> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).collect();
    let kind = if words.contains(&"rto")
        || lower.contains("resoluci")
        || lower.contains("resolution")
        || lower.contains("recovery time")
    {
        TargetKind::Rto
    } else if words.contains(&"rpo") || lower.contains("recovery point") {
        TargetKind::Rpo
    } else if lower.contains("respuesta") || lower.contains("response time") || lower.contains("time to respond") {
        TargetKind::Response
    } else if lower.contains("escala") {
        TargetKind::Escalation
    } else {
        return None;
    };
    durations(text).first().map(|d| (kind, *d))
}

/// `# Title`: its level and text, cleaned of emphasis.
fn heading(line: &str) -> Option<(usize, String)> {
    let level = line.chars().take_while(|c| *c == '#').count();
    let rest = line[level..].strip_prefix(' ')?;
    (1..=6).contains(&level).then(|| (level, clean(rest.trim_end_matches('#'))))
}

/// `Step 3 …`, `Paso 1: …`: a step the runbook numbers in words.
fn is_marker(text: &str) -> bool {
    let mut words = text.split_whitespace();
    let first = words.next().unwrap_or_default().to_lowercase();
    let number = words.next().unwrap_or_default().trim_end_matches([':', '.', ')']);
    matches!(first.as_str(), "step" | "paso") && !number.is_empty() && number.chars().all(|c| c.is_ascii_digit())
}

/// `1. Title` (at the start of the line, not indented; not a bare link as a table of contents
/// has): the title.
fn numbered_item(line: &str) -> Option<String> {
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let rest = line[digits..].strip_prefix(['.', ')'])?.strip_prefix(' ')?.trim();
    let title = clean(rest);
    let is_link = title.starts_with('[') && title.ends_with(')') && title.contains("](");
    (!title.is_empty() && !is_link).then_some(title)
}

/// A title's budget: the last time written in it (`Paso 1: Verificación Inicial (2 minutos)`).
fn title_budget(title: &str) -> Option<Dur> {
    durations(title).last().copied()
}

/// A title without the parenthesised time after it.
fn strip_budget(title: &str) -> String {
    match title.rfind('(') {
        Some(at) if !durations(&title[at..]).is_empty() => title[..at].trim().to_string(),
        _ => title.trim().to_string(),
    }
}

/// A line without Markdown emphasis, list bullets and surrounding space.
fn clean(text: &str) -> String {
    let text = text.trim().trim_start_matches(['-', '*', '+']).trim();
    text.replace("**", "").replace('`', "").trim().to_string()
}

/// Every time written in a text (`2 minutos`, `1-2 min`, `< 5 minutes`, `4 horas`, `1 día`),
/// ranges as their upper end. A number glued to letters or a decimal point before it (`P95`,
/// `99.9`) is not a time, nor are units the runbooks use for other things (`ms`, `GB`).
pub fn durations(text: &str) -> Vec<Dur> {
    let chars: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let glued = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '.' || chars[i - 1] == ',');
        if !chars[i].is_ascii_digit() || glued {
            i += 1;
            continue;
        }
        let (mut value, mut j) = number(&chars, i);
        let mut k = skip_spaces(&chars, j);
        if k < chars.len() && matches!(chars[k], '-' | '–' | 'a') {
            let after = skip_spaces(&chars, k + 1);
            if after < chars.len() && chars[after].is_ascii_digit() && (chars[k] != 'a' || k > j) {
                (value, j) = number(&chars, after);
                k = skip_spaces(&chars, j);
            }
        }
        let word_end = k + chars[k..].iter().take_while(|c| c.is_alphabetic()).count();
        let word: String = chars[k..word_end].iter().collect::<String>().to_lowercase();
        if let Some(unit) = unit_secs(&word) {
            found.push(Dur::secs(value * unit));
        }
        i = j.max(i + 1);
    }
    found
}

fn number(chars: &[char], from: usize) -> (u64, usize) {
    let end = from + chars[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let digits: String = chars[from..end].iter().collect();
    (digits.parse().unwrap_or(u64::MAX / 100_000), end)
}

fn skip_spaces(chars: &[char], from: usize) -> usize {
    from + chars[from..].iter().take_while(|c| **c == ' ').count()
}

/// The seconds in one of a unit, English or Spanish.
fn unit_secs(word: &str) -> Option<u64> {
    Some(match word {
        "s" | "sec" | "secs" | "second" | "seconds" | "seg" | "segs" | "segundo" | "segundos" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" | "minuto" | "minutos" => 60,
        "h" | "hr" | "hrs" | "hour" | "hours" | "hora" | "horas" => 3600,
        "d" | "day" | "days" | "día" | "días" | "dia" | "dias" => 86400,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mins(m: u64) -> Dur {
        Dur::secs(m * 60)
    }

    #[test]
    fn times_are_read_in_both_languages_with_ranges_as_their_upper_end() {
        assert_eq!(durations("Diagnóstico (1-2 minutos)"), [mins(2)]);
        assert_eq!(durations("Step 3 (10 min)"), [mins(10)]);
        assert_eq!(durations("Tiempo de respuesta: < 5 minutos"), [mins(5)]);
        assert_eq!(
            durations("RTO 2 horas, RPO 24 hours, 1 día"),
            [Dur::secs(7200), Dur::secs(86400), Dur::secs(86400)]
        );
        assert_eq!(durations("between 2 and 30 seconds, de 1 a 3 minutos"), [Dur::secs(30), mins(3)]);
        assert!(durations("P95 > 300ms, uptime 99.9%, 2G, +54 9 11 1234-5678, Paso 1: x").is_empty());
    }

    #[test]
    fn a_numbered_list_under_a_heading_makes_a_procedure() {
        let runbook = parse(
            "# Runbook\n## Outage\n#### Steps\n1. **Check status**\n   ```bash\n   ./deploy.sh status\n   ```\n2. Restart (5 min)\n   - Slack: #ops\n#### Resolution time target: 15 minutes\n## Contacts\n- Alice (on call 24 hours)\n",
        );
        assert_eq!(runbook.procedures.len(), 1);
        let p = &runbook.procedures[0];
        assert_eq!(p.title, "Outage");
        assert_eq!(p.steps.iter().map(|s| s.title.as_str()).collect::<Vec<_>>(), ["Check status", "Restart"]);
        assert_eq!(p.steps[0].body, ["./deploy.sh status"]);
        assert_eq!(p.steps[0].budget, None);
        assert_eq!(p.steps[1].budget.as_ref().map(|b| b.value), Some(mins(5)));
        assert_eq!(p.steps[1].body, ["Slack: #ops"]);
        assert_eq!(p.rto.as_ref().map(|t| (t.value, t.from.line)), Some((mins(15), 10)));
        assert_eq!(runbook.unused, [Mention { line: 12, text: "- Alice (on call 24 hours)".into() }]);
    }

    #[test]
    fn a_table_of_contents_is_not_a_procedure_and_an_rto_table_gives_service_targets() {
        let runbook = parse("## Contents\n1. [Emergencias](#emergencias)\n\n| Escenario | RTO | RPO |\n|---|---|---|\n| Contenedor | 15 minutos | 0 (sin estado) |\n");
        assert!(runbook.procedures.is_empty());
        assert_eq!(
            runbook.service_targets,
            [ServiceTarget { service: "Contenedor".into(), line: 6, rto: Some(mins(15)), rpo: None }]
        );
    }
}
