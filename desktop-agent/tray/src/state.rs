//! What the tray shows, decided from the agent's status file alone: the icon's look, the tooltip
//! and the menu's status lines. Pure, so every state is tested without a desktop.

use capture_agent::local::{AgentState, StatusReport};
use serde::Serialize;

/// The icon's look: one per state a user must tell apart at a glance, each its own colour and
/// shape (so it reads in greyscale too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Look {
    /// Connected, nothing recorded: a green ring.
    Idle,
    /// A contact is being recorded: a filled red dot.
    Recording,
    /// Recording paused: a blue disc with two bars.
    Paused,
    /// The recorder cannot be reached (or the agent is starting): a grey ring, struck through.
    Disconnected,
    /// The agent cannot go on by itself: an amber triangle with a bar.
    Error,
}

impl Look {
    /// Every look (for tests and the icon cache).
    pub const ALL: [Look; 5] = [
        Look::Idle,
        Look::Recording,
        Look::Paused,
        Look::Disconnected,
        Look::Error,
    ];

    /// The look's main colour (RGB).
    pub fn colour(self) -> [u8; 3] {
        match self {
            Look::Idle => [0x16, 0xa3, 0x4a],
            Look::Recording => [0xe0, 0x24, 0x24],
            Look::Paused => [0x25, 0x63, 0xeb],
            Look::Disconnected => [0x6b, 0x72, 0x80],
            Look::Error => [0xf5, 0x9e, 0x0b],
        }
    }
}

/// Everything the tray shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct View {
    /// The icon.
    pub look: Look,
    /// One line: what the agent is doing.
    pub headline: String,
    /// "Server: …".
    pub server: String,
    /// "Agent: …".
    pub agent: String,
    /// "Last contact: …".
    pub last_contact: String,
    /// The tooltip (the headline, and the last error if any).
    pub tooltip: String,
    /// The last error, if any.
    pub error: Option<String>,
}

/// A time of day in UTC (`HH:MM`) or `never`.
fn clock(ms: Option<u64>) -> String {
    match ms {
        Some(ms) => {
            let minutes = ms / 60_000;
            format!("{:02}:{:02} UTC", (minutes / 60) % 24, minutes % 60)
        }
        None => "none yet".into(),
    }
}

/// The view of the agent's status `report` (none yet, or the file of an agent that stopped).
pub fn view(report: Option<&StatusReport>, now_ms: u64) -> View {
    let Some(report) = report else {
        return View {
            look: Look::Disconnected,
            headline: "Starting the agent…".into(),
            server: "Server: —".into(),
            agent: "Agent: —".into(),
            last_contact: "Last contact: —".into(),
            tooltip: "Capture: starting the agent".into(),
            error: None,
        };
    };
    let live = report.is_live(now_ms);
    let (look, headline) = match report.state {
        _ if !live && report.state != AgentState::Error => {
            (Look::Error, "The agent is not running".to_owned())
        }
        AgentState::Starting => (Look::Disconnected, "Connecting to the recorder…".into()),
        AgentState::Enrolling => (Look::Disconnected, "Enrolling this computer…".into()),
        AgentState::Connected => (Look::Idle, "Connected — not recording".into()),
        AgentState::Recording => (
            Look::Recording,
            match report.recording {
                1 => "Recording a contact".to_owned(),
                n => format!("Recording {n} contacts"),
            },
        ),
        AgentState::Paused => (Look::Paused, "Recording paused".into()),
        AgentState::Disconnected => (
            Look::Disconnected,
            format!(
                "Disconnected — last connected {}",
                clock(report.last_connected_at_ms)
            ),
        ),
        AgentState::Error => (Look::Error, "Not recording: needs attention".into()),
    };
    let error = report.last_error.clone().filter(|_| look != Look::Idle);
    let tooltip = match &error {
        Some(error) => format!("Capture: {headline}\n{error}"),
        None => format!("Capture: {headline}"),
    };
    View {
        look,
        headline,
        server: format!(
            "Server: {}",
            if report.server.is_empty() {
                "—"
            } else {
                &report.server
            }
        ),
        agent: match report.agent_id {
            Some(id) => format!(
                "Agent: {}@{} ({})",
                report.os_user,
                report.machine,
                &id.to_string()[..8]
            ),
            None => format!(
                "Agent: {}@{} (not enrolled)",
                report.os_user, report.machine
            ),
        },
        last_contact: format!("Last contact: {}", clock(report.last_contact_at_ms)),
        tooltip,
        error,
    }
}

/// The icon of `look`, `size`×`size` RGBA, drawn with 4×4 supersampling.
pub fn icon(look: Look, size: u32) -> Vec<u8> {
    let [r, g, b] = look.colour();
    let white = [0xff, 0xff, 0xff];
    let dark = [0x1f, 0x29, 0x37];
    let mut rgba = vec![0u8; (size * size * 4) as usize];
    let unit = size as f32;
    for y in 0..size {
        for x in 0..size {
            let mut sum = [0f32; 4];
            for sy in 0..4 {
                for sx in 0..4 {
                    // Coordinates in 0..1 across the icon.
                    let px = (x as f32 + (sx as f32 + 0.5) / 4.0) / unit;
                    let py = (y as f32 + (sy as f32 + 0.5) / 4.0) / unit;
                    if let Some(c) = shade(look, px, py, [r, g, b], white, dark) {
                        sum[0] += f32::from(c[0]);
                        sum[1] += f32::from(c[1]);
                        sum[2] += f32::from(c[2]);
                        sum[3] += 1.0;
                    }
                }
            }
            let i = ((y * size + x) * 4) as usize;
            if sum[3] > 0.0 {
                rgba[i] = (sum[0] / sum[3]) as u8;
                rgba[i + 1] = (sum[1] / sum[3]) as u8;
                rgba[i + 2] = (sum[2] / sum[3]) as u8;
                rgba[i + 3] = (sum[3] / 16.0 * 255.0) as u8;
            }
        }
    }
    rgba
}

/// The colour at (x, y) in 0..1, or none (transparent).
fn shade(
    look: Look,
    x: f32,
    y: f32,
    main: [u8; 3],
    white: [u8; 3],
    dark: [u8; 3],
) -> Option<[u8; 3]> {
    let (dx, dy) = (x - 0.5, y - 0.5);
    let radius = (dx * dx + dy * dy).sqrt();
    match look {
        Look::Idle => (0.30..=0.46).contains(&radius).then_some(main),
        Look::Recording => (radius <= 0.44).then_some(main),
        Look::Paused => (radius <= 0.46).then_some(if (0.30..0.70).contains(&y) && bar(x) {
            white
        } else {
            main
        }),
        Look::Disconnected => {
            let ring = (0.30..=0.44).contains(&radius);
            // The slash from top-right to bottom-left.
            let slash = (x + y - 1.0).abs() < 0.09 && radius <= 0.46;
            (ring || slash).then_some(main)
        }
        Look::Error => {
            // A triangle pointing up, with a dark bar and dot.
            let inside = (0.08..=0.92).contains(&y) && (x - 0.5).abs() <= (y - 0.08) * 0.55;
            if !inside {
                return None;
            }
            let in_bar = (x - 0.5).abs() < 0.06 && (0.34..0.66).contains(&y);
            let in_dot = (x - 0.5).abs() < 0.06 && (0.74..0.84).contains(&y);
            Some(if in_bar || in_dot { dark } else { main })
        }
    }
}

/// Whether x falls in one of the two pause bars.
fn bar(x: f32) -> bool {
    (0.34..0.45).contains(&x) || (0.55..0.66).contains(&x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use capture_agent::local::StatusReport;

    fn report(state: AgentState) -> StatusReport {
        let mut report = StatusReport::only(state, "https://rec.example:8443", None);
        report.recording = usize::from(state == AgentState::Recording);
        report
    }

    #[test]
    fn every_state_has_its_look_and_words() {
        let now = capture_agent::local::unix_ms();
        let cases = [
            (AgentState::Starting, Look::Disconnected, "Connecting"),
            (AgentState::Enrolling, Look::Disconnected, "Enrolling"),
            (AgentState::Connected, Look::Idle, "Connected"),
            (
                AgentState::Recording,
                Look::Recording,
                "Recording a contact",
            ),
            (AgentState::Paused, Look::Paused, "paused"),
            (AgentState::Disconnected, Look::Disconnected, "Disconnected"),
            (AgentState::Error, Look::Error, "needs attention"),
        ];
        for (state, look, words) in cases {
            let shown = view(Some(&report(state)), now);
            assert_eq!(shown.look, look, "{state:?}");
            assert!(
                shown.headline.contains(words),
                "{state:?}: {}",
                shown.headline
            );
            assert_eq!(shown.server, "Server: https://rec.example:8443");
        }
        assert_eq!(view(None, now).look, Look::Disconnected);
    }

    #[test]
    fn a_silent_agent_is_an_error_but_its_last_error_report_stands() {
        let mut recording = report(AgentState::Recording);
        recording.updated_at_ms -= 60_000;
        let now = capture_agent::local::unix_ms();
        let shown = view(Some(&recording), now);
        assert_eq!(shown.look, Look::Error);
        assert_eq!(shown.headline, "The agent is not running");
        let mut refused = report(AgentState::Error);
        refused.updated_at_ms -= 60_000;
        refused.last_error = Some("refused by the server (BadCredential)".into());
        let shown = view(Some(&refused), now);
        assert!(shown.tooltip.contains("BadCredential"), "{}", shown.tooltip);
    }

    #[test]
    fn the_looks_differ_in_colour_and_shape() {
        let icons: Vec<Vec<u8>> = Look::ALL.iter().map(|&l| icon(l, 32)).collect();
        for (i, a) in icons.iter().enumerate() {
            assert_eq!(a.len(), 32 * 32 * 4);
            let opaque = a.chunks(4).filter(|p| p[3] > 128).count();
            assert!(opaque > 100, "{:?} is drawn ({opaque} px)", Look::ALL[i]);
            for b in &icons[i + 1..] {
                let shape_a: Vec<bool> = a.chunks(4).map(|p| p[3] > 128).collect();
                let shape_b: Vec<bool> = b.chunks(4).map(|p| p[3] > 128).collect();
                let differ = shape_a.iter().zip(&shape_b).filter(|(x, y)| x != y).count();
                assert!(differ > 40, "shapes too alike: {differ} px");
            }
        }
        // The centre pixel of the recording dot is its colour.
        let recording = icon(Look::Recording, 32);
        let centre = ((16 * 32 + 16) * 4) as usize;
        assert_eq!(&recording[centre..centre + 3], &Look::Recording.colour());
    }
}
