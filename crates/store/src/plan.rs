//! Turns the operations of a group into statements (backend independent).
//!
//! Runs of consecutive outbound inserts, or of consecutive outbound deletes, become multi-row
//! statements of up to [`MAX_ROWS`] rows; every other operation is its own step. Executing the
//! steps in order has the effect of executing the operations in order.

use crate::{OutboundRecord, WriteOp};

/// Most rows in one multi-row statement.
pub(crate) const MAX_ROWS: usize = 128;

pub(crate) enum Step {
    /// Outbound messages to insert (replacing), no key twice.
    PutOutbound(Vec<OutboundRecord>),
    /// Outbound messages to delete, by client id and seq.
    DeleteOutbound(Vec<(String, u64)>),
    /// Any other operation.
    Single(WriteOp),
}

impl Step {
    /// Statements the step executes.
    pub(crate) fn statements(&self) -> usize {
        match self {
            Step::Single(WriteOp::DeleteSession { .. }) => crate::sql::DELETE_SESSION.len(),
            _ => 1,
        }
    }
}

pub(crate) fn plan(batches: Vec<Vec<WriteOp>>) -> Vec<Step> {
    let mut steps = Vec::new();
    for op in batches.into_iter().flatten() {
        match op {
            WriteOp::PutOutbound(record) => {
                if let Some(Step::PutOutbound(run)) = steps.last_mut() {
                    // A key twice in one multi-row upsert is an error on PostgreSQL: start a new
                    // statement instead (on every backend, so they all run the same shapes).
                    let duplicate = run
                        .iter()
                        .any(|p| p.seq == record.seq && p.client_id == record.client_id);
                    if !duplicate && run.len() < MAX_ROWS {
                        run.push(record);
                        continue;
                    }
                }
                steps.push(Step::PutOutbound(vec![record]));
            }
            WriteOp::DeleteOutbound { client_id, seq } => {
                if let Some(Step::DeleteOutbound(run)) = steps.last_mut()
                    && run.len() < MAX_ROWS
                {
                    run.push((client_id, seq));
                    continue;
                }
                steps.push(Step::DeleteOutbound(vec![(client_id, seq)]));
            }
            other => steps.push(Step::Single(other)),
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{outbound, retained};

    fn shape(steps: &[Step]) -> Vec<(char, usize)> {
        steps
            .iter()
            .map(|s| match s {
                Step::PutOutbound(r) => ('p', r.len()),
                Step::DeleteOutbound(r) => ('d', r.len()),
                Step::Single(_) => ('s', 1),
            })
            .collect()
    }

    #[test]
    fn runs_split_at_other_ops_duplicates_and_size() {
        let put = |seq| WriteOp::PutOutbound(outbound("c", seq));
        let del = |seq| WriteOp::DeleteOutbound {
            client_id: "c".into(),
            seq,
        };
        let steps = plan(vec![
            vec![put(1), put(2)],
            vec![
                put(3),
                del(1),
                del(2),
                put(4),
                put(4),
                WriteOp::PutRetained(retained("r", b"")),
                del(3),
            ],
            (0..MAX_ROWS as u64 + 5).map(put).collect(),
        ]);
        assert_eq!(
            shape(&steps),
            vec![
                ('p', 3),
                ('d', 2),
                ('p', 1),
                ('p', 1),
                ('s', 1),
                ('d', 1),
                ('p', MAX_ROWS),
                ('p', 5)
            ]
        );
    }
}
