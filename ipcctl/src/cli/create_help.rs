//! `ipcctl create --help`, after the options (kept apart so `cli.rs` stays a
//! readable size).

/// `ipcctl create --help`, after the options.
pub const CREATE_HELP: &str = "\
--capacity means different things per kind: messages for mq: and queue:, bytes
for pipe:.
The kernel caps an mq: capacity at fs.mqueue.msg_max (10 by default) and its
message size at fs.mqueue.msgsize_max (8192) for users without CAP_SYS_RESOURCE;
see /proc/sys/fs/mqueue/. Nothing goes above 65536 messages or 16 MiB per message.
The bytes queued per user are capped by RLIMIT_MSGQUEUE: ulimit -q in a shell,
LimitMSGQUEUE= in ipcd's systemd unit (it counts for ipcd's user).

A fifo: follows standard FIFO semantics: a writer waits (up to its --timeout) until
a reader has it open, and a reader sees end of file when its writers have gone.
With --buffered, ipcd holds the FIFO open itself: writers get in at once and their
bytes wait in the kernel buffer until a reader comes (lost if ipcd stops).

A shm: segment needs --size (at most 1TiB and your byte share). It is the POSIX
object /ipcd.NAME (with ipcd's default prefix; stat shows the kernel name), the
file /dev/shm/ipcd.NAME, so a program allowed to open that file can map it by
name, e.g. Python's multiprocessing.shared_memory.SharedMemory(name=\"ipcd.NAME\").
Its bytes never pass through ipcd: write/read, or map it from your program.
--adopt registers an existing segment of that name that you own (keeping its size).

A ring: is a queue of messages in shared memory for any number of senders and
receivers at once (MPMC): each message goes to exactly one receiver, first in
first out. --slots is how many messages wait at most (a power of two, 2 to
1048576; default 256), --slot-size the largest message (1 byte to 64MiB; default
1KiB); the segment, /ipcd.ring:NAME, takes about slots × slot size (stat shows
it) of your byte share. Messages never pass through ipcd: it makes the segment
and hands it out; ipcctl send/recv and ipc-client's Ring copy messages into and
out of its slots. Using a ring takes both the read and the write permission
bits (receivers update slot states too). A receiver killed while holding a
message loses it (at most once); a sender killed while writing loses its
message; neither blocks the others. --adopt registers an existing ring segment
of that name (keeping its slots).

A sem: is a counting semaphore with --initial permits (default 1), bounded by
--max if given; it is also the POSIX named semaphore /ipcd.NAME for sem_open(3).
A lock: is a mutex with an owner (--reentrant: its holder may take it again). An
event: is a flag processes wait for (--set: created set). A barrier: lets
--parties processes through together. What a connection acquires is given back
when it closes (see ipcctl with). Permission bits: acquire, take, release, set,
clear, reset and a barrier's wait need write; waiting for an event needs read.

A queue: is a work queue held in ipcd itself: its messages pass through the
daemon (send puts them, recv gets them), so any number of producers and
consumers share it, and a consumer that dies loses nothing. --capacity is the
most messages it holds, counting those delivered and not yet acknowledged
(default: no limit); a send into a full queue waits. --max-bytes bounds its
bytes (each message counts its length plus 64). --order fifo (the default),
lifo, or priority (send --priority P: highest first, first in first out within
a priority). Delivery is at least once: a message stays held by the consumer
that got it until it acknowledges it (recv --ack), and goes back to the head of
the queue if that consumer goes away first. --max-deliveries N moves a message
delivered N times without an acknowledgement to the dead-letter queue
queue:NAME.dead, created with it, so a message that crashes every consumer
stops coming back (0, the default: redelivered forever). --durable keeps a
journal in ipcd's state directory, so the messages survive ipcd stopping or
crashing; --fsync says when it reaches the disk: always (each send, before it
is answered), batch (the default: sends that arrive together share one flush),
never (the kernel writes it when it likes: survives ipcd crashing, not the
machine). Permission bits: send and join need write; recv and its
acknowledgements need read.

Examples:
  ipcctl create mq:jobs --capacity 10 --msg-size 1024 --mode 0660
  ipcctl create mq:scratch --session     # removed when ipcctl is interrupted
  ipcctl create pipe:logs --capacity 1MiB
  ipcctl create fifo:events --buffered --mode 0660
  ipcctl create shm:frames --size 64MiB --mode 0640
  ipcctl create ring:jobs --slots 1024 --slot-size 512 --mode 0660
  ipcctl create signal:usr2 --bind SIGUSR2   # kill -USR2 <ipcd> raises it
  ipcctl create sem:gpu --initial 2 --max 2 --mode 0660
  ipcctl create lock:deploy
  ipcctl create barrier:start --parties 3
  ipcctl create queue:jobs --capacity 1000 --max-deliveries 5 --durable
  ipcctl create queue:urgent --order priority --max-bytes 64MiB

Exit status: 0 success, 2 error (a bad ADDRESS too; with --session: ipcd went
away), 64 usage error.";
