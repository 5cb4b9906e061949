//! Invoice rendering (HTML and PDF); see the crate description.
