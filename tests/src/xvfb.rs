//! A virtual X display (Debian's `Xvfb`, installed by `.ci/run`) for the screen tests and
//! benchmarks, and a [`Painter`]: an X client that draws a desktop the tests control (a white
//! window, text typed into it, rectangles), through x11rb.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use x11rb::connection::Connection as _;
use x11rb::protocol::xproto::{
    ChangeGCAux, ConnectionExt as _, CreateGCAux, CreateWindowAux, EventMask, Rectangle,
    WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

/// A running Xvfb, killed on drop.
#[derive(Debug)]
pub struct Xvfb {
    child: Child,
    /// The display name, `:N`.
    pub display: String,
}

impl Xvfb {
    /// Starts Xvfb with one screen per size (two sizes: two monitors, as two X screens).
    pub fn start(screens: &[(u32, u32)]) -> anyhow::Result<Xvfb> {
        for _ in 0..20 {
            let number = 100 + fastrand::u32(0..800);
            if Path::new(&format!("/tmp/.X11-unix/X{number}")).exists()
                || Path::new(&format!("/tmp/.X{number}-lock")).exists()
            {
                continue;
            }
            let display = format!(":{number}");
            let mut command = Command::new("Xvfb");
            command.arg(&display).args(["-nolisten", "tcp", "-noreset"]);
            for (index, (width, height)) in screens.iter().enumerate() {
                command.args([
                    "-screen",
                    &index.to_string(),
                    &format!("{width}x{height}x24"),
                ]);
            }
            let child = command
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting Xvfb (Debian package xvfb)")?;
            let mut xvfb = Xvfb { child, display };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if x11rb::connect(Some(&xvfb.display)).is_ok() {
                    return Ok(xvfb);
                }
                if xvfb.child.try_wait()?.is_some() {
                    break; // lost a race for the display number: try another
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = xvfb.child.kill();
        }
        anyhow::bail!("Xvfb did not start")
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Draws on one X screen: a full-screen white window, text lines and rectangles.
pub struct Painter {
    connection: RustConnection,
    window: u32,
    gc: u32,
    width: u16,
    height: u16,
}

impl std::fmt::Debug for Painter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Painter")
            .field("window", &self.window)
            .finish()
    }
}

impl Painter {
    /// Opens a white full-screen window on screen `screen` of `display`.
    pub fn open(display: &str, screen: usize) -> anyhow::Result<Painter> {
        let name = format!("{display}.{screen}");
        let (connection, screen) = x11rb::connect(Some(&name))?;
        let setup = connection.setup().roots[screen].clone();
        let window = connection.generate_id()?;
        connection.create_window(
            setup.root_depth,
            window,
            setup.root,
            0,
            0,
            setup.width_in_pixels,
            setup.height_in_pixels,
            0,
            WindowClass::INPUT_OUTPUT,
            0,
            &CreateWindowAux::new()
                .background_pixel(setup.white_pixel)
                .event_mask(EventMask::EXPOSURE)
                .override_redirect(1),
        )?;
        let font = connection.generate_id()?;
        connection.open_font(font, b"fixed")?;
        let gc = connection.generate_id()?;
        connection.create_gc(
            gc,
            window,
            &CreateGCAux::new()
                .foreground(setup.black_pixel)
                .background(setup.white_pixel)
                .font(font),
        )?;
        connection.map_window(window)?;
        connection.sync()?;
        Ok(Painter {
            connection,
            window,
            gc,
            width: setup.width_in_pixels,
            height: setup.height_in_pixels,
        })
    }

    /// Writes `text` with its baseline at (`x`, `y`), black on white.
    pub fn text(&self, x: i16, y: i16, text: &str) -> anyhow::Result<()> {
        for (i, chunk) in text.as_bytes().chunks(200).enumerate() {
            let offset = i16::try_from(i * 200 * 6).unwrap_or(i16::MAX);
            self.connection.image_text8(
                self.window,
                self.gc,
                x.saturating_add(offset),
                y,
                chunk,
            )?;
        }
        self.connection.sync()?;
        Ok(())
    }

    /// Fills a rectangle with `rgb` (24-bit TrueColor).
    pub fn fill(&self, x: i16, y: i16, width: u16, height: u16, rgb: u32) -> anyhow::Result<()> {
        self.connection
            .change_gc(self.gc, &ChangeGCAux::new().foreground(rgb))?;
        self.connection.poly_fill_rectangle(
            self.window,
            self.gc,
            &[Rectangle {
                x,
                y,
                width,
                height,
            }],
        )?;
        self.connection
            .change_gc(self.gc, &ChangeGCAux::new().foreground(0))?;
        self.connection.sync()?;
        Ok(())
    }

    /// Clears the window to white.
    pub fn clear(&self) -> anyhow::Result<()> {
        self.fill(0, 0, self.width, self.height, 0xff_ff_ff)
    }

    /// Moves the pointer to (`x`, `y`) on this screen.
    pub fn move_pointer(&self, x: i16, y: i16) -> anyhow::Result<()> {
        self.connection
            .warp_pointer(x11rb::NONE, self.window, 0, 0, 0, 0, x, y)?;
        self.connection.sync()?;
        Ok(())
    }
}

/// RandR monitors of a display, as a desktop's display settings make them: `set_monitor` and
/// `delete_monitor` are what `xrandr --setmonitor` / `--delmonitor` send. On Xvfb's one output a
/// monitor that claims the output replaces the automatic whole-screen monitor, and further
/// monitors without an output stand for screens plugged in beside it.
pub mod randr {
    use x11rb::connection::Connection as _;
    use x11rb::protocol::randr::{ConnectionExt as _, MonitorInfo};
    use x11rb::protocol::xproto::ConnectionExt as _;

    fn connect(display: &str) -> anyhow::Result<(x11rb::rust_connection::RustConnection, u32)> {
        let (connection, screen) = x11rb::connect(Some(display))?;
        let root = connection.setup().roots[screen].root;
        Ok((connection, root))
    }

    /// Adds (or replaces) the monitor `name` at `x`, `y` of `width` × `height`; with `claim`, it
    /// takes the screen's first output (hiding the automatic monitor).
    pub fn set_monitor(
        display: &str,
        name: &str,
        (x, y, width, height): (i16, i16, u16, u16),
        claim: bool,
    ) -> anyhow::Result<()> {
        let (connection, root) = connect(display)?;
        let atom = connection
            .intern_atom(false, name.as_bytes())?
            .reply()?
            .atom;
        let outputs = if claim {
            let resources = connection.randr_get_screen_resources(root)?.reply()?;
            resources.outputs.first().copied().into_iter().collect()
        } else {
            Vec::new()
        };
        connection
            .randr_set_monitor(
                root,
                MonitorInfo {
                    name: atom,
                    primary: claim,
                    automatic: false,
                    x,
                    y,
                    width,
                    height,
                    width_in_millimeters: u32::from(width) * 254 / 960,
                    height_in_millimeters: u32::from(height) * 254 / 960,
                    outputs,
                },
            )?
            .check()?;
        Ok(())
    }

    /// Removes the monitor `name`.
    pub fn delete_monitor(display: &str, name: &str) -> anyhow::Result<()> {
        let (connection, root) = connect(display)?;
        let atom = connection
            .intern_atom(false, name.as_bytes())?
            .reply()?
            .atom;
        connection.randr_delete_monitor(root, atom)?.check()?;
        Ok(())
    }

    /// The active monitors: x, y, width, height.
    pub fn monitors(display: &str) -> anyhow::Result<Vec<(i16, i16, u16, u16)>> {
        let (connection, root) = connect(display)?;
        let reply = connection.randr_get_monitors(root, true)?.reply()?;
        Ok(reply
            .monitors
            .iter()
            .map(|m| (m.x, m.y, m.width, m.height))
            .collect())
    }
}
