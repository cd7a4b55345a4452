//! Incidents and their messages. From findings to notices (open, reminder, escalation,
//! resolved), once per incident, and the text a person reads. Pure; it decides what to say, not
//! whether a connector is broken (that is [`judge`](super::judge)), and it never sends or stores.
//!
//! - [`alert`] — the incident lifecycle and the message format.
//! - [`group`] — many connectors failing on one cause alerted as one cluster incident.

pub mod alert;
pub mod group;
