//! Protocol version 4 (the `shm` and `ring` kinds) against a version 3
//! client: it never sees the new kinds in listings, naming them is
//! `unknown-kind`, and its own objects keep working beside them.

use ipc_client::{Client, ErrorCode, MqOptions};
use ipcd_tests::TestDaemon;
use protocol::{CreateSpec, KindOp, KindParams, KindReply, Lifetime, RingParams, ShmOp, ShmParams};

fn spec(params: KindParams) -> CreateSpec {
    CreateSpec {
        mode: None,
        lifetime: Lifetime::Persistent,
        adopt: false,
        params,
    }
}

#[test]
fn a_version_3_client_sees_neither_segments_nor_rings() {
    let d = TestDaemon::start();
    let mut new = Client::connect_to(&d.socket).unwrap();
    assert_eq!(new.welcome().version, protocol::PROTOCOL_VERSION);
    let shm = spec(KindParams::Shm(ShmParams { size: Some(4096) }));
    new.create("shm:v4seg", shm).unwrap();
    let ring = KindParams::Ring(RingParams {
        slots: Some(4),
        slot_size: Some(64),
    });
    new.create("ring:v4ring", spec(ring)).unwrap();
    let resized = new
        .operate("shm:v4seg", KindOp::Shm(ShmOp::Resize { size: 8192 }))
        .unwrap();
    assert_eq!(
        resized,
        KindReply::Shm(protocol::ShmReply::Resized { size: 8192 })
    );

    let mut old = Client::builder()
        .socket(&d.socket)
        .protocol_version(3)
        .connect()
        .unwrap();
    assert_eq!(old.welcome().version, 3);
    old.create_mq("v3q", &MqOptions::new().capacity(2).msg_size(64))
        .unwrap();
    let listed: Vec<String> = old
        .list(None)
        .unwrap()
        .into_iter()
        .map(|o| o.address)
        .collect();
    assert_eq!(listed, ["mq:v3q"], "newer kinds are left out");
    for address in ["shm:v4seg", "ring:v4ring"] {
        let err = old.stat(address).unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::UnknownKind), "{address}: {err}");
        assert!(err.to_string().contains("version 4"), "{err}");
    }
    let all: Vec<String> = new
        .list(None)
        .unwrap()
        .into_iter()
        .map(|o| o.address)
        .collect();
    assert_eq!(all, ["mq:v3q", "shm:v4seg", "ring:v4ring"]);
    for a in all {
        new.delete(&a).unwrap();
    }
}
