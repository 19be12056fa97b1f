//! Any bytes fed to the frame decoder give a header and access unit, or an error; never a panic.
//! A decoded frame re-encodes to the same bytes.
#![no_main]

use capture_shared::protocol::{decode_frame, encode_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((header, access_unit)) = decode_frame(data) {
        assert_eq!(encode_frame(&header, access_unit), data);
    }
});
