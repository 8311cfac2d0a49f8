//! The live connection: the only WebSocket. Subscribes to every topic, hands events to the
//! pages that listen, reconnects with backoff and tells pages when to refetch.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use contracts::{Event, Topic, WsClientMessage, WsServerMessage};
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

use crate::api;

const FIRST_DELAY_MS: f64 = 1_000.0;
const MAX_DELAY_MS: f64 = 30_000.0;

/// State of the live connection, shown in the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The first connection is being made.
    Connecting,
    Connected,
    /// The connection dropped; a new attempt is scheduled or under way.
    Reconnecting,
}

type Listener = Rc<dyn Fn(&Event)>;

/// Everything the socket needs to outlive a single callback.
#[derive(Default)]
struct Conn {
    socket: Option<WebSocket>,
    /// The handlers of the current socket. Dropped only when the next socket replaces them,
    /// never from inside one of them (wasm-bindgen forbids dropping a running closure).
    on_open: Option<Closure<dyn FnMut(web_sys::Event)>>,
    on_message: Option<Closure<dyn FnMut(MessageEvent)>>,
    on_close: Option<Closure<dyn FnMut(CloseEvent)>>,
    retry: Option<TimeoutHandle>,
    /// Consecutive failed attempts, for the backoff.
    failures: u32,
    listeners: Vec<(u64, Topic, Listener)>,
    next_listener: u64,
    started: bool,
}

thread_local! {
    static CONN: RefCell<Conn> = RefCell::new(Conn::default());
    static STATUS: ArcRwSignal<Status> = ArcRwSignal::new(Status::Connecting);
    static REFETCH: [ArcRwSignal<u32>; Topic::ALL.len()] = Default::default();
}

fn topic_index(topic: Topic) -> usize {
    match topic {
        Topic::Providers => 0,
        Topic::Agents => 1,
        Topic::Tasks => 2,
        Topic::Runs => 3,
        Topic::Workers => 4,
        Topic::Pool => 5,
        Topic::Tags => 6,
        Topic::Concurrency => 7,
    }
}

/// The connection status, for the header indicator.
pub fn status() -> ArcRwSignal<Status> {
    STATUS.with(Clone::clone)
}

/// A counter that grows whenever the topic's data must be fetched again (after a `resync`,
/// after a reconnect, after a new token). Pages refetch when it changes.
pub fn refetch(topic: Topic) -> ArcRwSignal<u32> {
    REFETCH.with(|all| all[topic_index(topic)].clone())
}

/// Asks every page to refetch the given topics.
pub fn bump(topics: &[Topic]) {
    for topic in topics {
        refetch(*topic).update(|n| *n = n.wrapping_add(1));
    }
}

/// Calls `listener` with every event of `topic` until the current reactive owner (the
/// component that called this) is cleaned up.
pub fn on_event(topic: Topic, listener: impl Fn(&Event) + 'static) {
    let id = CONN.with_borrow_mut(|conn| {
        conn.next_listener += 1;
        conn.listeners
            .push((conn.next_listener, topic, Rc::new(listener)));
        conn.next_listener
    });
    on_cleanup(move || {
        CONN.with_borrow_mut(|conn| conn.listeners.retain(|(l, _, _)| *l != id));
    });
}

/// Opens the connection once; later calls do nothing.
pub fn start() {
    let first = CONN.with_borrow_mut(|conn| !std::mem::replace(&mut conn.started, true));
    if first {
        connect();
    }
}

/// Drops the current socket and connects again at once (e.g. with a new token).
pub fn reconnect_now() {
    CONN.with_borrow_mut(|conn| {
        conn.failures = 0;
        if let Some(retry) = conn.retry.take() {
            retry.clear();
        }
    });
    connect();
}

fn url() -> Option<String> {
    let location = web_sys::window()?.location();
    let scheme = if location.protocol().ok()? == "https:" {
        "wss"
    } else {
        "ws"
    };
    Some(format!("{scheme}://{}/ws", location.host().ok()?))
}

fn send(socket: &WebSocket, message: &WsClientMessage) {
    if let Ok(text) = serde_json::to_string(message) {
        // A failed send means the socket is closing; `onclose` schedules the reconnect.
        let _ = socket.send_with_str(&text);
    }
}

fn detach(conn: &mut Conn) {
    if let Some(socket) = conn.socket.take() {
        socket.set_onopen(None);
        socket.set_onmessage(None);
        socket.set_onclose(None);
        socket.set_onerror(None);
        let _ = socket.close();
    }
    conn.on_open = None;
    conn.on_message = None;
    conn.on_close = None;
}

fn connect() {
    CONN.with_borrow_mut(detach);
    let Some(socket) = url().and_then(|url| WebSocket::new(&url).ok()) else {
        schedule_retry();
        return;
    };

    let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(|_: web_sys::Event| {
        let socket = CONN.with_borrow(|conn| conn.socket.clone());
        if let Some(socket) = socket {
            if let Some(token) = api::token() {
                send(&socket, &WsClientMessage::Auth { token });
            }
            send(
                &socket,
                &WsClientMessage::Subscribe {
                    topics: Topic::ALL.to_vec(),
                },
            );
        }
    });
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(|event: MessageEvent| {
        if let Some(text) = event.data().as_string() {
            handle(&text);
        }
    });
    let on_close = Closure::<dyn FnMut(CloseEvent)>::new(|_: CloseEvent| schedule_retry());

    socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    CONN.with_borrow_mut(|conn| {
        conn.socket = Some(socket);
        conn.on_open = Some(on_open);
        conn.on_message = Some(on_message);
        conn.on_close = Some(on_close);
    });
}

fn schedule_retry() {
    let status = status();
    if status.get_untracked() == Status::Connected {
        status.set(Status::Reconnecting);
    }
    let failures = CONN.with_borrow_mut(|conn| {
        conn.failures = conn.failures.saturating_add(1);
        conn.failures
    });
    if failures > 1 && status.get_untracked() == Status::Connecting {
        // The very first connection failed too: say so instead of "connecting" forever.
        status.set(Status::Reconnecting);
    }
    // 1 s, 2 s, 4 s … capped at 30 s, each drawn from the upper half so that many tabs
    // reconnecting after a server restart do not arrive together.
    let exp = 2f64.powi(i32::try_from(failures.saturating_sub(1).min(5)).unwrap_or(5));
    let cap = (FIRST_DELAY_MS * exp).min(MAX_DELAY_MS);
    let delay = cap * (0.5 + 0.5 * js_sys::Math::random());
    let handle = set_timeout_with_handle(connect, Duration::from_millis(delay as u64)).ok();
    CONN.with_borrow_mut(|conn| {
        if let Some(old) = std::mem::replace(&mut conn.retry, handle) {
            old.clear();
        }
    });
}

fn handle(text: &str) {
    let Ok(message) = serde_json::from_str::<WsServerMessage>(text) else {
        return;
    };
    match message {
        WsServerMessage::Event(event) => {
            let listeners: Vec<Listener> = CONN.with_borrow(|conn| {
                conn.listeners
                    .iter()
                    .filter(|(_, topic, _)| *topic == event.topic)
                    .map(|(_, _, l)| Rc::clone(l))
                    .collect()
            });
            // Called outside the borrow: a listener may register or remove listeners.
            for listener in listeners {
                listener(&event);
            }
        }
        WsServerMessage::Subscribed { .. } => {
            CONN.with_borrow_mut(|conn| conn.failures = 0);
            status().set(Status::Connected);
            // Events published while no socket was subscribed are lost: refetch. The first
            // connection needs it too, since the pages' first fetch may predate it.
            bump(&Topic::ALL);
        }
        WsServerMessage::Resync { topics } => bump(&topics),
        WsServerMessage::Pong | WsServerMessage::Error { .. } => {}
    }
}
