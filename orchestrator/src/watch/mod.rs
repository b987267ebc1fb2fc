//! `relocate watch`: a full-screen live view of a move, from any terminal, through the
//! state alone: it reads the database read-only and the run's live file ([`live`]),
//! never the run itself, so watching cannot disturb a move.
//!
//! - [`live`]: the run's side, an event sink that writes `live.json` once a second;
//! - [`model`]: what is on screen, read from the state;
//! - [`view`]: drawing it (ratatui; tested with its test backend).

pub mod live;
pub mod model;
pub mod view;
