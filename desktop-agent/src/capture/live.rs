//! The monitor layout as it changes during a run (pure: tested on every OS).
//!
//! A platform lists its monitors numbered from 0 in its own order ([`super::ScreenSource`]); that
//! number moves when a monitor before it goes away. What the recorder is told instead is a
//! *stable* number per monitor: a monitor keeps its number while it stays where it is at the same
//! size, and a monitor that appears (or comes back at another size or place) gets a number not
//! used before in this run. A monitor whose size changed is thus one stream ending and another
//! starting at the same moment: every stream of a contact has one size, which is what a
//! stitched video track can carry. The stream that ends says why, in words the timeline shows.

use capture_shared::ids::MonitorId;
use capture_shared::protocol::MonitorInfo;

/// The monitors with their stable numbers, and where each is in the platform's list.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// The monitors, stable numbers in `id`.
    pub monitors: Vec<MonitorInfo>,
    /// For each of `monitors`, its number in the platform's list (what `open` takes).
    pub sources: Vec<MonitorId>,
    /// The next number to give out.
    next: u16,
}

/// One stream that ends because its monitor changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Ended {
    /// The monitor (stable number).
    pub monitor: MonitorId,
    /// Why, as the timeline says it.
    pub reason: String,
}

/// What a new listing changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Change {
    /// Monitors whose streams end.
    pub ended: Vec<Ended>,
    /// Monitors whose streams start (stable numbers).
    pub started: Vec<MonitorId>,
}

impl Change {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.ended.is_empty() && self.started.is_empty()
    }
}

fn same_place(a: &MonitorInfo, b: &MonitorInfo) -> bool {
    (a.x, a.y, a.width, a.height) == (b.x, b.y, b.width, b.height)
}

impl Layout {
    /// The layout of the first listing: stable numbers are the platform's.
    pub fn new(listed: &[MonitorInfo]) -> Layout {
        let next = listed.iter().map(|m| m.id.0.saturating_add(1)).max();
        Layout {
            monitors: listed.to_vec(),
            sources: listed.iter().map(|m| m.id).collect(),
            next: next.unwrap_or(0),
        }
    }

    /// Takes a new listing (numbered the platform's way); says which streams end and start.
    pub fn update(&mut self, listed: &[MonitorInfo]) -> Change {
        let mut monitors = Vec::with_capacity(listed.len());
        let mut sources = Vec::with_capacity(listed.len());
        let mut started = Vec::new();
        let mut kept = Vec::new();
        for fresh in listed {
            let known = self
                .monitors
                .iter()
                .find(|m| same_place(m, fresh) && !kept.contains(&m.id));
            let id = match known {
                Some(known) => {
                    kept.push(known.id);
                    known.id
                }
                None => {
                    let id = MonitorId(self.next);
                    self.next = self.next.saturating_add(1);
                    started.push(id);
                    id
                }
            };
            monitors.push(MonitorInfo {
                id,
                ..fresh.clone()
            });
            sources.push(fresh.id);
        }
        let same_count = listed.len() == self.monitors.len();
        let ended = self
            .monitors
            .iter()
            .enumerate()
            .filter(|(_, m)| !kept.contains(&m.id))
            .map(|(index, old)| {
                // A new monitor at the same top-left corner (or, when as many monitors are listed
                // as before, at the same position in the list) is this one changed.
                let new = |m: &&MonitorInfo| started.contains(&m.id);
                let successor = monitors
                    .iter()
                    .filter(new)
                    .find(|m| (m.x, m.y) == (old.x, old.y))
                    .or_else(|| monitors.get(index).filter(new).filter(|_| same_count));
                let reason = match successor {
                    Some(new) if (new.width, new.height) != (old.width, old.height) => format!(
                        "monitor {} changed from {}×{} to {}×{}: it continues as monitor {}",
                        old.id, old.width, old.height, new.width, new.height, new.id
                    ),
                    Some(new) => format!(
                        "monitor {} moved to ({}, {}): it continues as monitor {}",
                        old.id, new.x, new.y, new.id
                    ),
                    None => format!("monitor {} was disconnected", old.id),
                };
                Ended {
                    monitor: old.id,
                    reason,
                }
            })
            .collect();
        self.monitors = monitors;
        self.sources = sources;
        Change { ended, started }
    }

    /// The platform's number of a monitor (stable number).
    pub fn source(&self, monitor: MonitorId) -> Option<MonitorId> {
        let index = self.monitors.iter().position(|m| m.id == monitor)?;
        self.sources.get(index).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monitor(id: u16, x: i32, width: u32, height: u32) -> MonitorInfo {
        MonitorInfo {
            id: MonitorId(id),
            x,
            y: 0,
            width,
            height,
            scale: 1.0,
            primary: x == 0,
        }
    }

    fn ids(layout: &Layout) -> Vec<(u16, u16)> {
        layout
            .monitors
            .iter()
            .zip(&layout.sources)
            .map(|(m, s)| (m.id.0, s.0))
            .collect()
    }

    #[test]
    fn a_monitor_added_and_removed_keeps_the_others_numbers() {
        let mut layout = Layout::new(&[monitor(0, 0, 1920, 1080)]);
        assert!(layout.update(&[monitor(0, 0, 1920, 1080)]).is_empty());

        let added = layout.update(&[monitor(0, 0, 1920, 1080), monitor(1, 1920, 1280, 1024)]);
        assert_eq!(added.started, vec![MonitorId(1)]);
        assert!(added.ended.is_empty());

        // The left one goes: the right one keeps its number, though the platform now calls it 0.
        let removed = layout.update(&[monitor(0, 1920, 1280, 1024)]);
        assert_eq!(ids(&layout), vec![(1, 0)]);
        assert_eq!(layout.source(MonitorId(1)), Some(MonitorId(0)));
        assert_eq!(layout.source(MonitorId(0)), None);
        assert_eq!(
            removed.ended,
            vec![Ended {
                monitor: MonitorId(0),
                reason: "monitor 0 was disconnected".into()
            }]
        );
        assert!(removed.started.is_empty());

        // Plugged in again: a number not used before in this run.
        let again = layout.update(&[monitor(0, 0, 1920, 1080), monitor(1, 1920, 1280, 1024)]);
        assert_eq!(again.started, vec![MonitorId(2)]);
        assert_eq!(ids(&layout), vec![(2, 0), (1, 1)]);
    }

    #[test]
    fn a_resolution_change_ends_one_stream_and_starts_another() {
        let mut layout = Layout::new(&[monitor(0, 0, 1920, 1080), monitor(1, 1920, 1280, 1024)]);
        let change = layout.update(&[monitor(0, 0, 1280, 720), monitor(1, 1280, 1280, 1024)]);
        // Both moved or changed: both end, and the ended ones say what they became.
        assert_eq!(change.started, vec![MonitorId(2), MonitorId(3)]);
        assert_eq!(
            change.ended[0].reason,
            "monitor 0 changed from 1920×1080 to 1280×720: it continues as monitor 2"
        );
        assert_eq!(
            change.ended[1].reason,
            "monitor 1 moved to (1280, 0): it continues as monitor 3"
        );
        assert_eq!(layout.monitors.len(), 2);
    }

    #[test]
    fn two_monitors_at_the_same_place_are_told_apart() {
        // Mirrored outputs can list the same rectangle twice: each keeps one number.
        let mut layout = Layout::new(&[monitor(0, 0, 800, 600), monitor(1, 0, 800, 600)]);
        assert!(
            layout
                .update(&[monitor(0, 0, 800, 600), monitor(1, 0, 800, 600)])
                .is_empty()
        );
        let change = layout.update(&[monitor(0, 0, 800, 600)]);
        assert_eq!(change.ended.len(), 1);
        assert_eq!(change.ended[0].monitor, MonitorId(1));
    }
}
