//! The monitor layout from the platform's output descriptions (pure: tested on every OS).
//!
//! Windows describes each output with its rectangle on the virtual desktop (`DXGI_OUTPUT_DESC`'s
//! `DesktopCoordinates`, or `GetMonitorInfo`'s `rcMonitor` for GDI), its rotation and its DPI.
//! The agent runs per-monitor-v2 DPI aware, so those rectangles are physical pixels and so is
//! every coordinate we report. The primary monitor is the one at the desktop's origin (Windows
//! always places it there), monitors are numbered primary first, then left to right and top to
//! bottom, so that both capture backends number them alike.
//!
//! Desktop Duplication hands out the frame in the output's *native* orientation: on a monitor
//! turned to portrait its texture is landscape. [`Rotation`] maps texture pixels and rectangles
//! onto the desktop's orientation, as Microsoft's Desktop Duplication sample does for its dirty
//! rectangles (`DestDirty` in `SetDirtyVert`).

use capture_shared::ids::MonitorId;
use capture_shared::protocol::MonitorInfo;

/// Windows's reference DPI (100 % scaling).
pub const BASE_DPI: u32 = 96;

/// A rectangle, left and top inclusive, right and bottom exclusive (Win32's `RECT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rect {
    /// Left edge.
    pub left: i32,
    /// Top edge.
    pub top: i32,
    /// One past the right edge.
    pub right: i32,
    /// One past the bottom edge.
    pub bottom: i32,
}

impl Rect {
    /// Width (0 when inverted).
    pub fn width(&self) -> u32 {
        u32::try_from(i64::from(self.right) - i64::from(self.left)).unwrap_or(0)
    }

    /// Height (0 when inverted).
    pub fn height(&self) -> u32 {
        u32::try_from(i64::from(self.bottom) - i64::from(self.top)).unwrap_or(0)
    }

    /// The part of this rectangle inside `0..width` × `0..height`, if any.
    pub fn clip(&self, width: u32, height: u32) -> Option<Rect> {
        let w = i32::try_from(width).unwrap_or(i32::MAX);
        let h = i32::try_from(height).unwrap_or(i32::MAX);
        let clipped = Rect {
            left: self.left.clamp(0, w),
            top: self.top.clamp(0, h),
            right: self.right.clamp(0, w),
            bottom: self.bottom.clamp(0, h),
        };
        (clipped.width() > 0 && clipped.height() > 0).then_some(clipped)
    }
}

/// How an output's picture is turned on its monitor (`DXGI_MODE_ROTATION`, or `DEVMODE`'s
/// `dmDisplayOrientation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rotation {
    /// Landscape, as the texture.
    #[default]
    Identity,
    /// Turned a quarter clockwise.
    Rotate90,
    /// Upside down.
    Rotate180,
    /// Turned a quarter anticlockwise.
    Rotate270,
}

impl Rotation {
    /// From `DXGI_MODE_ROTATION` (0 unspecified and 1 identity; 2, 3, 4 the turns).
    pub fn from_dxgi(value: i32) -> Rotation {
        match value {
            2 => Rotation::Rotate90,
            3 => Rotation::Rotate180,
            4 => Rotation::Rotate270,
            _ => Rotation::Identity,
        }
    }

    /// From `DEVMODEW::dmDisplayOrientation` (`DMDO_DEFAULT` 0, `DMDO_90` 1, `DMDO_180` 2,
    /// `DMDO_270` 3).
    pub fn from_display_orientation(value: u32) -> Rotation {
        match value {
            1 => Rotation::Rotate90,
            2 => Rotation::Rotate180,
            3 => Rotation::Rotate270,
            _ => Rotation::Identity,
        }
    }

    /// The turn back: maps desktop coordinates (of the desktop's size) onto the texture.
    pub fn inverse(self) -> Rotation {
        match self {
            Rotation::Rotate90 => Rotation::Rotate270,
            Rotation::Rotate270 => Rotation::Rotate90,
            other => other,
        }
    }

    /// Whether width and height trade places between the texture and the desktop.
    pub fn swaps_axes(self) -> bool {
        matches!(self, Rotation::Rotate90 | Rotation::Rotate270)
    }

    /// The desktop's size of a texture of `(width, height)`.
    pub fn desktop_size(self, (width, height): (u32, u32)) -> (u32, u32) {
        if self.swaps_axes() {
            (height, width)
        } else {
            (width, height)
        }
    }

    /// Where texture pixel `(x, y)` of a `texture` of `(width, height)` lands on the desktop.
    pub fn to_desktop(self, (x, y): (u32, u32), (width, height): (u32, u32)) -> (u32, u32) {
        match self {
            Rotation::Identity => (x, y),
            Rotation::Rotate90 => (height - 1 - y, x),
            Rotation::Rotate180 => (width - 1 - x, height - 1 - y),
            Rotation::Rotate270 => (y, width - 1 - x),
        }
    }

    /// A texture rectangle as a desktop rectangle.
    pub fn rect_to_desktop(self, rect: Rect, (width, height): (u32, u32)) -> Rect {
        let (w, h) = (
            i32::try_from(width).unwrap_or(i32::MAX),
            i32::try_from(height).unwrap_or(i32::MAX),
        );
        match self {
            Rotation::Identity => rect,
            Rotation::Rotate90 => Rect {
                left: h - rect.bottom,
                top: rect.left,
                right: h - rect.top,
                bottom: rect.right,
            },
            Rotation::Rotate180 => Rect {
                left: w - rect.right,
                top: h - rect.bottom,
                right: w - rect.left,
                bottom: h - rect.top,
            },
            Rotation::Rotate270 => Rect {
                left: rect.top,
                top: w - rect.right,
                right: rect.bottom,
                bottom: w - rect.left,
            },
        }
    }

    /// Copies `area` (texture coordinates) of a BGRA texture into a BGRA desktop image, turned.
    /// `texture` is `(width, height)` with rows of `texture_stride` bytes; `desktop` has rows
    /// of `desktop_stride` bytes and the turned size.
    pub fn copy_to_desktop(
        self,
        source: &[u8],
        texture_stride: usize,
        texture: (u32, u32),
        area: Rect,
        desktop: &mut [u8],
        desktop_stride: usize,
    ) {
        let Some(area) = area.clip(texture.0, texture.1) else {
            return;
        };
        let (left, top) = (area.left as usize, area.top as usize);
        let (right, bottom) = (area.right as usize, area.bottom as usize);
        for y in top..bottom {
            let row = &source[y * texture_stride..];
            if self == Rotation::Identity {
                let bytes = &row[left * 4..right * 4];
                let start = y * desktop_stride + left * 4;
                desktop[start..start + bytes.len()].copy_from_slice(bytes);
                continue;
            }
            for x in left..right {
                let (dx, dy) = self.to_desktop((x as u32, y as u32), texture);
                let to = dy as usize * desktop_stride + dx as usize * 4;
                desktop[to..to + 4].copy_from_slice(&row[x * 4..x * 4 + 4]);
            }
        }
    }
}

/// One output as the platform describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputDesc {
    /// The device name (`\\.\DISPLAY1`): how the two backends find the same output.
    pub device: String,
    /// Its rectangle on the virtual desktop, physical pixels, already turned.
    pub desktop: Rect,
    /// How its picture is turned.
    pub rotation: Rotation,
    /// Its effective DPI (96 = 100 %).
    pub dpi: u32,
    /// Whether it is part of the desktop (detached outputs are not captured).
    pub attached: bool,
}

/// One monitor to capture: what the server is told, and how to find and turn it.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The monitor as reported in `Hello`.
    pub info: MonitorInfo,
    /// The device name.
    pub device: String,
    /// How its picture is turned.
    pub rotation: Rotation,
}

/// The monitors of these outputs: attached and non-empty ones only, primary first, then by
/// position; scale from DPI.
pub fn layout(outputs: &[OutputDesc]) -> Vec<Output> {
    let mut attached: Vec<&OutputDesc> = outputs
        .iter()
        .filter(|o| o.attached && o.desktop.width() > 0 && o.desktop.height() > 0)
        .collect();
    let is_primary = |o: &OutputDesc| o.desktop.left == 0 && o.desktop.top == 0;
    attached.sort_by_key(|o| (!is_primary(o), o.desktop.left, o.desktop.top));
    attached
        .into_iter()
        .enumerate()
        .map(|(index, o)| {
            let dpi = if o.dpi == 0 { BASE_DPI } else { o.dpi };
            Output {
                info: MonitorInfo {
                    id: MonitorId(u16::try_from(index).unwrap_or(u16::MAX)),
                    x: o.desktop.left,
                    y: o.desktop.top,
                    width: o.desktop.width(),
                    height: o.desktop.height(),
                    scale: dpi as f32 / BASE_DPI as f32,
                    primary: is_primary(o),
                },
                device: o.device.clone(),
                rotation: o.rotation,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(device: &str, left: i32, top: i32, w: i32, h: i32, dpi: u32) -> OutputDesc {
        OutputDesc {
            device: device.into(),
            desktop: Rect {
                left,
                top,
                right: left + w,
                bottom: top + h,
            },
            rotation: Rotation::Identity,
            dpi,
            attached: true,
        }
    }

    #[test]
    fn mixed_sizes_negative_origins_and_scaling_keep_physical_pixels() {
        // A 4K laptop panel at 150 % on the right of the primary, a 1280×1024 monitor to the
        // left (negative origin) and one above it, and a detached output.
        let mut detached = output(r"\\.\DISPLAY5", 0, 0, 800, 600, 96);
        detached.attached = false;
        let outputs = [
            output(r"\\.\DISPLAY3", 1920, 0, 3840, 2160, 144),
            output(r"\\.\DISPLAY2", -1280, 56, 1280, 1024, 96),
            detached,
            output(r"\\.\DISPLAY1", 0, 0, 1920, 1080, 96),
            output(r"\\.\DISPLAY4", -1280, -1024, 1280, 1024, 120),
        ];
        let monitors = layout(&outputs);
        let summary: Vec<_> = monitors
            .iter()
            .map(|m| {
                (
                    m.info.id.0,
                    m.device.as_str(),
                    m.info.x,
                    m.info.y,
                    m.info.width,
                    m.info.height,
                    m.info.scale,
                    m.info.primary,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (0, r"\\.\DISPLAY1", 0, 0, 1920, 1080, 1.0, true),
                (1, r"\\.\DISPLAY4", -1280, -1024, 1280, 1024, 1.25, false),
                (2, r"\\.\DISPLAY2", -1280, 56, 1280, 1024, 1.0, false),
                (3, r"\\.\DISPLAY3", 1920, 0, 3840, 2160, 1.5, false),
            ]
        );
        // Every monitor is where the platform said, so a desktop point finds its monitor.
        let infos: Vec<MonitorInfo> = monitors.iter().map(|m| m.info.clone()).collect();
        assert_eq!(
            crate::capture::locate(&infos, (-10, 60)),
            Some((MonitorId(2), 1270, 4))
        );
        assert_eq!(
            crate::capture::locate(&infos, (5759, 2159)),
            Some((MonitorId(3), 3839, 2159))
        );
    }

    #[test]
    fn a_portrait_monitor_reports_its_turned_size() {
        // DXGI: DesktopCoordinates are already turned; the texture is the native landscape.
        let mut portrait = output(r"\\.\DISPLAY2", 1920, 0, 1080, 1920, 96);
        portrait.rotation = Rotation::from_dxgi(2);
        let monitors = layout(&[output(r"\\.\DISPLAY1", 0, 0, 1920, 1080, 96), portrait]);
        assert_eq!(
            (monitors[1].info.width, monitors[1].info.height),
            (1080, 1920)
        );
        assert_eq!(monitors[1].rotation, Rotation::Rotate90);
        assert_eq!(Rotation::Rotate90.desktop_size((1920, 1080)), (1080, 1920));
        assert_eq!(Rotation::from_display_orientation(3), Rotation::Rotate270);
        assert_eq!(Rotation::from_dxgi(0), Rotation::Identity);
    }

    #[test]
    fn no_primary_at_the_origin_means_none_is_claimed() {
        let monitors = layout(&[output("a", 10, 0, 100, 100, 0)]);
        assert!(!monitors[0].info.primary);
        assert_eq!(monitors[0].info.scale, 1.0, "an unknown DPI is 100 %");
    }

    /// A texture whose pixel (x, y) holds (x, y, 0, 255), turned and compared pixel by pixel
    /// with `to_desktop`, and its rectangles with `rect_to_desktop`.
    #[test]
    fn turned_copies_put_every_pixel_and_rectangle_where_the_desktop_shows_it() {
        let texture = (5u32, 3u32);
        let stride = texture.0 as usize * 4 + 8; // padded rows, as mapped textures have
        let mut source = vec![0u8; stride * texture.1 as usize];
        for y in 0..texture.1 {
            for x in 0..texture.0 {
                let at = y as usize * stride + x as usize * 4;
                source[at..at + 4].copy_from_slice(&[x as u8, y as u8, 0, 255]);
            }
        }
        for rotation in [
            Rotation::Identity,
            Rotation::Rotate90,
            Rotation::Rotate180,
            Rotation::Rotate270,
        ] {
            let (dw, dh) = rotation.desktop_size(texture);
            let mut desktop = vec![0u8; (dw * dh * 4) as usize];
            let whole = Rect {
                left: 0,
                top: 0,
                right: 5,
                bottom: 3,
            };
            rotation.copy_to_desktop(
                &source,
                stride,
                texture,
                whole,
                &mut desktop,
                dw as usize * 4,
            );
            for y in 0..texture.1 {
                for x in 0..texture.0 {
                    let (dx, dy) = rotation.to_desktop((x, y), texture);
                    let at = (dy * dw + dx) as usize * 4;
                    assert_eq!(&desktop[at..at + 2], &[x as u8, y as u8], "{rotation:?}");
                }
            }
            // A one-pixel rectangle turns onto the pixel it holds.
            let pixel = Rect {
                left: 1,
                top: 2,
                right: 2,
                bottom: 3,
            };
            let (dx, dy) = rotation.to_desktop((1, 2), texture);
            let turned = rotation.rect_to_desktop(pixel, texture);
            assert_eq!(
                rotation
                    .inverse()
                    .rect_to_desktop(turned, rotation.desktop_size(texture)),
                pixel,
                "{rotation:?} and back"
            );
            assert_eq!(
                rotation.rect_to_desktop(pixel, texture),
                Rect {
                    left: dx as i32,
                    top: dy as i32,
                    right: dx as i32 + 1,
                    bottom: dy as i32 + 1
                },
                "{rotation:?}"
            );
        }
        // The rotation the issue names: Microsoft's sample's ROTATE90 case.
        assert_eq!(
            Rotation::Rotate90.to_desktop((0, 0), (1920, 1080)),
            (1079, 0)
        );
    }

    #[test]
    fn rectangles_are_clipped_to_the_image() {
        let r = Rect {
            left: -5,
            top: 10,
            right: 30,
            bottom: 2000,
        };
        assert_eq!(
            r.clip(20, 100),
            Some(Rect {
                left: 0,
                top: 10,
                right: 20,
                bottom: 100
            })
        );
        let outside = Rect {
            left: 50,
            top: 0,
            right: 60,
            bottom: 5,
        };
        assert_eq!(outside.clip(20, 100), None);
        let inverted = Rect {
            left: 10,
            top: 10,
            right: 5,
            bottom: 5,
        };
        assert_eq!(inverted.clip(20, 100), None);
        assert_eq!(inverted.width(), 0);
    }
}
