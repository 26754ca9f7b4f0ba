//! `firedrill import`: runbooks as teams write them (the two shared ones, saved through a wrong
//! encoding once, and one in English and one in Spanish written for these tests) become
//! scenarios with exactly the procedures, steps, budgets and targets the runbook states, and
//! every scenario written validates and runs in `sim`.

use std::path::{Path, PathBuf};

use firedrill::import::{self, Import};
use firedrill::score::EXIT_INVALID;

use crate::common::{firedrill, parse, repo, texts};

/// A runbook kept in `tests/fixtures/runbooks/`.
fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures/runbooks").join(name)
}

/// Each procedure in one line: `name: step (budget); … | rto rpo response escalation`.
fn outline(imported: &Import) -> Vec<String> {
    let time = |t: &Option<import::Timed>| t.as_ref().map_or("-".to_string(), |t| t.value.to_string());
    imported
        .scenarios
        .iter()
        .zip(&imported.runbook.procedures)
        .map(|(s, p)| {
            let steps: Vec<String> = p
                .steps
                .iter()
                .map(|step| {
                    format!(
                        "{} ({})",
                        step.title,
                        step.budget.as_ref().map_or("-".to_string(), |b| b.value.to_string())
                    )
                })
                .collect();
            let escalation = p.escalations.iter().map(|e| e.value).min().map_or("-".to_string(), |d| d.to_string());
            format!(
                "{}: {} | rto {} rpo {} response {} escalation {}",
                s.name,
                steps.join("; "),
                time(&p.rto),
                time(&p.rpo),
                time(&p.response),
                escalation
            )
        })
        .collect()
}

/// Every scenario parses and validates in the library, its comments and all.
/// Every scenario parses, and the team response time, when the runbook states one, is the first
/// step's time target (`targets.steps`) and no other step's.
fn assert_valid(imported: &Import) {
    for (s, procedure) in imported.scenarios.iter().zip(&imported.runbook.procedures) {
        let scenario = parse(&s.text).unwrap_or_else(|e| panic!("{} is invalid:\n{e}\n{}", s.name, s.text));
        let targets: Vec<_> = scenario.steps.iter().map(|step| step.target).collect();
        let first = procedure.response.as_ref().map(|t| t.value);
        assert_eq!(targets.first().copied().flatten(), first, "{}", s.name);
        assert!(targets.iter().skip(1).all(Option::is_none), "{}: {targets:?}", s.name);
    }
}

fn unused_lines(imported: &Import) -> Vec<usize> {
    imported.runbook.unused.iter().map(|m| m.line).collect()
}

#[test]
fn an_english_runbook_gives_its_procedures_steps_budgets_and_targets() {
    let imported = import::read(&fixture("english-runbook.md")).unwrap();
    assert!(imported.repairs.is_empty(), "an undamaged runbook is not repaired: {:?}", imported.repairs);
    assert_eq!(
        outline(&imported),
        [
            "database-failover: Step 1 (5m); Step 2 (10m); Step 3 (-) | rto 30m rpo 5m response - escalation 15m",
            "cache-flush: Check the hit rate (2m); Flush the cache (3m); Watch the error rate (-) | rto 20m rpo 5m response - escalation -",
        ]
    );
    let failover = &imported.runbook.procedures[0];
    assert_eq!(failover.steps[1].body, ["pg_isready -h payments-db-0", "patronictl list payments"]);
    assert_eq!(failover.rto.as_ref().unwrap().from.line, 3);
    assert_eq!(unused_lines(&imported), [37]);
    assert_valid(&imported);
    let text = &imported.scenarios[0].text;
    assert!(text.contains("step \"Step 3\" (line 19): no time in the runbook, so no budget"), "{text}");
    assert!(text.contains("an import never turns one into `run:`"), "{text}");
    assert!(!text.contains("\n      run:"), "no command is automated: {text}");
}

#[test]
fn a_spanish_runbook_gives_its_steps_response_time_escalation_and_service_table() {
    let imported = import::read(&fixture("runbook-espanol.md")).unwrap();
    assert!(imported.repairs.is_empty(), "{:?}", imported.repairs);
    assert_eq!(
        outline(&imported),
        ["caida-de-la-base-de-datos: Paso 1: Verificación Inicial (2m); Paso 2: Reinicio del servicio (5m); Paso 3: Avisar al equipo (-) | rto 15m rpo - response 5m escalation 15m"]
    );
    let services: Vec<_> = imported
        .runbook
        .service_targets
        .iter()
        .map(|s| (s.service.as_str(), s.rto.map(|d| d.to_string()), s.rpo.map(|d| d.to_string())))
        .collect();
    assert_eq!(
        services,
        [
            ("Base de datos perdida", Some("2h".to_string()), Some("1d".to_string())),
            ("Contenedor corrompido", Some("15m".to_string()), None),
        ]
    );
    assert_eq!(unused_lines(&imported), [29]);
    assert_valid(&imported);
}

#[test]
fn the_shared_fixtures_are_the_shared_runbooks_byte_for_byte() {
    // `../shared/runbooks` beside the main checkout; a worktree under `wt/` is one level deeper.
    let Some(shared) =
        ["../shared/runbooks", "../../shared/runbooks"].into_iter().map(|p| repo().join(p)).find(|p| p.exists())
    else {
        eprintln!("skipped: ../shared/runbooks is not beside this checkout, so the fixtures were not compared with it");
        return;
    };
    for name in ["eventos-production-runbook.md", "minimarket-operations-runbook.md"] {
        assert_eq!(std::fs::read(shared.join(name)).unwrap(), std::fs::read(fixture(name)).unwrap(), "{name}");
    }
}

/// Imports through the binary into a fresh folder, then validates and simulates every file.
fn import_validate_and_simulate(runbook: &Path) -> (String, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let out =
        firedrill().args(["import", runbook.to_str().unwrap(), "--out", out_dir.to_str().unwrap()]).output().unwrap();
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&out_dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let out = firedrill().args(["validate", out_dir.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", texts(&out));
    for file in &files {
        let out = firedrill().args(["run", file.to_str().unwrap(), "--no-write", "--seed", "1"]).output().unwrap();
        let (run_out, run_err) = texts(&out);
        assert_ne!(out.status.code(), Some(EXIT_INVALID), "{}:\n{run_out}\n{run_err}", file.display());
        assert!(run_out.contains("RTO"), "{}:\n{run_out}\n{run_err}", file.display());
    }
    let names = files.iter().map(|f| f.file_name().unwrap().into()).collect();
    (stdout, names)
}

#[test]
fn every_runbook_imports_into_files_that_validate_and_simulate() {
    for name in [
        "english-runbook.md",
        "runbook-espanol.md",
        "eventos-production-runbook.md",
        "minimarket-operations-runbook.md",
    ] {
        let (summary, files) = import_validate_and_simulate(&fixture(name));
        assert!(!files.is_empty(), "{name}");
        assert!(summary.contains("lines with a time that were not used:"), "{summary}");
    }
}

#[test]
fn the_eventos_runbook_is_repaired_from_gbk_and_gives_five_procedures() {
    let imported = import::read(&fixture("eventos-production-runbook.md")).unwrap();
    assert_eq!(imported.repairs, [import::Repair { encoding: "GBK", lines: 60, characters: 70 }]);
    assert_eq!(
        outline(&imported),
        [
            "nivel-1-sistema-completamente-inaccesible: Verificar estado del sistema (-); Revisar logs de error (-); Reiniciar servicios (-); Si no funciona, rollback inmediato (-); Notificar stakeholders (-) | rto 15m rpo - response - escalation -",
            "nivel-2-funcionalidad-parcial-afectada: Identificar funcionalidad afectada (-); Aislar el problema (-); Aplicar solución temporal (-); Implementar solución permanente (-) | rto 1h rpo - response - escalation -",
            "nivel-3-problemas-de-rendimiento: Monitorear recursos (-); Identificar bottleneck (-); Aplicar optimizaciones (-) | rto 4h rpo - response - escalation -",
            "despliegue-de-nuevas-versiones: Pre-Despliegue (-); Durante el Despliegue (-); Post-Despliegue (-) | rto - rpo - response - escalation -",
            "respuesta-a-breach: Contener: Desconectar sistemas comprometidos (-); Investigar: Revisar logs y identificar alcance (-); Recuperar: Restaurar desde backup limpio (-); Notificar: Informar a usuarios afectados y autoridades si aplica (-) | rto - rpo - response - escalation -",
        ]
    );
    assert_eq!(
        imported.runbook.procedures[0].steps[0].body,
        ["./deploy.sh status", "curl -f https://tu-dominio.com/api/health"]
    );
    assert_eq!(
        imported.runbook.procedures[0].steps[4].body,
        ["Slack: #incidentes-criticos", "Email: equipo-tecnico@empresa.com"]
    );
    assert_eq!(unused_lines(&imported), [144, 197, 199, 384]);
    assert!(imported.scenarios[0].text.contains("# Imported by `firedrill import` from eventos-production-runbook.md: the procedure \"Nivel 1: Sistema Completamente Inaccesible\""));
    assert_valid(&imported);
}

#[test]
fn the_minimarket_runbook_is_repaired_from_mac_roman_and_gives_twelve_procedures() {
    let imported = import::read(&fixture("minimarket-operations-runbook.md")).unwrap();
    assert_eq!(imported.repairs, [import::Repair { encoding: "macintosh", lines: 104, characters: 134 }]);
    let diagnose_act =
        |name: &str, act: &str| format!("{name}: Diagnóstico (-); {act} (-) | rto - rpo - response - escalation -");
    assert_eq!(
        outline(&imported),
        [
            "p1-dashboard-no-responde-service-down: Diagnóstico (2m); Acciones Inmediatas (3m) | rto - rpo - response 5m escalation 2m".to_string(),
            "p2-base-de-datos-no-conecta-database-down: Diagnóstico (-); Paso 1: Reintentar Conexión (-); Paso 2: Si Sigue Sin Conectar (-) | rto - rpo - response 3m escalation -".to_string(),
            "p3-observability-stack-caido-no-hay-metricas-alertas: Diagnóstico (-); Acciones Inmediatas (-) | rto - rpo - response 10m escalation -".to_string(),
            "pb1-tasa-de-errores-muy-alta-5: Diagnóstico (-); Acciones Correctivas (-) | rto - rpo - response - escalation 5m".to_string(),
            diagnose_act("pb2-latencia-alta-p95-300ms", "Acciones Correctivas"),
            diagnose_act("pb3-uso-de-memoria-alto-80", "Acciones Correctivas"),
            diagnose_act("pb4-certificados-tls-expirados", "Acciones Correctivas"),
            diagnose_act("pb5-alertas-de-datos-cifrados-inaccesibles", "Acciones Correctivas"),
            "procedimiento-de-handoff: Documentar incidentes en Slack (-); Pasar runbooks y contexto (-); Verificar que no hay alertas activas (-); Crear tickets para seguimiento (-) | rto - rpo - response - escalation -".to_string(),
            "daily-health-check-realizar-cada-manana: Servicios UP (-); Endpoints responden (-); Base de datos (-); Observability (-); Alertas activas (-); Espacio en disco (-) | rto - rpo - response - escalation -".to_string(),
            "procedimiento-de-backup: Backup de BD (-); Backup de configs (-); Backup de volúmenes (-); Copiar a storage remoto (-) | rto - rpo - response - escalation -".to_string(),
            "procedimiento-de-restore: Detener servicios que acceden BD (-); Dropear BD actual (PUNTO DE NO RETORNO) (-); Crear BD vacía (-); Restaurar desde backup (-); Verificar restauración (-); Reiniciar servicios (-) | rto - rpo - response - escalation -".to_string(),
        ]
    );
    let services: Vec<_> = imported
        .runbook
        .service_targets
        .iter()
        .map(|s| (s.line, s.rto.map(|d| d.to_string()), s.rpo.map(|d| d.to_string())))
        .collect();
    let some = |s: &str| Some(s.to_string());
    assert_eq!(
        services,
        [
            (587, some("2h"), some("1d")),
            (588, some("15m"), None),
            (589, some("4h"), some("1d")),
            (590, some("1d"), some("1d"))
        ]
    );
    assert_eq!(unused_lines(&imported), [479, 480, 481, 482, 576]);
    assert_valid(&imported);
}

#[test]
fn several_runbooks_import_into_folders_named_after_them() {
    let dir = tempfile::tempdir().unwrap();
    let runbooks = [fixture("english-runbook.md"), fixture("runbook-espanol.md")];
    let out = firedrill().current_dir(dir.path()).arg("import").args(&runbooks).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", texts(&out));
    assert!(dir.path().join("english-runbook/database-failover.yaml").is_file());
    assert!(dir.path().join("english-runbook/cache-flush.yaml").is_file());
    assert!(dir.path().join("runbook-espanol/caida-de-la-base-de-datos.yaml").is_file());
    let out = firedrill().current_dir(dir.path()).args(["import", "--out", "all"]).args(&runbooks).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", texts(&out));
    assert!(dir.path().join("all/runbook-espanol/caida-de-la-base-de-datos.yaml").is_file());
}
