//! Turns the operations of a group into statements (backend independent).
//!
//! A group is written in one transaction, so only its final effect matters. Operations on
//! outbound messages (the hot path: queue, send, acknowledge) are folded per message key into
//! one net effect — insert, state change or delete — and the net effects of different keys
//! commute, so they are written as a few multi-row statements of up to [`MAX_ROWS`] rows per
//! kind, however the operations of different clients interleave. Outbound operations also
//! commute with the operations on other tables (no foreign keys, no triggers), except
//! `DeleteSession`, which also deletes outbound messages: it is a barrier, before which the
//! pending outbound effects are written. Every other operation (retained messages, sessions,
//! subscriptions, registry records, shadows) is one statement, in order.

use std::collections::HashMap;

use crate::{OutboundRecord, OutboundState, WriteOp};

/// Most rows in one multi-row statement.
pub(crate) const MAX_ROWS: usize = 128;

#[derive(Debug)]
pub(crate) enum Step {
    /// Outbound messages to insert, replacing any with the same key; no key twice.
    PutOutbound(Vec<OutboundRecord>),
    /// State changes of existing outbound messages; no key twice.
    SetOutboundState(Vec<(String, u64, OutboundState)>),
    /// Outbound messages to delete, by client id and seq.
    DeleteOutbound(Vec<(String, u64)>),
    /// Any other operation (never an outbound one).
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

/// The net effect of a group's operations on one outbound message.
enum Net {
    Put(OutboundRecord),
    Set(OutboundState),
    Delete,
}

#[derive(Default)]
struct Pending {
    effects: Vec<((String, u64), Net)>,
    index: HashMap<(String, u64), usize>,
}

impl Pending {
    fn fold(&mut self, key: (String, u64), op: impl FnOnce(Option<Net>) -> Net) {
        match self.index.get(&key) {
            Some(&i) => {
                let (_, slot) = &mut self.effects[i];
                let old = std::mem::replace(slot, Net::Delete);
                *slot = op(Some(old));
            }
            None => {
                self.index.insert(key.clone(), self.effects.len());
                self.effects.push((key, op(None)));
            }
        }
    }

    /// Appends the pending effects as multi-row steps.
    fn drain_into(&mut self, steps: &mut Vec<Step>) {
        self.index.clear();
        let mut puts = Vec::new();
        let mut sets = Vec::new();
        let mut deletes = Vec::new();
        for ((client_id, seq), net) in self.effects.drain(..) {
            match net {
                Net::Put(record) => puts.push(record),
                Net::Set(state) => sets.push((client_id, seq, state)),
                Net::Delete => deletes.push((client_id, seq)),
            }
        }
        chunks(deletes, Step::DeleteOutbound, steps);
        chunks(puts, Step::PutOutbound, steps);
        chunks(sets, Step::SetOutboundState, steps);
    }
}

fn chunks<T>(mut rows: Vec<T>, step: fn(Vec<T>) -> Step, steps: &mut Vec<Step>) {
    while rows.len() > MAX_ROWS {
        let rest = rows.split_off(MAX_ROWS);
        steps.push(step(std::mem::replace(&mut rows, rest)));
    }
    if !rows.is_empty() {
        steps.push(step(rows));
    }
}

pub(crate) fn plan(batches: Vec<Vec<WriteOp>>) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut pending = Pending::default();
    for op in batches.into_iter().flatten() {
        match op {
            WriteOp::PutOutbound(record) => {
                pending.fold((record.client_id.clone(), record.seq), |_| Net::Put(record));
            }
            WriteOp::SetOutboundState {
                client_id,
                seq,
                state,
            } => {
                pending.fold((client_id, seq), |old| match old {
                    Some(Net::Put(mut record)) => {
                        record.state = state;
                        Net::Put(record)
                    }
                    // Deleted before: the change finds no message.
                    Some(Net::Delete) => Net::Delete,
                    Some(Net::Set(_)) | None => Net::Set(state),
                });
            }
            WriteOp::DeleteOutbound { client_id, seq } => {
                pending.fold((client_id, seq), |_| Net::Delete);
            }
            op @ WriteOp::DeleteSession { .. } => {
                pending.drain_into(&mut steps);
                steps.push(Step::Single(op));
            }
            other => steps.push(Step::Single(other)),
        }
    }
    pending.drain_into(&mut steps);
    steps
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::conformance::{outbound, retained};

    fn shape(steps: &[Step]) -> Vec<(char, usize)> {
        steps
            .iter()
            .map(|s| match s {
                Step::PutOutbound(r) => ('p', r.len()),
                Step::SetOutboundState(r) => ('s', r.len()),
                Step::DeleteOutbound(r) => ('d', r.len()),
                Step::Single(_) => ('1', 1),
            })
            .collect()
    }

    #[test]
    fn interleaved_clients_become_one_statement_per_kind() {
        let mut ops = Vec::new();
        for c in 0..50 {
            let client = format!("c{c}");
            ops.push(WriteOp::PutOutbound(outbound(&client, 10)));
            ops.push(WriteOp::SetOutboundState {
                client_id: client.clone(),
                seq: 9,
                state: OutboundState::Published { packet_id: 1 },
            });
            ops.push(WriteOp::DeleteOutbound {
                client_id: client.clone(),
                seq: 8,
            });
            ops.push(WriteOp::PutRetained(retained(&client, b"")));
        }
        let steps = plan(vec![ops]);
        let mut expected = vec![('1', 1); 50];
        expected.extend([('d', 50), ('p', 50), ('s', 50)]);
        assert_eq!(shape(&steps), expected);
    }

    #[test]
    fn delete_session_is_a_barrier_and_runs_split_at_max_rows() {
        let put = |seq| WriteOp::PutOutbound(outbound("c", seq));
        let mut ops: Vec<WriteOp> = (0..MAX_ROWS as u64 + 5).map(put).collect();
        ops.push(WriteOp::DeleteSession {
            client_id: "c".into(),
        });
        ops.push(put(1));
        assert_eq!(
            shape(&plan(vec![ops])),
            vec![('p', MAX_ROWS), ('p', 5), ('1', 1), ('p', 1)]
        );
    }

    #[test]
    fn registry_ops_are_single_steps_in_order() {
        let put = |key: &str| WriteOp::PutRegistry(crate::conformance::registry("k", key, b"{}"));
        let delete = |key: &str| crate::conformance::delete_registry("k", key);
        let ops = vec![
            put("a"),
            WriteOp::PutOutbound(outbound("c", 1)),
            delete("a"),
            delete("b"),
            WriteOp::PutOutbound(outbound("c", 2)),
            put("b"),
        ];
        let steps = plan(vec![ops.clone()]);
        assert_eq!(
            shape(&steps),
            vec![('1', 1); 4]
                .into_iter()
                .chain([('p', 2)])
                .collect::<Vec<_>>()
        );
        let singles: Vec<&WriteOp> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Single(op) => Some(op),
                _ => None,
            })
            .collect();
        assert_eq!(singles, vec![&ops[0], &ops[2], &ops[3], &ops[5]]);
    }

    #[test]
    fn shadow_ops_are_single_steps_in_order() {
        use crate::conformance::{delete_shadow, shadow};
        // Outbound operations wait for the next barrier (DeleteSession) or the end; shadow
        // operations keep their places.
        let ops = [
            WriteOp::PutShadow(shadow("t", "a", 1, Some(b"{}"))),
            WriteOp::PutOutbound(outbound("t", 1)),
            delete_shadow("t", "a"),
            WriteOp::DeleteSession {
                client_id: "t".into(),
            },
            WriteOp::PutShadow(shadow("t", "a", 2, None)),
            WriteOp::PutOutbound(outbound("t", 2)),
            WriteOp::PutShadow(shadow("t", "", 1, Some(b"{}"))),
        ];
        let steps = plan(vec![ops[..3].to_vec(), ops[3..].to_vec()]);
        assert_eq!(
            shape(&steps),
            vec![
                ('1', 1),
                ('1', 1),
                ('p', 1),
                ('1', 1),
                ('1', 1),
                ('1', 1),
                ('p', 1)
            ]
        );
        let singles: Vec<&WriteOp> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Single(op) => Some(op),
                _ => None,
            })
            .collect();
        assert_eq!(singles, vec![&ops[0], &ops[2], &ops[3], &ops[4], &ops[6]]);
    }

    /// The tables the model test follows: outbound messages and shadows.
    #[derive(Debug, Clone, Default, PartialEq)]
    struct Model {
        outbound: BTreeMap<(String, u64), OutboundRecord>,
        shadows: BTreeMap<(String, String), crate::ShadowRecord>,
    }

    /// Executes steps on the model, as the SQL does.
    fn run_steps(steps: Vec<Step>, model: &mut Model) {
        for step in steps {
            let table = &mut model.outbound;
            match step {
                Step::PutOutbound(records) => {
                    let mut keys: Vec<_> = records
                        .iter()
                        .map(|r| (r.client_id.clone(), r.seq))
                        .collect();
                    keys.sort();
                    keys.dedup();
                    assert_eq!(keys.len(), records.len(), "a key twice in one statement");
                    for r in records {
                        table.insert((r.client_id.clone(), r.seq), r);
                    }
                }
                Step::SetOutboundState(rows) => {
                    for (c, s, state) in rows {
                        if let Some(r) = table.get_mut(&(c, s)) {
                            r.state = state;
                        }
                    }
                }
                Step::DeleteOutbound(keys) => {
                    for k in keys {
                        table.remove(&k);
                    }
                }
                Step::Single(op) => run_op(op, model),
            }
        }
    }

    /// Executes one operation on the model, the reference semantics.
    fn run_op(op: WriteOp, model: &mut Model) {
        let table = &mut model.outbound;
        match op {
            WriteOp::PutOutbound(r) => {
                table.insert((r.client_id.clone(), r.seq), r);
            }
            WriteOp::SetOutboundState {
                client_id,
                seq,
                state,
            } => {
                if let Some(r) = table.get_mut(&(client_id, seq)) {
                    r.state = state;
                }
            }
            WriteOp::DeleteOutbound { client_id, seq } => {
                table.remove(&(client_id, seq));
            }
            WriteOp::DeleteSession { client_id } => table.retain(|(c, _), _| *c != client_id),
            WriteOp::PutShadow(r) => {
                model
                    .shadows
                    .insert((r.thing_name.clone(), r.shadow_name.clone()), r);
            }
            WriteOp::DeleteShadow {
                thing_name,
                shadow_name,
            } => {
                model.shadows.remove(&(thing_name, shadow_name));
            }
            _ => {}
        }
    }

    #[test]
    fn planned_steps_have_the_effect_of_the_operations_in_order() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let shadow_names = ["", "a"];
        for _ in 0..2000 {
            let mut initial = Model::default();
            for c in 0..2 {
                for seq in 0..3 {
                    if next(2) == 0 {
                        let r = outbound(&format!("c{c}"), seq);
                        initial.outbound.insert((r.client_id.clone(), seq), r);
                    }
                }
                for name in shadow_names {
                    if next(2) == 0 {
                        let r = crate::conformance::shadow(&format!("c{c}"), name, 0, Some(b"0"));
                        initial
                            .shadows
                            .insert((r.thing_name.clone(), name.into()), r);
                    }
                }
            }
            let len = next(12) as usize;
            let mut batches = vec![Vec::new()];
            for _ in 0..len {
                let client = format!("c{}", next(2));
                let seq = next(3);
                let shadow_name = shadow_names[next(2) as usize];
                let op = match next(13) {
                    0..=2 => {
                        let mut r = outbound(&client, seq);
                        r.message.payload = bytes::Bytes::from(next(1000).to_string());
                        WriteOp::PutOutbound(r)
                    }
                    3..=5 => WriteOp::SetOutboundState {
                        client_id: client,
                        seq,
                        state: OutboundState::Published {
                            packet_id: next(100) as u16 + 1,
                        },
                    },
                    6 | 7 => WriteOp::DeleteOutbound {
                        client_id: client,
                        seq,
                    },
                    8 => WriteOp::DeleteSession { client_id: client },
                    9 | 10 => {
                        let version = next(1000);
                        let document = version.to_string();
                        let document = (next(3) > 0).then_some(document.as_bytes());
                        WriteOp::PutShadow(crate::conformance::shadow(
                            &client,
                            shadow_name,
                            version,
                            document,
                        ))
                    }
                    _ => crate::conformance::delete_shadow(&client, shadow_name),
                };
                if next(4) == 0 {
                    batches.push(Vec::new());
                }
                batches.last_mut().expect("a batch").push(op);
            }
            let mut expected = initial.clone();
            for op in batches.iter().flatten().cloned() {
                run_op(op, &mut expected);
            }
            let mut got = initial;
            run_steps(plan(batches.clone()), &mut got);
            assert_eq!(got, expected, "{batches:?}");
        }
    }
}
