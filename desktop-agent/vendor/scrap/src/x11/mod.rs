mod capturer;
mod display;
mod ffi;
mod iter;
mod server;

pub use self::capturer::*;
pub use self::display::*;
pub use self::iter::*;
pub use self::server::*;
