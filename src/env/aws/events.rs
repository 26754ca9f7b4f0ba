//! What an RDS event says about a failover. The SDK's `Event` has no event id (RDS-EVENT-00xx),
//! only its message, so the message is matched on the words that tell the events apart (AWS's
//! "Amazon RDS event categories and event messages" pages, for DB instances and DB clusters);
//! an event no rule knows is kept as it came, never guessed at.

/// A step of a failover, as an RDS event says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailoverEvent {
    /// The failover started (instance RDS-EVENT-0013; cluster 0072 same AZ, 0073 cross AZ).
    Started,
    /// The standby was promoted; DNS may still point at the old primary for a while (0015).
    Promoted,
    /// The failover completed (instance 0049; cluster 0071).
    Completed,
    /// RDS did not fail over, because one happened recently (0034): the drill measured nothing.
    Refused,
    /// The cluster's failover failed (0069).
    Failed,
}

impl FailoverEvent {
    /// The step an event's message tells of, if it is one.
    pub fn of(message: &str) -> Option<FailoverEvent> {
        let m = message.to_ascii_lowercase();
        if !m.contains("failover") && !m.contains("fail over") && !m.contains("promot") {
            return None;
        }
        if m.contains("not attempting") {
            Some(FailoverEvent::Refused)
        } else if m.contains("failed") {
            Some(FailoverEvent::Failed)
        } else if m.contains("dns") || (m.contains("promotion") && m.contains("complete")) {
            Some(FailoverEvent::Promoted)
        } else if m.contains("started") || m.contains("has started") {
            Some(FailoverEvent::Started)
        } else if m.contains("complete") {
            Some(FailoverEvent::Completed)
        } else {
            None
        }
    }

    /// What it means, in words, for the evidence.
    pub fn meaning(self) -> &'static str {
        match self {
            FailoverEvent::Started => "the failover started",
            FailoverEvent::Promoted => "the standby was promoted (DNS may still point at the old primary)",
            FailoverEvent::Completed => "the failover completed",
            FailoverEvent::Refused => "RDS did not fail over: one happened recently, so this drill measured nothing",
            FailoverEvent::Failed => "the failover failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FailoverEvent::{self, *};

    #[test]
    fn the_failover_events_are_told_apart_by_their_words_and_others_are_not_guessed() {
        for (message, step) in [
            ("A Multi-AZ failover that resulted in the promotion of a standby instance has started.", Some(Started)),
            (
                "A Multi-AZ failover that resulted in the promotion of a standby instance is complete. It may take several minutes for the DNS to transfer to the new primary DB instance.",
                Some(Promoted),
            ),
            ("Multi-AZ instance failover completed", Some(Completed)),
            // The same events as the User Guide's table words them today (0013, 0015, 0049),
            // and as its CloudWatch Events example of 0049 did ("has completed").
            ("Multi-AZ instance failover started.", Some(Started)),
            ("Multi-AZ failover to standby complete - DNS propagation in progress.", Some(Promoted)),
            ("Multi-AZ instance failover completed.", Some(Completed)),
            ("A Multi-AZ failover has completed.", Some(Completed)),
            ("Amazon RDS is not attempting a requested failover because a failover recently occurred on the DB instance.", Some(Refused)),
            ("Started cross AZ failover to DB instance: shop-db-2", Some(Started)),
            ("Started same AZ failover to DB instance: shop-db-2", Some(Started)),
            ("Completed failover to DB instance: shop-db-2", Some(Completed)),
            ("Cluster failover failed, check the health of your cluster instances and try again", Some(Failed)),
            ("Finished DB instance backup", None),
            ("DB instance restarted", None),
        ] {
            assert_eq!(FailoverEvent::of(message), step, "{message}");
        }
    }
}
