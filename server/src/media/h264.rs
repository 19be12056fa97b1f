//! H.264 access units, from the agents' Annex-B (start codes) to MP4's form (4-byte big-endian
//! NAL lengths, with the parameter sets carried in the `avcC` box instead of the samples).

/// NAL unit types this module tells apart (ITU-T H.264 Table 7-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NalKind {
    /// A slice of an IDR picture.
    Idr,
    /// Sequence parameter set.
    Sps,
    /// Picture parameter set.
    Pps,
    /// Access unit delimiter.
    Aud,
    /// Anything else (non-IDR slices, SEI, ...).
    Other(u8),
}

impl NalKind {
    /// The kind of a NAL unit from its first byte.
    pub fn of(nal: &[u8]) -> NalKind {
        match nal.first().map(|b| b & 0x1f) {
            Some(5) => NalKind::Idr,
            Some(7) => NalKind::Sps,
            Some(8) => NalKind::Pps,
            Some(9) => NalKind::Aud,
            Some(other) => NalKind::Other(other),
            None => NalKind::Other(0),
        }
    }
}

/// The NAL units of an Annex-B buffer (start codes and trailing zero bytes removed).
pub fn split_annex_b(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new(); // (start code begins, payload begins)
    let mut i = 0;
    while i + 2 < data.len() {
        if data[i..i + 3] == [0, 0, 1] {
            let begin = if i > 0 && data[i - 1] == 0 { i - 1 } else { i };
            starts.push((begin, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals = Vec::with_capacity(starts.len());
    for (k, &(_, payload)) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(data.len(), |next| next.0);
        while end > payload && data[end - 1] == 0 {
            end -= 1;
        }
        if end > payload {
            nals.push(&data[payload..end]);
        }
    }
    nals
}

/// One access unit in MP4 form.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sample {
    /// Length-prefixed NAL units (without SPS, PPS, AUD).
    pub data: Vec<u8>,
    /// Whether it holds an IDR slice.
    pub keyframe: bool,
    /// The SPS it carried, if any.
    pub sps: Option<Vec<u8>>,
    /// The PPS it carried, if any.
    pub pps: Option<Vec<u8>>,
}

/// Converts one Annex-B access unit.
pub fn to_sample(access_unit: &[u8]) -> Sample {
    let mut sample = Sample::default();
    for nal in split_annex_b(access_unit) {
        match NalKind::of(nal) {
            NalKind::Sps => sample.sps = Some(nal.to_vec()),
            NalKind::Pps => sample.pps = Some(nal.to_vec()),
            NalKind::Aud => {}
            kind => {
                sample.keyframe |= kind == NalKind::Idr;
                let len = u32::try_from(nal.len()).unwrap_or(u32::MAX);
                sample.data.extend_from_slice(&len.to_be_bytes());
                sample.data.extend_from_slice(nal);
            }
        }
    }
    sample
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annex_b_becomes_length_prefixed_with_parameter_sets_apart() {
        let au = [
            0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, // SPS (4-byte start code)
            0, 0, 1, 0x68, 0xce, 0x3c, 0x80, // PPS (3-byte)
            0, 0, 0, 1, 0x65, 0x88, 0x84, 0x00, 0x00, // IDR slice with trailing zeros
        ];
        let sample = to_sample(&au);
        assert_eq!(sample.sps.as_deref(), Some(&[0x67, 0x42, 0xc0, 0x1f][..]));
        assert_eq!(sample.pps.as_deref(), Some(&[0x68, 0xce, 0x3c, 0x80][..]));
        assert!(sample.keyframe);
        assert_eq!(sample.data, vec![0, 0, 0, 3, 0x65, 0x88, 0x84]);
        let p = to_sample(&[0, 0, 1, 0x41, 0x9a]);
        assert!(!p.keyframe && p.sps.is_none());
        assert!(to_sample(&[1, 2, 3]).data.is_empty());
    }
}
