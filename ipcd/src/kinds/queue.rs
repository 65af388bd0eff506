//! `queue:NAME` — placeholder on the `queue` branch while the kind is written.

pub mod journal;

use protocol::{KindOp, Name};

use super::{CreateArgs, Held, KindModule, KindObject, Namespace, Reopened};
use crate::access::Need;
use crate::error::RequestError;

/// The `queue` kind.
pub struct Module;

impl KindModule for Module {
    fn kernel_name(&self, _ns: &Namespace, _name: &Name) -> Option<String> {
        None
    }
    fn cost(&self, _args: &CreateArgs<'_>) -> Result<Held, RequestError> {
        Ok(Held::default())
    }
    fn create(&self, _args: &CreateArgs<'_>) -> Result<Box<dyn KindObject>, RequestError> {
        Err(RequestError::InvalidArgument("queues are not written yet".into()))
    }
    fn reopen(&self, _k: Option<&str>, _s: &serde_json::Value) -> Result<Reopened, RequestError> {
        Ok(Reopened::Gone("queues are not written yet".into()))
    }
    fn unlink(&self, _kernel_name: &str) -> Result<(), RequestError> {
        Ok(())
    }
    fn owner(&self, _kernel_name: &str) -> Option<u32> {
        None
    }
    fn op_needs(&self, _op: &KindOp) -> Need {
        Need::Owner
    }
}
