//! The WebSocket client-message parser: any text frame either parses into a message that
//! survives a round trip unchanged, or is refused with an error (never a panic).
#![no_main]

use contracts::WsClientMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match serde_json::from_str::<WsClientMessage>(text) {
        Ok(message) => {
            let again = serde_json::to_string(&message).expect("a message serialises");
            let back: WsClientMessage = serde_json::from_str(&again).expect("and parses back");
            assert_eq!(message, back);
        }
        Err(err) => assert!(!err.to_string().is_empty()),
    }
});
