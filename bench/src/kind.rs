//! What a kind of bench implements to be listed in the kinds table
//! ([`super::kinds`]): its name on the command line, how to run it, and (for
//! kinds with a peer process) how the peer opens its channels.
//!
//! The machinery (runs, ABBA blocks, the peer protocol, statistics, the
//! report) never names a kind; it reaches them only through this trait.

use anyhow::bail;

use super::channel::Sides;
use super::ctx::Ctx;
use super::peer::{PeerArgs, PeerClient};
use super::report::Row;

/// One thing `ipcctl bench` can measure (a target on its command line).
pub trait KindBench: Sync {
    /// The target's name on the command line, also the peer's `--kind`.
    fn name(&self) -> &'static str;

    /// One line of `--help` about it.
    fn about(&self) -> &'static str;

    /// Other targets to run after this one when it is named (`mq` brings
    /// `control` and `spawn`, as before there were more kinds).
    fn with(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether its figures depend on where the processes run: if so it runs
    /// once per placement (`--placement`); if not, once, unpinned.
    fn placed(&self) -> bool {
        true
    }

    /// Measures; returns the rows for the table.
    fn run(&self, ctx: &Ctx<'_>) -> anyhow::Result<Vec<Row>>;

    /// In a `bench-peer` process: opens the channels `args` names, raw and
    /// through the daemon (`client`).
    fn open_peer(&self, args: &PeerArgs, client: &mut PeerClient) -> anyhow::Result<Sides> {
        let _ = (args, client);
        bail!("`{}` has no bench peer", self.name())
    }
}

/// The kind named `name` in `table`.
pub fn find(
    table: &[&'static dyn KindBench],
    name: &str,
) -> anyhow::Result<&'static dyn KindBench> {
    match table.iter().find(|k| k.name() == name) {
        Some(k) => Ok(*k),
        None => bail!("no bench kind named {name:?}"),
    }
}

/// The kinds named by `targets`, each followed by those it brings along
/// ([`KindBench::with`]), each once, in order. Fails on a name not in `table`.
pub fn expand(
    table: &[&'static dyn KindBench],
    targets: &[String],
) -> anyhow::Result<Vec<&'static dyn KindBench>> {
    let mut out: Vec<&'static dyn KindBench> = Vec::new();
    for target in targets {
        let kind = find(table, target)?;
        let companions = kind.with().iter().map(|n| find(table, n));
        for k in std::iter::once(Ok(kind)).chain(companions) {
            let k = k?;
            if !out.iter().any(|o| o.name() == k.name()) {
                out.push(k);
            }
        }
    }
    Ok(out)
}

/// The names in `table` as command-line values, each with its `about`.
pub fn possible_values(table: &[&'static dyn KindBench]) -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        table
            .iter()
            .map(|k| clap::builder::PossibleValue::new(k.name()).help(k.about())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake(&'static str, &'static [&'static str]);

    impl KindBench for Fake {
        fn name(&self) -> &'static str {
            self.0
        }
        fn about(&self) -> &'static str {
            "a fake"
        }
        fn with(&self) -> &'static [&'static str] {
            self.1
        }
        fn run(&self, _: &Ctx<'_>) -> anyhow::Result<Vec<Row>> {
            Ok(Vec::new())
        }
    }

    const TABLE: &[&dyn KindBench] = &[&Fake("a", &["c"]), &Fake("b", &[]), &Fake("c", &[])];

    fn names(targets: &[&str]) -> anyhow::Result<Vec<&'static str>> {
        let targets: Vec<String> = targets.iter().map(|&t| t.to_owned()).collect();
        Ok(expand(TABLE, &targets)?.iter().map(|k| k.name()).collect())
    }

    #[test]
    fn targets_bring_their_companions_once() {
        assert_eq!(names(&["a"]).unwrap(), ["a", "c"]);
        assert_eq!(names(&["b", "a", "c"]).unwrap(), ["b", "a", "c"]);
        assert_eq!(names(&["c", "a"]).unwrap(), ["c", "a"]);
        assert!(names(&["shm"]).is_err());
    }

    #[test]
    fn a_kind_without_a_peer_says_so() {
        let mut client = crate::peer::PeerClient::unconnected(None);
        let args = PeerArgs::new("b", crate::channel::Role::Echo, 64);
        let err = TABLE[1].open_peer(&args, &mut client).err().unwrap();
        assert!(err.to_string().contains("no bench peer"), "{err}");
    }
}
