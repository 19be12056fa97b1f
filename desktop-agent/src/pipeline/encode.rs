//! The encode stage: openh264 in screen-content mode, no B-frames (openh264 makes none), rate
//! control at the server's bitrate cap, keyframes only when the detector asks (start, request,
//! seek interval). The encoder is made at the first image's size and again when the size changes.

use capture_shared::ids::{ContactId, MonitorId};
use capture_shared::protocol::StreamSettings;
use openh264::OpenH264API;
use openh264::encoder::{
    BitRate, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, RateControlMode,
    UsageType,
};
use openh264::formats::YUVSource as _;

use super::{Converted, EncodedFrame, Stage};
use crate::capture::CaptureError;

/// The encoder stage of one monitor.
pub struct EncodeStage {
    contact: ContactId,
    monitor: MonitorId,
    config: EncoderConfig,
    encoder: Option<(Encoder, (u32, u32))>,
}

impl std::fmt::Debug for EncodeStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodeStage")
            .field("contact", &self.contact)
            .field("monitor", &self.monitor)
            .finish_non_exhaustive()
    }
}

/// The encoder settings for the server's stream settings.
pub fn encoder_config(settings: &StreamSettings) -> EncoderConfig {
    EncoderConfig::new()
        .usage_type(UsageType::ScreenContentRealTime)
        .rate_control_mode(RateControlMode::Bitrate)
        .bitrate(BitRate::from_bps(
            settings.bitrate_cap_kbps.saturating_mul(1000),
        ))
        .max_frame_rate(FrameRate::from_hz(settings.fps_max.clamp(0.5, 60.0)))
        // Not supported in screen-content mode (openh264 turns them off and says so).
        .adaptive_quantization(false)
        .background_detection(false)
        // A skipped frame would be a change the viewer never sees. (Without skipping, openh264's
        // rate control adapts QP towards the cap but cannot hold it on a burst.)
        .skip_frames(false)
        // Low complexity: measured on the office workload, smaller frames and the same CPU as Medium.
        .complexity(openh264::encoder::Complexity::Low)
        // One thread: a few frames a second need no parallel slices, and each openh264 worker
        // thread holds its own 1080p buffers.
        .num_threads(1)
        // Keyframes are ours to place (the detector asks for them).
        .intra_frame_period(IntraFramePeriod::from_num_frames(1_000_000))
}

impl EncodeStage {
    /// A stage for one monitor of one contact.
    pub fn new(
        contact: ContactId,
        monitor: MonitorId,
        settings: &StreamSettings,
    ) -> Result<EncodeStage, CaptureError> {
        Ok(EncodeStage {
            contact,
            monitor,
            config: encoder_config(settings),
            encoder: None,
        })
    }

    fn encoder(&mut self, size: (u32, u32)) -> Result<&mut Encoder, openh264::Error> {
        if self.encoder.as_ref().is_none_or(|(_, s)| *s != size) {
            let encoder = Encoder::with_api_config(OpenH264API::from_source(), self.config)?;
            self.encoder = Some((encoder, size));
        }
        match &mut self.encoder {
            Some((encoder, _)) => Ok(encoder),
            None => unreachable!("just made"),
        }
    }
}

impl Stage for EncodeStage {
    type In = Converted;
    type Out = EncodedFrame;

    fn process(&mut self, converted: Converted) -> Option<EncodedFrame> {
        let (width, height) = converted.yuv.dimensions();
        let size = (width as u32, height as u32);
        let (contact, monitor) = (self.contact, self.monitor);
        let encoder = match self.encoder(size) {
            Ok(encoder) => encoder,
            Err(error) => {
                tracing::error!(%monitor, %error, "cannot create the H.264 encoder");
                return None;
            }
        };
        if converted.keyframe {
            encoder.force_intra_frame();
        }
        let timestamp = openh264::Timestamp::from_millis(converted.at.0 / 1000);
        match encoder.encode_at(&converted.yuv, timestamp) {
            Ok(bitstream) => {
                let data = bitstream.to_vec();
                if data.is_empty() {
                    return None;
                }
                Some(EncodedFrame {
                    contact,
                    monitor,
                    at: converted.at,
                    keyframe: matches!(bitstream.frame_type(), FrameType::IDR),
                    width: size.0,
                    height: size.1,
                    data,
                })
            }
            Err(error) => {
                tracing::warn!(%monitor, %error, "encoding a frame failed");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use capture_shared::time::AgentMicros;
    use uuid::Uuid;

    use super::*;
    use crate::capture::synthetic::draw_office;
    use crate::pipeline::convert::to_i420;

    fn converted(at_ms: u64, keyframe: bool) -> Converted {
        let image = draw_office(640, 360, 0, std::time::Duration::from_millis(at_ms));
        Converted {
            at: AgentMicros(at_ms * 1000),
            yuv: to_i420(&image),
            keyframe,
        }
    }

    #[test]
    fn keyframes_come_exactly_when_asked_and_frames_keep_their_times() {
        let settings = StreamSettings::default();
        let mut stage =
            EncodeStage::new(ContactId(Uuid::nil()), MonitorId(0), &settings).expect("encoder");
        let asked = [true, false, false, true, false];
        let out: Vec<EncodedFrame> = asked
            .iter()
            .enumerate()
            .map(|(i, &key)| {
                stage
                    .process(converted(i as u64 * 700, key))
                    .expect("a changed image is never skipped")
            })
            .collect();
        let keys: Vec<bool> = out.iter().map(|f| f.keyframe).collect();
        assert_eq!(keys, asked);
        assert!(out.iter().all(|f| (f.width, f.height) == (640, 360)));
        let times: Vec<u64> = out.iter().map(|f| f.at.0).collect();
        assert_eq!(times, vec![0, 700_000, 1_400_000, 2_100_000, 2_800_000]);
        // Annex-B with SPS and PPS before each IDR; P-frames much smaller than the IDR.
        assert_eq!(&out[0].data[..4], &[0, 0, 0, 1]);
        assert!(
            out[1].data.len() * 3 < out[0].data.len(),
            "{} vs {}",
            out[1].data.len(),
            out[0].data.len()
        );
        // Decodable, at the encoded size.
        let mut decoder = openh264::decoder::Decoder::new().expect("decoder");
        for frame in &out {
            let picture = decoder
                .decode(&frame.data)
                .expect("decodes")
                .expect("a picture");
            assert_eq!(picture.dimensions(), (640, 360));
        }
    }
}
