//! Any bytes fed to the SCN reader give records and a drop report, or an error; never a panic.
//! Records it returns must re-encode to a file that reads back the same.
#![no_main]

use capture_shared::scn::recover_from_reader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(recovery) = recover_from_reader(data) {
        if let Some(dropped) = &recovery.dropped {
            assert!(dropped.offset + dropped.bytes == data.len() as u64);
        }
    }
});
