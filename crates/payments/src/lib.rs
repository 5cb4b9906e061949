//! Payment providers; see the crate description.
