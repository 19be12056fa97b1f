//! `capture-test-desktop DIR`: a Windows program that fills the primary monitor with a known
//! picture, for the Wine end-to-end test of the Windows agent (cross-compiled beside it).
//!
//! The picture: four quadrants (red, green, blue, white) with black text in the white one. It
//! writes `DIR/ready` once painted. When `DIR/change` appears, it paints the top-left quadrant
//! yellow and writes `DIR/changed` with the UTC time of that paint in microseconds, so the test
//! can find the first frame that shows it. `DIR/quit` ends it.

#[cfg(windows)]
#[allow(unsafe_code)]
mod desktop;

#[cfg(windows)]
fn main() -> std::process::ExitCode {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: capture-test-desktop DIR");
        return std::process::ExitCode::from(2);
    };
    match desktop::run(std::path::PathBuf::from(dir)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("capture-test-desktop: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(not(windows))]
fn main() -> std::process::ExitCode {
    eprintln!("capture-test-desktop is a Windows program (build it for x86_64-pc-windows-gnu)");
    std::process::ExitCode::from(2)
}
