//! `max_blast_radius` on the Docker Engine: before each inject, the containers the fault would
//! affect now (a drain: those running on the node at that moment, wherever the scheduler put
//! them), with those the drill affected before, are counted against the limit, and the fault
//! is refused before anything changes. The load-time check only sees declared placements.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;

use super::Inner;
use crate::scenario::{BlastRadiusExceeded, Fault};

/// The limit and what the drill has affected so far.
#[derive(Default)]
pub(super) struct BlastRadius {
    /// `max_blast_radius`, if the scenario sets one.
    pub(super) limit: Cell<Option<u32>>,
    /// The containers the faults admitted so far affect.
    affected: RefCell<BTreeSet<String>>,
}

impl Inner {
    /// Admits `fault` when the drill's containers affected stay within the limit; refuses it
    /// otherwise. An admitted fault's containers count from then on, even if its inject fails:
    /// a failed inject may have reached some of them.
    pub(super) fn admit(&self, fault: &Fault) -> Result<(), BlastRadiusExceeded> {
        let mut affected = self.blast.affected.borrow().clone();
        affected.extend(self.affected_now(fault));
        if let Some(refused) = self
            .blast
            .limit
            .get()
            .and_then(|limit| BlastRadiusExceeded::check(fault, affected.iter().cloned().collect(), limit))
        {
            return Err(refused);
        }
        *self.blast.affected.borrow_mut() = affected;
        Ok(())
    }

    /// The containers `fault` would affect if injected now.
    fn affected_now(&self, fault: &Fault) -> Vec<String> {
        match fault {
            Fault::NodeDrain { node, .. } => self.workloads_on(node),
            _ => fault.container_target().map(str::to_string).into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::env::docker::{DockerEnv, DrillInfo, Target};
    use crate::scenario::{DockerStack, Fault};

    #[test]
    fn faults_are_refused_once_the_drill_would_affect_more_than_the_limit() {
        let env = DockerEnv::new(DockerStack::default(), "test", DrillInfo::unused()).with_max_blast_radius(Some(2));
        let inner = &env.inner;
        let on =
            |node: &str| Target { id: String::new(), network: String::new(), aliases: vec![], node: Some(node.into()) };
        for (name, node) in [("web-1", "node-a"), ("web-2", "node-a"), ("web-3", "node-b")] {
            inner.targets.borrow_mut().insert(name.into(), on(node));
        }
        let pause = |target: &str| Fault::ContainerPause { target: target.into(), duration: None };
        let drain = |node: &str| Fault::NodeDrain {
            node: node.into(),
            grace_period: crate::duration::Dur::secs(1),
            deadline: None,
        };
        inner.admit(&pause("web-3")).expect("one container");
        // web-3 again is still one container.
        inner.admit(&pause("web-3")).expect("the same container");
        let refused = inner.admit(&drain("node-a")).expect_err("three containers in all").to_string();
        assert_eq!(
            refused,
            "node_drain of node-a would affect 3 container(s) (web-1, web-2, web-3); max_blast_radius is 2"
        );
        // A refused fault counts nothing.
        inner.admit(&pause("web-1")).expect("two containers");
        let refused = inner.admit(&pause("web-2")).expect_err("three containers");
        assert_eq!(refused.subject, "container_pause of web-2");
    }
}
