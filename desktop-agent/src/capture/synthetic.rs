//! A synthetic desktop: an office workload drawn from the clock (a form being typed into, a list
//! scrolling, a window switch every 20 s, a taskbar clock), or a still one. For the demo, load
//! tests and machines without a display; what it draws depends only on the time since it started.

use std::time::{Duration, Instant};

use capture_shared::ids::MonitorId;
use capture_shared::protocol::MonitorInfo;

use super::{CaptureError, Grab, Image, MonitorCapture, PointerSource, ScreenSource};

/// What the synthetic desktop does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Typing, scrolling, window switches.
    Office,
    /// Nothing moves.
    Still,
}

/// A synthetic desktop of one or more monitors side by side.
#[derive(Debug, Clone)]
pub struct SyntheticSource {
    workload: Workload,
    sizes: Vec<(u32, u32)>,
    started: Instant,
}

impl SyntheticSource {
    /// A desktop of monitors of `sizes`, left to right.
    pub fn new(workload: Workload, sizes: Vec<(u32, u32)>) -> SyntheticSource {
        SyntheticSource {
            workload,
            sizes,
            started: Instant::now(),
        }
    }
}

impl ScreenSource for SyntheticSource {
    fn monitors(&self) -> Result<Vec<MonitorInfo>, CaptureError> {
        let mut x = 0;
        Ok(self
            .sizes
            .iter()
            .enumerate()
            .map(|(index, &(width, height))| {
                let monitor = MonitorInfo {
                    id: MonitorId(u16::try_from(index).unwrap_or(u16::MAX)),
                    x,
                    y: 0,
                    width,
                    height,
                    scale: 1.0,
                    primary: index == 0,
                };
                x += i32::try_from(width).unwrap_or(0);
                monitor
            })
            .collect())
    }

    fn open(&self, monitor: MonitorId) -> Result<Box<dyn MonitorCapture>, CaptureError> {
        let &(width, height) = self
            .sizes
            .get(usize::from(monitor.0))
            .ok_or(CaptureError::NoSuchMonitor(monitor))?;
        Ok(Box::new(SyntheticCapture {
            workload: self.workload,
            seed: u32::from(monitor.0),
            width,
            height,
            started: self.started,
        }))
    }

    fn pointer(&self) -> Box<dyn PointerSource> {
        Box::new(SyntheticPointer {
            workload: self.workload,
            started: self.started,
        })
    }

    fn backend(&self) -> String {
        "synthetic".into()
    }
}

struct SyntheticCapture {
    workload: Workload,
    seed: u32,
    width: u32,
    height: u32,
    started: Instant,
}

impl MonitorCapture for SyntheticCapture {
    fn grab(&mut self, _force: bool) -> Result<Option<Grab>, CaptureError> {
        let at = Instant::now();
        let elapsed = match self.workload {
            Workload::Office => at.duration_since(self.started),
            Workload::Still => Duration::ZERO,
        };
        Ok(Some(Grab {
            image: draw_office(self.width, self.height, self.seed, elapsed),
            at,
        }))
    }
}

struct SyntheticPointer {
    workload: Workload,
    started: Instant,
}

impl PointerSource for SyntheticPointer {
    fn position(&mut self) -> Option<(i32, i32)> {
        match self.workload {
            Workload::Still => Some((400, 300)),
            Workload::Office => {
                // Glides between the form and the list every 10 s, resting in between.
                let t = self.started.elapsed().as_millis() as i64 % 10_000;
                let x = if t < 2_000 { 300 + t / 4 } else { 800 };
                Some((i32::try_from(x).unwrap_or(0), 420))
            }
        }
    }
}

/// Draws the office desktop at `elapsed`.
pub fn draw_office(width: u32, height: u32, seed: u32, elapsed: Duration) -> Image {
    let mut image = Image::black(width, height);
    let (w, h) = (width as i64, height as i64);
    let secs = elapsed.as_secs();
    fill(&mut image, 0, 0, w, h, [0x5a, 0x3e, 0x2a]); // desktop
    // Taskbar with a clock that changes every minute.
    fill(&mut image, 0, h - 40, w, 40, [0x30, 0x30, 0x30]);
    text(
        &mut image,
        w - 120,
        h - 30,
        &format!("{:02}:{:02}", 9 + secs / 3600, (secs / 60) % 60),
        [0xf0, 0xf0, 0xf0],
    );
    // Two windows; every 20 s the other one comes to the front.
    let front_is_form = (secs / 20 + u64::from(seed)).is_multiple_of(2);
    let form = (w / 16, h / 12, w / 2, h * 2 / 3);
    let list = (w * 3 / 8, h / 6, w / 2, h * 2 / 3);
    if front_is_form {
        draw_list(&mut image, list, elapsed);
        draw_form(&mut image, form, elapsed);
    } else {
        draw_form(&mut image, form, elapsed);
        draw_list(&mut image, list, elapsed);
    }
    image
}

type Rect = (i64, i64, i64, i64);

fn window(image: &mut Image, (x, y, w, h): Rect, title: &str) {
    fill(image, x, y, w, h, [0xf4, 0xf4, 0xf4]);
    fill(image, x, y, w, 32, [0x9c, 0x5a, 0x1e]);
    text(image, x + 12, y + 9, title, [0xff, 0xff, 0xff]);
}

/// A customer form; the notes field is typed into at four characters a second.
fn draw_form(image: &mut Image, rect: Rect, elapsed: Duration) {
    let (x, y, w, _) = rect;
    window(image, rect, "Customer record");
    let labels = ["Name", "Account", "Phone", "Notes"];
    let values = ["Jordan Smith", "AC-204-7781", "+1 408 555 0100"];
    for (i, label) in labels.iter().enumerate() {
        let row = y + 60 + i as i64 * 48;
        text(image, x + 20, row + 8, label, [0x40, 0x40, 0x40]);
        fill(image, x + 140, row, w - 170, 30, [0xff, 0xff, 0xff]);
        if let Some(value) = values.get(i) {
            text(image, x + 148, row + 8, value, [0x10, 0x10, 0x10]);
        }
    }
    const NOTE: &str =
        "Customer calls about the invoice of March; refund approved, ticket 5521 opened. ";
    let typed = (elapsed.as_millis() / 250) as usize % (NOTE.len() * 3);
    let mut shown = String::new();
    for c in NOTE.chars().cycle().take(typed) {
        shown.push(c);
    }
    let per_line = ((w - 190) / 9).max(1) as usize;
    let notes_top = y + 60 + 3 * 48;
    let lines: Vec<String> = shown
        .chars()
        .collect::<Vec<_>>()
        .chunks(per_line)
        .map(|c| c.iter().collect())
        .collect();
    let visible = lines.len().saturating_sub(8);
    fill(
        image,
        x + 140,
        notes_top,
        w - 170,
        8 * 22 + 10,
        [0xff, 0xff, 0xff],
    );
    for (i, line) in lines[visible..].iter().enumerate() {
        text(
            image,
            x + 148,
            notes_top + 6 + i as i64 * 22,
            line,
            [0x10, 0x10, 0x10],
        );
    }
}

/// A list of tickets that scrolls one row every two seconds.
fn draw_list(image: &mut Image, rect: Rect, elapsed: Duration) {
    let (x, y, w, h) = rect;
    window(image, rect, "Open tickets");
    let first = elapsed.as_secs() / 2;
    let rows = (h - 50) / 26;
    for i in 0..rows {
        let n = first + i as u64;
        let row_y = y + 42 + i * 26;
        let shade = if n.is_multiple_of(2) {
            [0xfa, 0xfa, 0xfa]
        } else {
            [0xe8, 0xe8, 0xe8]
        };
        fill(image, x + 4, row_y, w - 8, 26, shade);
        text(
            image,
            x + 12,
            row_y + 6,
            &format!("#{:05}  Invoice question  open  {}m", 5000 + n, n % 60),
            [0x20, 0x20, 0x20],
        );
    }
}

fn fill(image: &mut Image, x: i64, y: i64, w: i64, h: i64, [b, g, r]: [u8; 3]) {
    let x0 = x.clamp(0, i64::from(image.width)) as usize;
    let x1 = (x + w).clamp(0, i64::from(image.width)) as usize;
    let y0 = y.clamp(0, i64::from(image.height)) as usize;
    let y1 = (y + h).clamp(0, i64::from(image.height)) as usize;
    if x0 >= x1 {
        return;
    }
    let pixel = [b, g, r, 0xff];
    for row in y0..y1 {
        let start = row * image.stride + x0 * 4;
        let end = row * image.stride + x1 * 4;
        for px in image.bgra[start..end].chunks_exact_mut(4) {
            px.copy_from_slice(&pixel);
        }
    }
}

/// Draws text as 7×12 glyph blocks with a per-character pattern: not a font, but text-like
/// detail (edges, strokes) of the density an encoder sees in real text.
fn text(image: &mut Image, x: i64, y: i64, text: &str, colour: [u8; 3]) {
    for (i, c) in text.chars().enumerate() {
        if c == ' ' {
            continue;
        }
        let code = u32::from(c);
        let pattern = code.wrapping_mul(2_654_435_761);
        let gx = x + i as i64 * 9;
        for row in 0..6 {
            for col in 0..3 {
                if pattern >> (row * 3 + col) & 1 == 1 || row == 5 && c.is_ascii_alphabetic() {
                    fill(image, gx + col * 2 + 1, y + row * 2, 2, 2, colour);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_office_changes_over_time_and_the_still_desktop_does_not() {
        let a = draw_office(640, 360, 0, Duration::from_millis(0));
        let b = draw_office(640, 360, 0, Duration::from_millis(1_000));
        let c = draw_office(640, 360, 0, Duration::from_millis(0));
        assert_ne!(a, b, "typing changes the form");
        assert_eq!(a, c, "the drawing depends only on the time");
        let source = SyntheticSource::new(Workload::Still, vec![(640, 360)]);
        let mut capture = source.open(MonitorId(0)).expect("opens");
        let first = capture.grab(false).expect("grab").expect("image").image;
        std::thread::sleep(Duration::from_millis(300));
        let second = capture.grab(false).expect("grab").expect("image").image;
        assert_eq!(first, second);
    }
}
