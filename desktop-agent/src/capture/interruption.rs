//! Stretches when the screen cannot be captured (the lock screen, a UAC prompt, another user's
//! session), decided from what the platform says (pure: tested on every OS).
//!
//! Windows shows the lock screen, the UAC secure prompt and Ctrl-Alt-Del on the `Winlogon`
//! desktop, a screen saver on `Screen-saver`, and the user's applications on `Default`. A process
//! of the user may not open the `Winlogon` desktop at all (`OpenInputDesktop` fails with access
//! denied), which means the same thing. While the input desktop is not `Default`, whatever a
//! capture returned would be a frozen or black picture: the capture stage stops, and the
//! contact's timeline names the gap.

/// Why the screen is not being captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interruption {
    /// The lock screen, a secure prompt (UAC, Ctrl-Alt-Del) or a switch to another user.
    Locked,
    /// The screen saver is running.
    ScreenSaver,
}

impl Interruption {
    /// The gap's reason as a supervisor reads it on the timeline.
    pub fn reason(self) -> &'static str {
        match self {
            Interruption::Locked => "screen locked",
            Interruption::ScreenSaver => "screen saver",
        }
    }

    /// From the name of the desktop receiving input (`None`: it could not be opened, which
    /// for a user's process means the secure desktop).
    pub fn for_input_desktop(name: Option<&str>) -> Option<Interruption> {
        match name {
            None => Some(Interruption::Locked),
            Some(name) if name.eq_ignore_ascii_case("default") => None,
            Some(name) if name.eq_ignore_ascii_case("screen-saver") => {
                Some(Interruption::ScreenSaver)
            }
            Some(_) => Some(Interruption::Locked),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_default_desktop_is_captured() {
        assert_eq!(Interruption::for_input_desktop(Some("Default")), None);
        assert_eq!(Interruption::for_input_desktop(Some("default")), None);
        assert_eq!(
            Interruption::for_input_desktop(Some("Winlogon")),
            Some(Interruption::Locked)
        );
        assert_eq!(
            Interruption::for_input_desktop(None),
            Some(Interruption::Locked),
            "a desktop we may not open is the secure one"
        );
        assert_eq!(
            Interruption::for_input_desktop(Some("Screen-saver")),
            Some(Interruption::ScreenSaver)
        );
        assert_eq!(Interruption::Locked.reason(), "screen locked");
    }
}
