//! Desktop Duplication: one `IDXGIOutputDuplication` per output, on a D3D11 device of the
//! adapter that owns the output (hybrid-GPU laptops drive their panel from the integrated GPU).
//!
//! Each grab asks for the next frame without waiting: a timeout means nothing changed. A frame
//! that moved only the pointer (`LastPresentTime` 0) is nothing either. Otherwise its move and
//! dirty rectangles, turned to the desktop's orientation, name the tiles that changed, and only
//! those are copied from the mapped staging texture into the agent's own image of the monitor.

use std::sync::Arc;
use std::time::Instant;

use windows::Win32::Foundation::{HMODULE, RECT};
use windows::Win32::Graphics::Direct3D::D3D_DRIVER_TYPE_UNKNOWN;
use windows::Win32::Graphics::Direct3D11::{
    D3D11_CPU_ACCESS_READ, D3D11_CREATE_DEVICE_BGRA_SUPPORT, D3D11_MAP_READ,
    D3D11_MAPPED_SUBRESOURCE, D3D11_SDK_VERSION, D3D11_TEXTURE2D_DESC, D3D11_USAGE_STAGING,
    D3D11CreateDevice, ID3D11Device, ID3D11DeviceContext, ID3D11Texture2D,
};
use windows::Win32::Graphics::Dxgi::{
    CreateDXGIFactory1, DXGI_ERROR_ACCESS_LOST, DXGI_ERROR_NOT_FOUND, DXGI_ERROR_WAIT_TIMEOUT,
    DXGI_OUTDUPL_FRAME_INFO, DXGI_OUTDUPL_MOVE_RECT, IDXGIAdapter1, IDXGIFactory1, IDXGIOutput1,
    IDXGIOutputDuplication, IDXGIResource,
};
use windows::core::Interface as _;

use super::super::layout::{Output, OutputDesc, Rect, Rotation, layout};
use super::super::tiles::{MoveRect, TileGrid};
use super::super::{CaptureError, Grab, ImagePool};
use super::GrabError;
use super::desktop::{from_wide, monitor_dpi};
use crate::pipeline::detect::TILE;

fn io(error: windows::core::Error) -> CaptureError {
    CaptureError::Io(std::io::Error::other(error))
}

fn rect(r: RECT) -> Rect {
    Rect {
        left: r.left,
        top: r.top,
        right: r.right,
        bottom: r.bottom,
    }
}

/// Every output of every adapter, with the adapter that owns it.
fn enumerate() -> windows::core::Result<Vec<(IDXGIAdapter1, IDXGIOutput1, OutputDesc)>> {
    // SAFETY: COM calls on interfaces the windows crate reference-counts.
    unsafe {
        let factory: IDXGIFactory1 = CreateDXGIFactory1()?;
        let mut found = Vec::new();
        for a in 0.. {
            let adapter = match factory.EnumAdapters1(a) {
                Ok(adapter) => adapter,
                Err(e) if e.code() == DXGI_ERROR_NOT_FOUND => break,
                Err(e) => return Err(e),
            };
            for o in 0.. {
                let output = match adapter.EnumOutputs(o) {
                    Ok(output) => output,
                    Err(e) if e.code() == DXGI_ERROR_NOT_FOUND => break,
                    Err(e) => return Err(e),
                };
                let desc = output.GetDesc()?;
                let output1: IDXGIOutput1 = output.cast()?;
                found.push((
                    adapter.clone(),
                    output1,
                    OutputDesc {
                        device: from_wide(&desc.DeviceName),
                        desktop: rect(desc.DesktopCoordinates),
                        rotation: Rotation::from_dxgi(desc.Rotation.0),
                        dpi: monitor_dpi(desc.Monitor),
                        attached: desc.AttachedToDesktop.as_bool(),
                    },
                ));
            }
        }
        Ok(found)
    }
}

/// The monitors from `DXGI_OUTPUT_DESC`, numbered as [`layout`] does.
pub fn outputs() -> Result<Vec<Output>, CaptureError> {
    let descs: Vec<OutputDesc> = enumerate()
        .map_err(io)?
        .into_iter()
        .map(|(_, _, d)| d)
        .collect();
    Ok(layout(&descs))
}

/// Whether Desktop Duplication works here: a duplication of the first output is made and
/// dropped. Fails under RDP, some VDI, and Wine.
pub fn probe() -> Result<(), CaptureError> {
    let first = outputs()?
        .into_iter()
        .next()
        .ok_or_else(|| CaptureError::NoDisplay("no DXGI output".into()))?;
    Duplication::open(&first).map(drop)
}

/// A duplication of one output, and the agent's image of it (desktop orientation).
pub struct Duplication {
    device: ID3D11Device,
    context: ID3D11DeviceContext,
    duplication: IDXGIOutputDuplication,
    staging: Option<(ID3D11Texture2D, (u32, u32))>,
    rotation: Rotation,
    /// The monitor as the desktop shows it, BGRA, rows of `width * 4`.
    image: Vec<u8>,
    size: (u32, u32),
    /// Nothing copied yet: the first frame is copied whole.
    fresh: bool,
    dirty: Vec<RECT>,
    moves: Vec<DXGI_OUTDUPL_MOVE_RECT>,
}

impl Duplication {
    /// Duplicates the output with `output.device`'s name.
    pub fn open(output: &Output) -> Result<Duplication, CaptureError> {
        let (adapter, output1, _) = enumerate()
            .map_err(io)?
            .into_iter()
            .find(|(_, _, d)| d.device == output.device)
            .ok_or_else(|| CaptureError::NoDisplay(format!("no DXGI output {}", output.device)))?;
        let mut device = None;
        let mut context = None;
        // SAFETY: the out-pointers are valid; with an adapter the driver type must be UNKNOWN.
        unsafe {
            D3D11CreateDevice(
                &adapter,
                D3D_DRIVER_TYPE_UNKNOWN,
                HMODULE::default(),
                D3D11_CREATE_DEVICE_BGRA_SUPPORT,
                None,
                D3D11_SDK_VERSION,
                Some(&mut device),
                None,
                Some(&mut context),
            )
            .map_err(io)?;
        }
        let device: ID3D11Device =
            device.ok_or_else(|| CaptureError::NoDisplay("no D3D11 device".into()))?;
        let context = context.ok_or_else(|| CaptureError::NoDisplay("no D3D11 context".into()))?;
        // SAFETY: COM call on live interfaces.
        let duplication = unsafe { output1.DuplicateOutput(&device) }.map_err(io)?;
        let size = (output.info.width, output.info.height);
        Ok(Duplication {
            device,
            context,
            duplication,
            staging: None,
            rotation: output.rotation,
            image: vec![0; size.0 as usize * size.1 as usize * 4],
            size,
            fresh: true,
            dirty: Vec::new(),
            moves: Vec::new(),
        })
    }

    /// The next frame if the screen changed (or `force`), copied into a pool image.
    pub fn grab(&mut self, force: bool, pool: &Arc<ImagePool>) -> Result<Option<Grab>, GrabError> {
        let mut info = DXGI_OUTDUPL_FRAME_INFO::default();
        let mut resource: Option<IDXGIResource> = None;
        let at = Instant::now();
        // SAFETY: both out-pointers are valid for the call.
        let acquired = unsafe {
            self.duplication
                .AcquireNextFrame(0, &mut info, &mut resource)
        };
        match acquired {
            Ok(()) => {}
            Err(e) if e.code() == DXGI_ERROR_WAIT_TIMEOUT => {
                return if force && !self.fresh {
                    Ok(self.hand_out(pool, at))
                } else {
                    Ok(None)
                };
            }
            Err(e) if e.code() == DXGI_ERROR_ACCESS_LOST => {
                return Err(GrabError::Lost(e.to_string()));
            }
            Err(e) => return Err(GrabError::Failed(io(e))),
        }
        // The frame is held until ReleaseFrame: released on every path below.
        let copied = self.copy_frame(&info, resource);
        // SAFETY: a frame was acquired above.
        let released = unsafe { self.duplication.ReleaseFrame() };
        let changed = copied?;
        if let Err(e) = released
            && e.code() == DXGI_ERROR_ACCESS_LOST
        {
            return Err(GrabError::Lost(e.to_string()));
        }
        if changed || force {
            Ok(self.hand_out(pool, at))
        } else {
            Ok(None)
        }
    }

    fn hand_out(&self, pool: &Arc<ImagePool>, at: Instant) -> Option<Grab> {
        let (width, height) = self.size;
        pool.take(width, height, width as usize * 4, |buffer| {
            buffer.extend_from_slice(&self.image)
        })
        .map(|image| Grab { image, at })
    }

    /// Copies the changed tiles of an acquired frame; whether anything changed.
    fn copy_frame(
        &mut self,
        info: &DXGI_OUTDUPL_FRAME_INFO,
        resource: Option<IDXGIResource>,
    ) -> Result<bool, GrabError> {
        if info.LastPresentTime == 0 && !self.fresh {
            return Ok(false); // only the pointer moved
        }
        let texture: ID3D11Texture2D = resource
            .ok_or_else(|| {
                GrabError::Failed(CaptureError::NoDisplay("frame without a texture".into()))
            })?
            .cast()
            .map_err(|e| GrabError::Failed(io(e)))?;
        let mut desc = D3D11_TEXTURE2D_DESC::default();
        // SAFETY: `desc` is valid for the call.
        unsafe { texture.GetDesc(&mut desc) };
        let texture_size = (desc.Width, desc.Height);
        if self.rotation.desktop_size(texture_size) != self.size {
            // A mode change the layout has not caught up with: have it reopened.
            return Err(GrabError::Lost(format!(
                "frame of {}x{} for a {}x{} monitor",
                desc.Width, desc.Height, self.size.0, self.size.1
            )));
        }
        let grid = TileGrid {
            width: self.size.0,
            height: self.size.1,
            tile: TILE,
        };
        let tiles: Vec<usize> = if self.fresh {
            (0..(grid.columns() * grid.rows()) as usize).collect()
        } else {
            let (dirty, moves) = self.rectangles(info, texture_size)?;
            grid.changed(&dirty, &moves)
        };
        if tiles.is_empty() {
            return Ok(false);
        }
        let staging = self.staging(&desc)?;
        // SAFETY: both textures are alive and of one size and format; the mapping is read
        // within `RowPitch * Height` bytes and unmapped before returning.
        unsafe {
            self.context.CopyResource(&staging, &texture);
            let mut mapped = D3D11_MAPPED_SUBRESOURCE::default();
            self.context
                .Map(&staging, 0, D3D11_MAP_READ, 0, Some(&mut mapped))
                .map_err(|e| GrabError::Failed(io(e)))?;
            let pitch = mapped.RowPitch as usize;
            let source =
                std::slice::from_raw_parts(mapped.pData.cast::<u8>(), pitch * desc.Height as usize);
            let back = self.rotation.inverse();
            let stride = self.size.0 as usize * 4;
            for tile in tiles {
                let area = back.rect_to_desktop(grid.bounds(tile), self.size);
                self.rotation.copy_to_desktop(
                    source,
                    pitch,
                    texture_size,
                    area,
                    &mut self.image,
                    stride,
                );
            }
            self.context.Unmap(&staging, 0);
        }
        self.fresh = false;
        Ok(true)
    }

    /// The frame's move and dirty rectangles, in desktop coordinates.
    fn rectangles(
        &mut self,
        info: &DXGI_OUTDUPL_FRAME_INFO,
        texture: (u32, u32),
    ) -> Result<(Vec<Rect>, Vec<MoveRect>), GrabError> {
        let capacity = info.TotalMetadataBufferSize as usize;
        self.moves.resize(
            capacity / std::mem::size_of::<DXGI_OUTDUPL_MOVE_RECT>() + 1,
            DXGI_OUTDUPL_MOVE_RECT::default(),
        );
        self.dirty
            .resize(capacity / std::mem::size_of::<RECT>() + 1, RECT::default());
        let (mut moves_bytes, mut dirty_bytes) = (0u32, 0u32);
        // SAFETY: each buffer is valid for the byte size passed with it.
        unsafe {
            self.duplication
                .GetFrameMoveRects(
                    (self.moves.len() * std::mem::size_of::<DXGI_OUTDUPL_MOVE_RECT>()) as u32,
                    self.moves.as_mut_ptr(),
                    &mut moves_bytes,
                )
                .map_err(|e| GrabError::Failed(io(e)))?;
            self.duplication
                .GetFrameDirtyRects(
                    (self.dirty.len() * std::mem::size_of::<RECT>()) as u32,
                    self.dirty.as_mut_ptr(),
                    &mut dirty_bytes,
                )
                .map_err(|e| GrabError::Failed(io(e)))?;
        }
        let moves = self.moves
            [..moves_bytes as usize / std::mem::size_of::<DXGI_OUTDUPL_MOVE_RECT>()]
            .iter()
            .map(|m| MoveRect {
                source: (m.SourcePoint.x, m.SourcePoint.y),
                destination: self
                    .rotation
                    .rect_to_desktop(rect(m.DestinationRect), texture),
            })
            .collect();
        let dirty = self.dirty[..dirty_bytes as usize / std::mem::size_of::<RECT>()]
            .iter()
            .map(|r| self.rotation.rect_to_desktop(rect(*r), texture))
            .collect();
        Ok((dirty, moves))
    }

    /// The CPU-readable copy of the frame's texture, made once per size.
    fn staging(&mut self, desc: &D3D11_TEXTURE2D_DESC) -> Result<ID3D11Texture2D, GrabError> {
        let size = (desc.Width, desc.Height);
        if let Some((texture, made_for)) = &self.staging
            && *made_for == size
        {
            return Ok(texture.clone());
        }
        let staging_desc = D3D11_TEXTURE2D_DESC {
            Width: desc.Width,
            Height: desc.Height,
            MipLevels: 1,
            ArraySize: 1,
            Format: desc.Format,
            SampleDesc: desc.SampleDesc,
            Usage: D3D11_USAGE_STAGING,
            BindFlags: 0,
            CPUAccessFlags: D3D11_CPU_ACCESS_READ.0 as u32,
            MiscFlags: 0,
        };
        let mut texture = None;
        // SAFETY: the description and out-pointer are valid for the call.
        unsafe {
            self.device
                .CreateTexture2D(&staging_desc, None, Some(&mut texture))
        }
        .map_err(|e| GrabError::Failed(io(e)))?;
        let texture = texture.ok_or_else(|| {
            GrabError::Failed(CaptureError::NoDisplay("no staging texture".into()))
        })?;
        self.staging = Some((texture.clone(), size));
        Ok(texture)
    }
}
