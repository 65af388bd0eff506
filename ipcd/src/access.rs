//! Who may do what: Unix-style owner/group/other bits checked against the
//! caller's socket credentials. Root may do anything.
//!
//! The rule for objects a caller may not use: every request answers
//! `permission-denied` (never `not-found`). Names are global and `create`
//! answers `already-exists` for any taken name, so existence is not a secret;
//! `list` leaves such objects out only to keep listings relevant.

use crate::peer::Peer;

/// Read bit: receive, read, map, wait for readable.
const READ: u32 = 4;
/// Write bit: send, write, close, wait for writable.
const WRITE: u32 = 2;

/// An object's owner and permission bits: all that access checks look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permissions {
    /// Owner uid.
    pub owner_uid: u32,
    /// Owner gid.
    pub owner_gid: u32,
    /// Permission bits, at most `0o777`.
    pub mode: u32,
}

/// What a request needs of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// The read bit.
    Read,
    /// The write bit.
    Write,
    /// Both bits.
    ReadWrite,
    /// Ownership (or root): delete.
    Owner,
}

impl Need {
    /// Words for error messages: "reading", "writing", …
    pub fn describe(self) -> &'static str {
        match self {
            Need::Read => "reading",
            Need::Write => "writing",
            Need::ReadWrite => "reading and writing",
            Need::Owner => "deleting (owner or root only)",
        }
    }
}

impl Permissions {
    /// The caller's permission bits (0–7): the owner, group or other triple.
    ///
    /// The group is the caller's primary gid from `SO_PEERCRED`; supplementary
    /// groups are not consulted.
    fn class_bits(&self, peer: &Peer) -> u32 {
        if peer.uid == self.owner_uid {
            (self.mode >> 6) & 7
        } else if peer.gid == self.owner_gid {
            (self.mode >> 3) & 7
        } else {
            self.mode & 7
        }
    }

    /// Whether `peer` may do what `need` asks.
    pub fn allows(&self, peer: &Peer, need: Need) -> bool {
        if peer.is_root() {
            return true;
        }
        let bits = self.class_bits(peer);
        match need {
            Need::Read => bits & READ != 0,
            Need::Write => bits & WRITE != 0,
            Need::ReadWrite => bits & (READ | WRITE) == READ | WRITE,
            Need::Owner => peer.uid == self.owner_uid,
        }
    }

    /// Whether `peer` may see the object in `list`: its owner, root, or anyone
    /// with a read or write bit.
    pub fn visible_to(&self, peer: &Peer) -> bool {
        peer.is_root() || peer.uid == self.owner_uid || self.class_bits(peer) & (READ | WRITE) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: Peer = Peer {
        pid: 1,
        uid: 1000,
        gid: 100,
    };
    const GROUP: Peer = Peer {
        pid: 2,
        uid: 1001,
        gid: 100,
    };
    const OTHER: Peer = Peer {
        pid: 3,
        uid: 1002,
        gid: 200,
    };
    const ROOT: Peer = Peer {
        pid: 4,
        uid: 0,
        gid: 0,
    };

    fn perms(mode: u32) -> Permissions {
        Permissions {
            owner_uid: 1000,
            owner_gid: 100,
            mode,
        }
    }

    /// Every class × every bit pattern × every need, against the Unix rule.
    #[test]
    fn each_class_gets_exactly_its_own_bits() {
        for (peer, shift) in [(OWNER, 6), (GROUP, 3), (OTHER, 0)] {
            for bits in 0..8u32 {
                let p = perms(bits << shift);
                let r = bits & 4 != 0;
                let w = bits & 2 != 0;
                assert_eq!(p.allows(&peer, Need::Read), r, "{peer:?} {bits:o}");
                assert_eq!(p.allows(&peer, Need::Write), w, "{peer:?} {bits:o}");
                assert_eq!(
                    p.allows(&peer, Need::ReadWrite),
                    r && w,
                    "{peer:?} {bits:o}"
                );
                assert_eq!(
                    p.visible_to(&peer),
                    r || w || peer == OWNER,
                    "{peer:?} {bits:o}"
                );
            }
        }
    }

    #[test]
    fn bits_of_another_class_grant_nothing() {
        // Group and other may read, the owner may not: the owner's triple decides.
        let p = perms(0o044);
        assert!(!p.allows(&OWNER, Need::Read));
        assert!(p.allows(&GROUP, Need::Read));
        assert!(p.allows(&OTHER, Need::Read));
        // Other may write but group may not: a group member is judged by the group triple.
        let p = perms(0o602);
        assert!(!p.allows(&GROUP, Need::Write));
        assert!(p.allows(&OTHER, Need::Write));
    }

    #[test]
    fn only_the_owner_or_root_may_delete() {
        let p = perms(0o777);
        assert!(p.allows(&OWNER, Need::Owner));
        assert!(p.allows(&ROOT, Need::Owner));
        assert!(!p.allows(&GROUP, Need::Owner));
        assert!(!p.allows(&OTHER, Need::Owner));
    }

    #[test]
    fn root_may_do_anything_and_sees_everything() {
        let p = perms(0o000);
        for need in [Need::Read, Need::Write, Need::ReadWrite, Need::Owner] {
            assert!(p.allows(&ROOT, need));
        }
        assert!(p.visible_to(&ROOT));
        assert!(p.visible_to(&OWNER), "an owner always sees their object");
        assert!(!p.visible_to(&GROUP));
        assert!(!p.visible_to(&OTHER));
    }
}
