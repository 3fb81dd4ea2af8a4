use std::fmt;

// ANCHOR: part
pub fn shown() {}
// ANCHOR_END: part

fn hidden() {}
