//! Writing a procedure as a scenario file, by hand: the comments that say where each value came
//! from and what a person must still fill in are the point of the file, and serde-saphyr
//! writes no comments. Every string is written as a JSON string, which is a YAML double-quoted
//! scalar, so no runbook text can break the document.

use std::fmt::Write as _;

use super::parse::{Procedure, Runbook, Timed};
use super::repair::Repair;
use crate::duration::Dur;

/// The simulated duration a step without a time in the runbook gets: the simulation needs
/// one, and the comment above the step says it is a placeholder.
const PLACEHOLDER_STEP: Dur = Dur::secs(60);

/// The shortest deadline written: the engine's own default.
const MIN_DEADLINE: Dur = Dur::secs(30 * 60);

/// One scenario file to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioFile {
    /// The scenario's `name`, unique within the runbook; the file is `NAME.yaml`.
    pub name: String,
    /// The file's text.
    pub text: String,
}

/// A scenario per procedure, named after the procedures' titles (made unique).
pub fn scenarios(runbook: &Runbook, repairs: &[Repair], source: &str) -> Vec<ScenarioFile> {
    let bases = runbook
        .procedures
        .iter()
        .enumerate()
        .map(|(i, p)| slug(&p.title).unwrap_or_else(|| format!("procedure-{}", i + 1)));
    let names = unique(bases, |base, n| format!("{base}-{n}"));
    runbook
        .procedures
        .iter()
        .zip(names)
        .map(|(procedure, name)| {
            let text = scenario(procedure, &name, runbook, repairs, source);
            ScenarioFile { name, text }
        })
        .collect()
}

/// The names given, each one taken again made different by `again(name, n)` from n = 2: a
/// scenario refuses two steps of one name, and a folder two files.
fn unique(bases: impl Iterator<Item = String>, again: impl Fn(&str, usize) -> String) -> Vec<String> {
    let mut taken: Vec<String> = Vec::new();
    for base in bases {
        let mut name = base.clone();
        let mut n = 2;
        while taken.contains(&name) {
            name = again(&base, n);
            n += 1;
        }
        taken.push(name);
    }
    taken
}

/// The scenario text of one procedure.
fn scenario(procedure: &Procedure, name: &str, runbook: &Runbook, repairs: &[Repair], source: &str) -> String {
    let mut y = String::new();
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let _ = writeln!(
        y,
        "# Imported by `firedrill import` from {source}: the procedure {} (line {}).",
        q(&procedure.title),
        procedure.line
    );
    for r in repairs {
        let _ = writeln!(
            y,
            "# Encoding repaired before reading: {} line(s), {} character(s) had been saved as UTF-8 read as {}.",
            r.lines, r.characters, r.encoding
        );
    }
    let _ = writeln!(y, "#\n# Read from the runbook:");
    for step in &procedure.steps {
        match &step.budget {
            Some(b) => {
                let _ = writeln!(
                    y,
                    "#   - step {} (line {}), budget {} from {}",
                    q(&step.title),
                    step.line,
                    b.value,
                    q(&b.from.text)
                );
            }
            None => {
                let _ = writeln!(
                    y,
                    "#   - step {} (line {}): no time in the runbook, so no budget",
                    q(&step.title),
                    step.line
                );
            }
        }
    }
    let mut target_note = |label: &str, t: &Option<Timed>| {
        if let Some(t) = t {
            let _ = writeln!(y, "#   - {label} {} from line {}: {}", t.value, t.from.line, q(&t.from.text));
        }
    };
    target_note("RTO", &procedure.rto);
    target_note("RPO", &procedure.rpo);
    target_note("team response time", &procedure.response);
    // Steps a runbook titles alike (two "Verificar") are told apart; the first keeps its title.
    let names = unique(procedure.steps.iter().map(|s| s.title.clone()), |title, n| format!("{title} ({n})"));
    let responder = procedure.response.as_ref().and(names.first());
    if let Some(first) = responder {
        let _ = writeln!(
            y,
            "#     scored as a target on the first step, {}: the team has responded once it is done",
            q(first)
        );
    }
    for e in &procedure.escalations {
        let _ = writeln!(y, "#   - escalation after {} from line {}: {}", e.value, e.from.line, q(&e.from.text));
    }
    for s in &runbook.service_targets {
        let t = |d: Option<Dur>| d.map_or("-".to_string(), |d| d.to_string());
        let _ = writeln!(
            y,
            "#   - per service (line {}): {}: RTO {}, RPO {} (not applied: pick this scenario's row by hand)",
            s.line,
            q(&s.service),
            t(s.rto),
            t(s.rpo)
        );
    }
    let _ = writeln!(y, "#\n# A person must still fill in:");
    let _ = writeln!(y, "#   - fault: the database crash below is a placeholder so that the file simulates; write the fault this procedure answers.");
    let _ = writeln!(
        y,
        "#   - probes: the ones below only name simulated endpoints; a live drill needs the service's own."
    );
    let untimed: Vec<String> = procedure.steps.iter().filter(|s| s.budget.is_none()).map(|s| q(&s.title)).collect();
    if !untimed.is_empty() {
        let _ = writeln!(
            y,
            "#   - budgets of the steps the runbook gives no time: {} (simulated as {PLACEHOLDER_STEP} each).",
            untimed.join(", ")
        );
    }
    let _ = writeln!(y, "#   - commands stay in the steps' `manual` text: an import never turns one into `run:`; do it by hand, as argv, where a step is safe to automate.");
    let _ = writeln!(y, "#   - the last step restores the simulated service (`effect: promote_replica`); move it to the step that does.");
    let _ = writeln!(y, "name: {name}");
    let _ = writeln!(y, "description: {}", q(&format!("Imported from {source}: {}", procedure.title)));
    let _ = writeln!(y, "tags: [imported]");
    let _ = writeln!(y, "environment: {{ kind: sim }}");
    let _ = writeln!(y, "# Placeholder: what goes wrong in {}.", q(&procedure.title));
    let _ = writeln!(y, "fault: {{ kind: db_failover, mode: crash }}");
    let _ = writeln!(y, "probes:");
    let _ = writeln!(y, "  - name: service");
    let _ = writeln!(y, "    check: {{ kind: http, url: \"http://service.internal/orders\" }}");
    let _ = writeln!(y, "    interval: 1s");
    if procedure.rpo.is_some() {
        let _ = writeln!(y, "  - name: ledger");
        let _ = writeln!(y, "    check: {{ kind: write_ledger, dsn: \"postgres://service-db/placeholder\" }}");
        let _ = writeln!(y, "    interval: 1s");
    }
    let _ = writeln!(y, "procedure:");
    let _ = writeln!(y, "  kind: steps");
    let escalation = procedure.escalations.iter().min_by_key(|e| e.value);
    if let Some(e) = escalation {
        let _ = writeln!(y, "  escalate_after: {} # line {}", e.value, e.from.line);
    }
    let _ = writeln!(y, "  steps:");
    let last = procedure.steps.len().saturating_sub(1);
    for (i, step) in procedure.steps.iter().enumerate() {
        let manual = std::iter::once(step.title.as_str())
            .chain(step.body.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join("\n");
        let _ = writeln!(y, "    # line {}", step.line);
        let _ = writeln!(y, "    - name: {}", q(&names[i]));
        let _ = writeln!(y, "      manual: {}", q(&manual));
        if let Some(b) = &step.budget {
            let _ = writeln!(y, "      budget: {}", b.value);
        }
        let duration = if step.budget.is_none() { format!("duration: {PLACEHOLDER_STEP}, ") } else { String::new() };
        let effect = if i == last { "effect: promote_replica" } else { "effect: none" };
        let _ = writeln!(y, "      sim: {{ {duration}{effect} }}");
    }
    if procedure.rto.is_some() || procedure.rpo.is_some() || responder.is_some() {
        let _ = writeln!(y, "targets:");
        for (word, t) in [("rto", &procedure.rto), ("rpo", &procedure.rpo)] {
            if let Some(t) = t {
                let _ = writeln!(y, "  {word}: {} # line {}", t.value, t.from.line);
            }
        }
        if let (Some(first), Some(t)) = (responder, &procedure.response) {
            let _ = writeln!(y, "  steps:");
            let _ = writeln!(y, "    {}: {} # team response time, line {}", q(first), t.value, t.from.line);
        }
    }
    let _ = writeln!(y, "deadline: {}", deadline(procedure));
    y
}

/// Room for the whole procedure twice over, and for its RTO and escalation: a drill stopped by
/// its deadline measures nothing.
fn deadline(procedure: &Procedure) -> Dur {
    let steps: u64 =
        procedure.steps.iter().map(|s| s.budget.as_ref().map_or(PLACEHOLDER_STEP, |b| b.value).0.as_secs()).sum();
    let rto = procedure.rto.as_ref().map_or(0, |t| t.value.0.as_secs());
    let escalation = procedure.escalations.iter().map(|e| e.value.0.as_secs()).max().unwrap_or(0);
    Dur::secs((2 * steps.max(rto).max(escalation)).max(MIN_DEADLINE.0.as_secs()))
}

/// A scenario name from a title: ASCII letters and digits, accents dropped, the rest as `-`.
fn slug(title: &str) -> Option<String> {
    let mut out = String::new();
    for c in title.to_lowercase().chars() {
        let c = match c {
            'á' | 'à' | 'ä' | 'â' => 'a',
            'é' | 'è' | 'ë' | 'ê' => 'e',
            'í' | 'ì' | 'ï' | 'î' => 'i',
            'ó' | 'ò' | 'ö' | 'ô' => 'o',
            'ú' | 'ù' | 'ü' | 'û' => 'u',
            'ñ' => 'n',
            'ç' => 'c',
            c => c,
        };
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-').to_string();
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_titled_alike_get_names_of_their_own_and_the_file_stays_valid() {
        let runbook = super::super::parse::parse(
            "# Runbook\n\n## Caída\n\n**Tiempo de respuesta:** < 5 minutos\n\n1. Verificar\n2. Reiniciar\n3. Verificar\n",
        );
        let files = scenarios(&runbook, &[], "r.md");
        let scenario = crate::scenario::parse(&files[0].text, std::path::Path::new("caida.yaml"))
            .unwrap_or_else(|e| panic!("{e}\n{}", files[0].text));
        let names: Vec<&str> = scenario.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["Verificar", "Reiniciar", "Verificar (2)"]);
        assert_eq!(scenario.steps[0].target, Some(Dur::secs(300)));
    }

    #[test]
    fn names_keep_letters_and_digits_only() {
        assert_eq!(
            slug("P1: Dashboard No Responde (Service Down)").as_deref(),
            Some("p1-dashboard-no-responde-service-down")
        );
        assert_eq!(slug("Nivel 1: Sistema Inaccesible").as_deref(), Some("nivel-1-sistema-inaccesible"));
        assert_eq!(slug("🔧 Recuperación").as_deref(), Some("recuperacion"));
        assert_eq!(slug("🔧"), None);
    }
}
