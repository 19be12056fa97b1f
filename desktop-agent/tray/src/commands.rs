//! What the status window may ask the tray: the current view. Nothing else is exposed to the
//! webview.

use crate::state::View;
use crate::tray::Shared;

/// The view the tray shows now.
#[tauri::command]
pub fn status(shared: tauri::State<'_, Shared>) -> View {
    shared.current()
}

/// The tray's version and the agent binary it runs.
#[tauri::command]
pub fn about() -> serde_json::Value {
    serde_json::json!({
        "name": "Capture Agent",
        "version": env!("CARGO_PKG_VERSION"),
        "license": env!("CARGO_PKG_LICENSE"),
        "agent": crate::supervisor::agent_binary().map(|p| p.display().to_string()).unwrap_or_default(),
    })
}
