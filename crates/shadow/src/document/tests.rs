#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn lightbulb_flow_round_trips() {
    let limits = Limits::default();
    let report = parse_update(br#"{"state":{"reported":{"color":"red"}}}"#, &limits).unwrap();
    let created = apply_update(None, 0, &report, 100, &limits).unwrap();
    assert_eq!(created.shadow.version(), 1);
    let restored = Shadow::from_bytes(&created.shadow.to_bytes()).unwrap();
    assert_eq!(restored, created.shadow);
}
