//! What to remove when the bench has to exit without unwinding (the
//! watchdog's exit when a peer dies mid-run): every module that leaves names
//! behind (raw queues, private directories) registers one function here, and
//! [`run_all`] calls them. The machinery needs to know no kind to clean up
//! after all of them.

use std::sync::Mutex;

/// A clean-up function and its name.
type Hook = (&'static str, fn());

/// Registered clean-up functions, by name (each registered once).
static HOOKS: Mutex<Vec<Hook>> = Mutex::new(Vec::new());

/// Registers `hook` under `name`, unless a hook of that name is registered already.
pub fn register(name: &'static str, hook: fn()) {
    let mut hooks = HOOKS.lock().unwrap_or_else(|e| e.into_inner());
    if !hooks.iter().any(|(n, _)| *n == name) {
        hooks.push((name, hook));
    }
}

/// Calls every registered hook, in registration order. Hooks ignore their
/// errors: nothing more can be done on the way out.
pub fn run_all() {
    let hooks = HOOKS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for (_, hook) in hooks {
        hook();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    static CALLS: AtomicU32 = AtomicU32::new(0);

    fn count() {
        CALLS.fetch_add(1, Ordering::SeqCst);
    }

    #[test]
    fn hooks_run_once_per_name() {
        register("cleanup-test", count);
        register("cleanup-test", count);
        run_all();
        assert_eq!(CALLS.load(Ordering::SeqCst), 1);
    }
}
