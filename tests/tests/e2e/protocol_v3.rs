//! Protocol version 3 against older clients and odd input: listings of any
//! size page, a version 2 client drives mq, pipe and fifo unchanged, a bad
//! string is answered without closing, and a refused version names the range.

use std::time::Duration;

use ipc_client::{Client, ErrorCode, MqOptions, PipeOptions};
use ipcd_tests::TestDaemon;
use ipcd_tests::raw::RawConn;
use protocol::{ClientFrame, Hello, Outcome, Reply, Request, ServerFrame};

/// A daemon with a small frame limit, so a few hundred objects overflow one frame.
fn small_frames() -> TestDaemon {
    TestDaemon::start_with_config("socket_mode = \"0666\"\nmax_frame = 16384\n")
}

#[test]
fn listings_of_any_size_arrive_page_by_page() {
    let d = small_frames();
    let mut client = Client::connect_to(&d.socket).unwrap();
    let count = 300;
    let names: Vec<String> = (0..count).map(|i| format!("p{i:04}")).collect();
    for n in &names {
        client.create_pipe(n, &PipeOptions::new()).unwrap();
    }
    let all = client.list(None).unwrap();
    assert_eq!(all.len(), count, "every object, across pages");
    let got: Vec<&str> = all.iter().map(|o| o.address.as_str()).collect();
    let want: Vec<String> = names.iter().map(|n| format!("pipe:{n}")).collect();
    assert_eq!(got, want, "sorted by address, none twice");
    // A page never exceeds the limit asked for, and resumes after `next`.
    let (page, next) = client.list_page(None, None, 7).unwrap();
    assert_eq!(page.len(), 7);
    assert_eq!(next.as_deref(), Some("pipe:p0006"));
    let (page, _) = client.list_page(None, next, 7).unwrap();
    assert_eq!(page[0].address, "pipe:p0007");
    // The one-frame listing of versions 1 and 2 cannot hold them: it says so.
    let mut old = Client::builder()
        .socket(&d.socket)
        .protocol_version(2)
        .connect()
        .unwrap();
    let err = old.list(None).unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::TooLarge), "{err}");
    // ipcctl lists them all too.
    let out = d.ipcctl_ok(&["--json", "list"]);
    assert!(out.matches("pipe:p").count() >= count, "{}", &out[..200]);
    for n in &names {
        client.delete(&format!("pipe:{n}")).unwrap();
    }
}

#[test]
fn a_version_2_client_drives_mq_pipe_and_fifo_unchanged() {
    let d = TestDaemon::start();
    let mut c = Client::builder()
        .socket(&d.socket)
        .protocol_version(2)
        .connect()
        .unwrap();
    assert_eq!(c.welcome().version, 2);
    // mq
    let q = c
        .create_mq("v2q", &MqOptions::new().capacity(2).msg_size(64))
        .unwrap();
    q.send(b"old", 3).unwrap();
    assert_eq!(q.recv().unwrap().data, b"old");
    // pipe, closed through version 2's Close request
    c.create_pipe("v2p", &PipeOptions::new()).unwrap();
    let tx = c.open_pipe_writer("v2p").unwrap();
    let mut rx = c.open_pipe_reader("v2p").unwrap();
    tx.send_line(b"through a pipe").unwrap();
    drop(tx);
    c.close("pipe:v2p").unwrap();
    assert_eq!(
        rx.read_line().unwrap().as_deref(),
        Some(&b"through a pipe"[..])
    );
    assert_eq!(rx.read_line().unwrap(), None, "end of file after close");
    // fifo, buffered so the writer needs no reader yet
    let opts = ipc_client::FifoOptions {
        buffered: true,
        ..Default::default()
    };
    c.create_fifo("v2f", &opts).unwrap();
    let tx = c
        .open_fifo_writer("v2f", Some(Duration::from_secs(5)))
        .unwrap();
    tx.send_line(b"through a fifo").unwrap();
    let mut rx = c.open_fifo_reader("v2f").unwrap();
    assert_eq!(
        rx.read_line().unwrap().as_deref(),
        Some(&b"through a fifo"[..])
    );
    // The one-frame listing of version 2 shows all three, by kind then name.
    let listed: Vec<String> = c
        .list(None)
        .unwrap()
        .into_iter()
        .map(|o| o.address)
        .collect();
    assert_eq!(listed, ["mq:v2q", "pipe:v2p", "fifo:v2f"]);
    for a in ["fifo:v2f", "mq:v2q", "pipe:v2p"] {
        c.delete(a).unwrap();
    }
}

#[test]
fn a_request_with_invalid_utf8_is_answered_and_the_connection_stays() {
    let d = TestDaemon::start();
    let mut c = RawConn::connect_hello(&d.socket);
    let mut payload = protocol::encode_client(&ClientFrame::Request {
        id: 31,
        body: Request::Stat {
            address: "mq:abcd".into(),
        },
    })
    .unwrap();
    let last = payload.len() - 1;
    payload[last] = 0xfe;
    c.send_bytes(&protocol::frame::frame(&payload, protocol::HARD_MAX_FRAME).unwrap());
    match c.recv() {
        Some(ServerFrame::Response {
            id: 31,
            result: Outcome::Err(e),
            ..
        }) => {
            assert_eq!(e.code, ErrorCode::InvalidAddress);
            assert!(e.message.contains("UTF-8"), "{}", e.message);
        }
        other => panic!("expected an invalid-address answer, got {other:?}"),
    }
    assert_eq!(
        c.request(Request::Ping),
        ServerFrame::Response {
            id: 1,
            fds: 0,
            result: Outcome::Ok(Reply::Pong)
        }
    );
}

#[test]
fn a_refused_version_names_the_supported_range_in_a_fixed_form() {
    let d = TestDaemon::start();
    let mut c = RawConn::connect(&d.socket);
    c.send(&ClientFrame::Hello(Hello {
        version: 0,
        client_name: "ancient".into(),
    }));
    let Some(ServerFrame::Fatal(e)) = c.recv() else {
        panic!("expected a fatal answer");
    };
    assert_eq!(e.code, ErrorCode::UnsupportedVersion);
    let range = e
        .message
        .rsplit_once("(supported=")
        .and_then(|(_, r)| r.strip_suffix(')'))
        .expect("a machine-readable range at the end");
    let (min, max) = range.split_once('-').unwrap();
    assert_eq!(min.parse::<u16>().unwrap(), protocol::MIN_PROTOCOL_VERSION);
    assert_eq!(max.parse::<u16>().unwrap(), protocol::PROTOCOL_VERSION);
}

#[test]
fn an_older_connection_may_not_send_newer_requests() {
    let d = TestDaemon::start();
    let mut c = RawConn::connect(&d.socket);
    c.send(&ClientFrame::Hello(Hello {
        version: 2,
        client_name: "v2".into(),
    }));
    assert!(matches!(c.recv(), Some(ServerFrame::Welcome(w)) if w.version == 2));
    match c.request(Request::Usage) {
        ServerFrame::Response {
            result: Outcome::Err(e),
            ..
        } => assert_eq!(e.code, ErrorCode::UnsupportedVersion, "{}", e.message),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        c.request(Request::Ping),
        ServerFrame::Response {
            result: Outcome::Ok(Reply::Pong),
            ..
        }
    ));
}
