//! Any text fed to the control-message parsers gives a message or an error; never a panic. A
//! parsed agent message serialises and parses back to itself.
#![no_main]

use capture_shared::protocol::{AgentMessage, ServerMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(message) = AgentMessage::parse(text) {
        let again = AgentMessage::parse(&message.to_json()).expect("a parsed message re-parses");
        assert_eq!(again, message);
    }
    let _ = ServerMessage::parse(text);
});
