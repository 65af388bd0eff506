//! Companions: objects made and deleted with another (a queue's dead-letter
//! queue, `queue:NAME.dead`), found by name and trusted only when they have
//! the same owner, so another user's object of that name is never used.

use protocol::Address;
use tracing::warn;

use super::Registry;
use crate::kinds;

impl Registry {
    /// Gives what `from` spilled to its companion; what it cannot take (or
    /// everything, if the companion was deleted) is dropped, and logged.
    pub(super) fn hand_to_companion(&mut self, from: &Address, spill: kinds::Spill) {
        let n = spill.items.len();
        let name = format!("{}{}", from.name, spill.suffix);
        let to = protocol::Name::new(&name).map(|name| Address {
            kind: from.kind,
            name,
        });
        let owner = self.objects.get(from).map(|o| o.perms.owner_uid);
        let companion = to.ok().and_then(|to| self.objects.get_mut(&to));
        // Only an object of the same owner: never another user's by that name.
        let dropped = match companion {
            Some(obj) if Some(obj.perms.owner_uid) == owner => obj.handle.take_spill(spill.items),
            _ => n,
        };
        if dropped > 0 {
            let companion = format!("{}:{name}", from.kind);
            warn!(%from, %companion, dropped,
                "dropping messages its companion could not take (full, deleted, or not the owner's)");
        }
    }

    /// The address of the companion `address` has (deleted with it), if any.
    pub fn companion_of(&self, address: &Address) -> Option<Address> {
        let parent = self.objects.get(address)?;
        let suffix = parent.handle.companion()?;
        let name = protocol::Name::new(&format!("{}{suffix}", address.name)).ok()?;
        let companion = Address {
            kind: address.kind,
            name,
        };
        // Only an object of the same owner: never another user's by that name.
        let same_owner = self
            .objects
            .get(&companion)
            .is_some_and(|c| c.perms.owner_uid == parent.perms.owner_uid);
        same_owner.then_some(companion)
    }
}
