//! End-to-end tests: the real `ipcd` binary, driven through `ipcctl` and
//! `ipc-client`, one module per area. One test binary, many modules.

mod bad_input;
mod chaos;
mod cli_ops;
mod durable;
mod fifo;
mod hostile;
mod lifecycle;
mod limits;
mod mq_cli;
mod mq_client;
mod permissions;
mod pipe;
mod protocol_v3;
mod protocol_v4;
mod queue;
mod queue_cli;
mod queue_load;
mod ring;
mod service;
mod shm;
mod signal;
mod sync;
mod waits;
