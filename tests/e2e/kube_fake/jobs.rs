//! Jobs whose pods run for real: with [`FakeSpec::run_jobs`](super::FakeSpec::run_jobs), each
//! pod of an Indexed Job runs a local program (the container's `firedrill` command is the
//! firedrill binary under test) once the pod is Running, with the container's args, `$(VAR)`
//! expanded from its environment as the kubelet does (`JOB_COMPLETION_INDEX` is the pod's
//! index); its standard output is the pod's log, followed as it grows. The pod Succeeds or
//! Fails with the process. A pod deleted kills its process; a Job deleted takes its pods with
//! it (the garbage collector's part, with any propagation).

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use serde_json::{json, Value};

use super::cluster::FakeSpec;
use super::controller::{owner_reference, place, record_event};
use super::store::{text, Kind, State};

/// The label Kubernetes gives a Job's pods.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";

/// A pod's process output so far, shared with the thread that reads it.
#[derive(Clone, Default)]
pub struct Output(Arc<Mutex<Printed>>);

#[derive(Default)]
struct Printed {
    bytes: Vec<u8>,
    /// The whole output is read.
    eof: bool,
    /// Whether the process exited successfully, once it exited.
    exit: Option<bool>,
}

impl Output {
    /// The bytes from `from` on, and whether that is all there will be.
    pub fn since(&self, from: usize) -> (Vec<u8>, bool) {
        let printed = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        (printed.bytes.get(from..).unwrap_or_default().to_vec(), printed.eof && printed.exit.is_some())
    }

    /// How the process ended, once it did and its output is read.
    fn ended(&self) -> Option<bool> {
        let printed = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        printed.exit.filter(|_| printed.eof)
    }
}

/// A Job pod's running program.
pub struct Process {
    child: Child,
    /// What it printed.
    pub output: Output,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One pass: each Job's pods created once, the Running ones' programs started, the ended
/// ones' pods finished, and what lost its owner removed.
pub fn reconcile(state: &mut State, spec: &FakeSpec, now: Instant) {
    let Some(program) = &spec.job_program else { return };
    for job in state.list("jobs", None) {
        create_pods(state, spec, &job, now);
    }
    for pod in state.list("pods", None) {
        let namespace = text(&pod, "/metadata/namespace").to_string();
        let name = text(&pod, "/metadata/name").to_string();
        let job = text(&pod, &format!("/metadata/labels/{}", JOB_NAME_LABEL.replace('/', "~1"))).to_string();
        if job.is_empty() {
            continue;
        }
        if state.get("jobs", &namespace, &job).is_none() {
            state.remove(Kind::named("pods"), &namespace, &name);
            continue;
        }
        let key = (namespace.clone(), name.clone());
        if text(&pod, "/status/phase") == "Running" && !state.processes.contains_key(&key) {
            let process = start(program, &pod);
            state.processes.insert(key.clone(), process);
        }
        if let Some(success) = state.processes.get_mut(&key).and_then(Process::ended) {
            if text(&pod, "/status/phase") == "Running" {
                let mut finished = pod.clone();
                finished["status"]["phase"] = json!(if success { "Succeeded" } else { "Failed" });
                finished["status"]["conditions"] = json!([]);
                state.update(Kind::named("pods"), finished);
            }
        }
    }
    let pods: Vec<(String, String)> = state
        .list("pods", None)
        .iter()
        .map(|p| (text(p, "/metadata/namespace").to_string(), text(p, "/metadata/name").to_string()))
        .collect();
    state.processes.retain(|key, _| pods.contains(key));
}

/// The pods of an Indexed Job, `<job>-<index>`, made once (a finished pod is not replaced).
fn create_pods(state: &mut State, spec: &FakeSpec, job: &Value, now: Instant) {
    let namespace = text(job, "/metadata/namespace").to_string();
    let name = text(job, "/metadata/name").to_string();
    if !state.jobs_started.insert((namespace.clone(), name.clone())) {
        return;
    }
    let completions = job.pointer("/spec/completions").and_then(Value::as_i64).unwrap_or(1);
    let template = &job["spec"]["template"];
    for index in 0..completions {
        let pod_name = format!("{name}-{index}");
        let mut labels = template["metadata"]["labels"].clone();
        if !labels.is_object() {
            labels = json!({});
        }
        labels[JOB_NAME_LABEL] = json!(name);
        labels["batch.kubernetes.io/job-completion-index"] = json!(index.to_string());
        let mut pod_spec = template["spec"].clone();
        for container in pod_spec["containers"].as_array_mut().into_iter().flatten() {
            let env = container["env"].as_array().cloned().unwrap_or_default();
            let mut env: Vec<Value> = env;
            env.push(json!({ "name": "JOB_COMPLETION_INDEX", "value": index.to_string() }));
            container["env"] = json!(env);
        }
        let object = json!({
            "metadata": { "name": pod_name, "labels": labels, "ownerReferences": owner_reference(job) },
            "spec": pod_spec,
            "status": { "phase": "Pending" },
        });
        state.create(Kind::named("pods"), &namespace, object).expect("a pod of a Job");
        record_event(state, job, "SuccessfulCreate", format!("Created pod: {pod_name}"), "job-controller");
        place(state, spec, &namespace, &pod_name, None, now, false);
    }
}

/// Starts `program` for `pod`'s first container: its args with `$(VAR)` expanded from the
/// container's environment, its standard output kept.
fn start(program: &std::path::Path, pod: &Value) -> Process {
    let container = &pod["spec"]["containers"][0];
    let env: Vec<(String, String)> = container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| (text(e, "/name").to_string(), text(e, "/value").to_string()))
        .collect();
    let expand = |arg: &str| env.iter().fold(arg.to_string(), |a, (k, v)| a.replace(&format!("$({k})"), v));
    let args: Vec<String> =
        container["args"].as_array().into_iter().flatten().filter_map(Value::as_str).map(expand).collect();
    let mut child = Command::new(program)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the Job's program starts");
    let output = Output::default();
    let mut stdout = child.stdout.take().expect("its standard output");
    let kept = output.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = stdout.read(&mut chunk) {
            kept.0.lock().unwrap_or_else(PoisonError::into_inner).bytes.extend_from_slice(&chunk[..n]);
        }
        kept.0.lock().unwrap_or_else(PoisonError::into_inner).eof = true;
    });
    Process { child, output }
}

impl Process {
    /// How it ended, once it exited and its output is all read.
    fn ended(&mut self) -> Option<bool> {
        if let Ok(Some(status)) = self.child.try_wait() {
            self.output.0.lock().unwrap_or_else(PoisonError::into_inner).exit.get_or_insert(status.success());
        }
        self.output.ended()
    }
}
