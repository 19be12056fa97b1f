//! The tray icon, its menu, and the status window opened from it. A thread reads the agent's
//! status file twice a second and, when what the tray shows changes, redraws the icon, rewrites
//! the tooltip and the menu's status lines, and tells an open status window.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use capture_agent::local::{self, StatusReport};
use tauri::image::Image;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Emitter as _, Manager as _, Runtime, WebviewUrl, WebviewWindowBuilder};

use crate::state::{self, View};

/// The icon's side, px (the tray host scales it).
const ICON_SIZE: u32 = 32;

/// How often the status file is read.
const POLL: Duration = Duration::from_millis(500);

/// The window's label (one at most).
const WINDOW: &str = "status";

/// What the tray shows now, for the status window's first read.
pub struct Shared {
    view: Mutex<View>,
}

impl Shared {
    /// Nothing known yet.
    pub fn new() -> Shared {
        Shared {
            view: Mutex::new(state::view(None, local::unix_ms())),
        }
    }

    /// The current view.
    pub fn current(&self) -> View {
        self.view
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn replace(&self, view: View) -> bool {
        let mut current = self
            .view
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *current == view {
            return false;
        }
        *current = view;
        true
    }
}

impl Default for Shared {
    fn default() -> Self {
        Shared::new()
    }
}

fn image(look: state::Look) -> Image<'static> {
    Image::new_owned(state::icon(look, ICON_SIZE), ICON_SIZE, ICON_SIZE)
}

/// Opens the status window (or brings it forward); its webview is created only now.
fn open_window<R: Runtime>(app: &AppHandle<R>, fragment: &str) {
    if let Some(window) = app.get_webview_window(WINDOW) {
        let _ = window.show();
        let _ = window.set_focus();
        return;
    }
    let url = WebviewUrl::App(format!("index.html{fragment}").into());
    if let Err(error) = WebviewWindowBuilder::new(app, WINDOW, url)
        .title("Capture Agent")
        .inner_size(440.0, 340.0)
        .resizable(false)
        .build()
    {
        tracing::error!(%error, "the status window cannot be opened");
    }
}

/// Builds the tray and starts following the agent's status file beside `config`.
pub fn install<R: Runtime>(app: &AppHandle<R>, config: PathBuf) -> tauri::Result<()> {
    let first = app.state::<Shared>().current();
    let headline = MenuItem::with_id(app, "headline", &first.headline, false, None::<&str>)?;
    let server = MenuItem::with_id(app, "server", &first.server, false, None::<&str>)?;
    let agent = MenuItem::with_id(app, "agent", &first.agent, false, None::<&str>)?;
    let last_contact = MenuItem::with_id(
        app,
        "last-contact",
        &first.last_contact,
        false,
        None::<&str>,
    )?;
    let show = MenuItem::with_id(app, "show", "Show status…", true, None::<&str>)?;
    let about = MenuItem::with_id(app, "about", "About Capture Agent", true, None::<&str>)?;
    let quit = MenuItem::with_id(
        app,
        "quit",
        "Close this icon (recording continues)",
        true,
        None::<&str>,
    )?;
    let menu = Menu::with_items(
        app,
        &[
            &headline,
            &server,
            &agent,
            &last_contact,
            &PredefinedMenuItem::separator(app)?,
            &show,
            &about,
            &PredefinedMenuItem::separator(app)?,
            &quit,
        ],
    )?;
    let tray = TrayIconBuilder::with_id("capture")
        .icon(image(first.look))
        .tooltip(&first.tooltip)
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(|app, event| match event.id().as_ref() {
            "show" => open_window(app, ""),
            "about" => open_window(app, "#about"),
            "quit" => app.exit(0),
            _ => {}
        })
        .build(app)?;
    let app = app.clone();
    let status_file = local::status_path(&config);
    std::thread::Builder::new()
        .name("tray-status".into())
        .spawn(move || {
            loop {
                let report = StatusReport::read(&status_file).ok();
                let view = state::view(report.as_ref(), local::unix_ms());
                if app.state::<Shared>().replace(view.clone()) {
                    tracing::info!(look = ?view.look, headline = %view.headline, "tray state");
                    let _ = tray.set_icon(Some(image(view.look)));
                    let _ = tray.set_tooltip(Some(&view.tooltip));
                    let _ = headline.set_text(&view.headline);
                    let _ = server.set_text(&view.server);
                    let _ = agent.set_text(&view.agent);
                    let _ = last_contact.set_text(&view.last_contact);
                    let _ = app.emit("status", &view);
                }
                std::thread::sleep(POLL);
            }
        })?;
    Ok(())
}
