//! The emulator against a bare whatsapp-rust client: pairing by QR and by code, logging
//! in again with the stored keys, and what WhatsApp's side can do to a device.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use wa_emulator::{Config, Emulator, pairing};
use whatsapp_rust::bot::{Bot, BotHandle};
use whatsapp_rust::store::SqliteStore;
use whatsapp_rust::transport::TokioWebSocketTransportFactory;
use whatsapp_rust::wacore::types::events::{Event, EventHandler};

const DEADLINE: Duration = Duration::from_secs(60);

struct Events(mpsc::UnboundedSender<Arc<Event>>);

impl EventHandler for Events {
    fn handle_event(&self, event: Arc<Event>) {
        let _ = self.0.send(event);
    }
}

struct Device {
    handle: BotHandle,
    events: mpsc::UnboundedReceiver<Arc<Event>>,
}

impl Device {
    async fn start(emulator: &Emulator, store: &std::path::Path, pair_code_for: Option<&str>) -> Self {
        let (tx, events) = mpsc::unbounded_channel();
        let mut builder = Bot::builder()
            .with_backend(SqliteStore::new(&store.to_string_lossy()).await.unwrap())
            .with_transport_factory(TokioWebSocketTransportFactory::new().with_url(emulator.ws_url()))
            .with_http_client(whatsapp_rust::http::UreqHttpClient::new())
            .with_version((2, 3000, 1))
            .with_event_handler(Events(tx))
            .skip_history_sync();
        if let Some(phone) = pair_code_for {
            builder = builder.with_pair_code(whatsapp_rust::pair_code::PairCodeOptions {
                phone_number: phone.to_owned(),
                ..Default::default()
            });
        }
        let bot = builder.build().await.unwrap();
        Self {
            handle: bot.spawn(),
            events,
        }
    }

    /// The first event `pick` accepts, skipping the others.
    async fn wait_for<T>(&mut self, what: &str, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
        let found = tokio::time::timeout(DEADLINE, async {
            while let Some(event) = self.events.recv().await {
                if let Some(found) = pick(&event) {
                    return Some(found);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(found)) => found,
            _ => panic!("no {what} within {DEADLINE:?}"),
        }
    }

    async fn stop(self) {
        tokio::time::timeout(DEADLINE, self.handle.shutdown()).await.unwrap();
    }
}

fn account(emulator: &Emulator, phone: &str) {
    let mut state = emulator.network.state();
    state
        .accounts
        .insert(phone.to_owned(), wa_emulator::network::Account::new(phone, "Alice"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_pairs_by_qr_then_logs_in_with_its_keys() {
    let emulator = Emulator::start("127.0.0.1:0".parse().unwrap(), Config::default())
        .await
        .unwrap();
    account(&emulator, "15550001111");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("device.db");

    let mut device = Device::start(&emulator, &store, None).await;
    let qr = device
        .wait_for("QR code", |e| match e {
            Event::PairingQrCode(qr) => Some(qr.code.clone()),
            _ => None,
        })
        .await;
    let linked = pairing::link_qr(&emulator.network, "15550001111", &qr).await.unwrap();
    assert_eq!(linked.device, 1);
    device
        .wait_for("pair success", |e| matches!(e, Event::PairSuccess(_)).then_some(()))
        .await;
    device
        .wait_for("connected", |e| matches!(e, Event::Connected(_)).then_some(()))
        .await;
    let client = device.handle.client();
    assert_eq!(client.pn().unwrap().user, "15550001111");
    assert!(
        emulator.network.state().accounts["15550001111"].devices[&1]
            .conn
            .is_some()
    );
    device.stop().await;
    // The server has seen the device go (else the next login would replace a live one).
    until("the device offline", || {
        emulator.network.state().accounts["15550001111"].devices[&1]
            .conn
            .is_none()
            .then_some(())
    })
    .await;

    // The keys are kept: the next start logs in without a QR code.
    let mut again = Device::start(&emulator, &store, None).await;
    again
        .wait_for("connected again", |e| match e {
            Event::PairingQrCode(_) => panic!("a linked device was shown a QR code"),
            Event::Connected(_) => Some(()),
            _ => None,
        })
        .await;
    assert_eq!(emulator.network.state().double_connections, 0);
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_pairs_by_code() {
    let emulator = Emulator::start("127.0.0.1:0".parse().unwrap(), Config::default())
        .await
        .unwrap();
    account(&emulator, "15550002222");
    let dir = tempfile::tempdir().unwrap();
    let mut device = Device::start(&emulator, &dir.path().join("device.db"), Some("15550002222")).await;
    let code = device
        .wait_for("pairing code", |e| match e {
            Event::PairingCode(code) => Some(code.code.clone()),
            _ => None,
        })
        .await;
    let wrong = pairing::link_code(&emulator.network, "15550002222", "AAAA-AAAA").await;
    assert!(matches!(wrong, Err(pairing::LinkError::WrongCode)), "{wrong:?}");
    pairing::link_code(&emulator.network, "15550002222", &code)
        .await
        .unwrap();
    device
        .wait_for("connected", |e| matches!(e, Event::Connected(_)).then_some(()))
        .await;
    device.stop().await;
}

/// Waits until `check` returns something, for at most [`DEADLINE`].
async fn until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "no {what} within {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn phone(emulator: &Emulator, number: &str) -> Arc<wa_emulator::phone::Phone> {
    emulator.network.state().accounts[number].primary.clone().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_phones_talk_end_to_end_encrypted() {
    use wa_emulator::network::Addressing;
    use wa_emulator::phone::Phone;
    use whatsapp_rust::waproto::whatsapp as wa;
    let emulator = Emulator::start("127.0.0.1:0".parse().unwrap(), Config::default())
        .await
        .unwrap();
    Phone::create(&emulator.network, "15550003333", "Ana", Addressing::Pn)
        .await
        .unwrap();
    Phone::create(&emulator.network, "15550004444", "Ben", Addressing::Lid)
        .await
        .unwrap();
    let (ana, ben) = (phone(&emulator, "15550003333"), phone(&emulator, "15550004444"));
    let text = |t: &str| wa::Message {
        conversation: Some(t.to_owned()),
        ..Default::default()
    };
    let id = ana
        .send("15550004444@s.whatsapp.net".parse().unwrap(), text("hello Ben"), None)
        .await
        .unwrap();
    let got = until("message at Ben", || ben.received().into_iter().find(|r| r.id == id)).await;
    assert_eq!(got.text.as_deref(), Some("hello Ben"));
    assert_eq!(got.from, "15550003333@s.whatsapp.net");
    until("delivery receipt at Ana", || {
        ana.receipts().into_iter().find(|r| r.ids.contains(&id))
    })
    .await;
    // Ben's account is LID-addressed: his answer comes from his LID.
    let back = ben
        .send("15550003333@s.whatsapp.net".parse().unwrap(), text("hi Ana"), None)
        .await
        .unwrap();
    let got = until("message at Ana", || ana.received().into_iter().find(|r| r.id == back)).await;
    assert_eq!(got.text.as_deref(), Some("hi Ana"));
    assert!(got.from.ends_with("@lid"), "{got:?}");
    assert_eq!(got.from_alt.as_deref(), Some("15550004444@s.whatsapp.net"));
}
