//! The durable queue's journal (written by the journal helper).
