//! Who may do what: Unix-style owner/group/other bits checked against the
//! caller's socket credentials. Root may do anything.

use crate::registry::Object;
use crate::session::Peer;

/// Read bit: receive, map.
const READ: u32 = 4;
/// Write bit: send.
const WRITE: u32 = 2;

/// The caller's permission bits (0–7) on `obj`: the owner, group or other triple.
///
/// The group is the caller's primary gid from `SO_PEERCRED`; supplementary groups
/// are not consulted.
fn class_bits(peer: &Peer, obj: &Object) -> u32 {
    if peer.uid == obj.owner_uid {
        (obj.mode >> 6) & 7
    } else if peer.gid == obj.owner_gid {
        (obj.mode >> 3) & 7
    } else {
        obj.mode & 7
    }
}

/// Whether `peer` may open `obj` for reading and/or writing.
pub fn may_open(peer: &Peer, obj: &Object, read: bool, write: bool) -> bool {
    if peer.uid == 0 {
        return true;
    }
    let bits = class_bits(peer, obj);
    (!read || bits & READ != 0) && (!write || bits & WRITE != 0)
}

/// Whether `peer` may see `obj` in `list` and `stat` it: any access at all.
pub fn may_see(peer: &Peer, obj: &Object) -> bool {
    peer.uid == 0 || peer.uid == obj.owner_uid || class_bits(peer, obj) & (READ | WRITE) != 0
}

/// Whether `peer` may delete `obj`: its owner or root.
pub fn may_delete(peer: &Peer, obj: &Object) -> bool {
    peer.uid == 0 || peer.uid == obj.owner_uid
}
