//! A fragmented MP4 writer for any number of tracks (one video track per monitor plus the audio),
//! built from `shiguredo_mp4`'s box types. Its own segment muxer keeps one track per kind and
//! starts every track at time zero; a stitched interaction needs several video tracks, each
//! starting where its capture began, so each fragment's `tfdt` is given here explicitly.
//!
//! Layout: `ftyp` + `moov` (tracks, `mvex`), then `moof` + `mdat` per fragment. Every fragment is
//! synced before the next is written; [`recover`] cuts a file back to its last complete fragment.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::num::NonZeroU32;
use std::path::Path;

use shiguredo_mp4::boxes::{
    Brand, DinfBox, FtypBox, HdlrBox, MdhdBox, MdiaBox, MfhdBox, MinfBox, MoofBox, MoovBox,
    MvexBox, MvhdBox, SampleEntry, SmhdBox, StblBox, StcoBox, StscBox, StsdBox, StszBox, SttsBox,
    TfdtBox, TfhdBox, TkhdBox, TrafBox, TrakBox, TrexBox, TrunBox, TrunSample, VmhdBox,
};
use shiguredo_mp4::{
    BoxHeader, Either, Encode, FixedPointNumber, Mp4FileTime, SampleFlags, TrackKind, Utf8String,
};

/// Why writing failed.
#[derive(Debug, thiserror::Error)]
pub enum Fmp4Error {
    /// The file system failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A box could not be encoded.
    #[error("mp4: {0}")]
    Encode(String),
}

fn encode(value: &impl Encode) -> Result<Vec<u8>, Fmp4Error> {
    value
        .encode_to_vec()
        .map_err(|e| Fmp4Error::Encode(e.to_string()))
}

/// One track of the file.
#[derive(Debug, Clone)]
pub struct Track {
    /// Video or audio.
    pub kind: TrackKind,
    /// Ticks per second.
    pub timescale: NonZeroU32,
    /// Codec configuration.
    pub entry: SampleEntry,
}

/// One sample of a fragment.
#[derive(Debug, Clone)]
pub struct FragmentSample {
    /// In the track's timescale.
    pub duration: u32,
    /// Whether it is a sync sample.
    pub keyframe: bool,
    /// The payload.
    pub data: Vec<u8>,
}

/// One track's run of samples in a fragment.
#[derive(Debug, Clone)]
pub struct Run {
    /// Index into the file's tracks.
    pub track: usize,
    /// Decode time of the first sample, in the track's timescale.
    pub start: u64,
    /// The samples.
    pub samples: Vec<FragmentSample>,
}

fn sample_flags(keyframe: bool) -> SampleFlags {
    // sample_depends_on: 2 (independent) for sync samples; 1 and "non-sync" for the others.
    SampleFlags::new(if keyframe { 0x0200_0000 } else { 0x0101_0000 })
}

fn trak(track: &Track, id: u32) -> TrakBox {
    let time = Mp4FileTime::from_unix_time(std::time::Duration::ZERO);
    let (volume, width, height) = match &track.entry {
        SampleEntry::Avc1(avc) => (
            TkhdBox::DEFAULT_VIDEO_VOLUME,
            FixedPointNumber::new(i16::try_from(avc.visual.width).unwrap_or(i16::MAX), 0),
            FixedPointNumber::new(i16::try_from(avc.visual.height).unwrap_or(i16::MAX), 0),
        ),
        _ => (
            TkhdBox::DEFAULT_AUDIO_VOLUME,
            FixedPointNumber::default(),
            FixedPointNumber::default(),
        ),
    };
    let video = track.kind == TrackKind::Video;
    TrakBox {
        tkhd_box: TkhdBox {
            flag_track_enabled: true,
            flag_track_in_movie: true,
            flag_track_in_preview: false,
            flag_track_size_is_aspect_ratio: false,
            creation_time: time,
            modification_time: time,
            track_id: id,
            duration: 0,
            layer: TkhdBox::DEFAULT_LAYER,
            alternate_group: TkhdBox::DEFAULT_ALTERNATE_GROUP,
            volume,
            matrix: TkhdBox::DEFAULT_MATRIX,
            width,
            height,
        },
        edts_box: None,
        mdia_box: MdiaBox {
            mdhd_box: MdhdBox {
                creation_time: time,
                modification_time: time,
                timescale: track.timescale,
                duration: 0,
                language: MdhdBox::LANGUAGE_UNDEFINED,
            },
            hdlr_box: HdlrBox {
                handler_type: if video {
                    HdlrBox::HANDLER_TYPE_VIDE
                } else {
                    HdlrBox::HANDLER_TYPE_SOUN
                },
                name: Utf8String::EMPTY.into_null_terminated_bytes(),
            },
            minf_box: MinfBox {
                smhd_or_vmhd_box: Some(if video {
                    Either::B(VmhdBox::default())
                } else {
                    Either::A(SmhdBox::default())
                }),
                dinf_box: DinfBox::LOCAL_FILE,
                stbl_box: StblBox {
                    stsd_box: StsdBox {
                        entries: vec![track.entry.clone()],
                    },
                    stts_box: SttsBox::from_sample_deltas(core::iter::empty()),
                    ctts_box: None,
                    cslg_box: None,
                    stsc_box: StscBox { entries: vec![] },
                    stsz_box: StszBox::Variable {
                        entry_sizes: vec![],
                    },
                    stco_or_co64_box: Either::A(StcoBox {
                        chunk_offsets: vec![],
                    }),
                    stss_box: None,
                    sdtp_box: None,
                    unknown_boxes: Vec::new(),
                },
                unknown_boxes: Vec::new(),
            },
            unknown_boxes: Vec::new(),
        },
        unknown_boxes: Vec::new(),
    }
}

/// The initialisation segment (`ftyp` + `moov`) of `tracks` (track ids are index + 1).
pub fn init_segment(tracks: &[Track]) -> Result<Vec<u8>, Fmp4Error> {
    let time = Mp4FileTime::from_unix_time(std::time::Duration::ZERO);
    let ftyp = FtypBox {
        major_brand: Brand::ISO5,
        minor_version: 0,
        compatible_brands: vec![
            Brand::ISOM,
            Brand::ISO5,
            Brand::ISO6,
            Brand::MP41,
            Brand::AVC1,
        ],
    };
    let ids = 1..=u32::try_from(tracks.len()).unwrap_or(u32::MAX);
    let moov = MoovBox {
        mvhd_box: MvhdBox {
            creation_time: time,
            modification_time: time,
            timescale: NonZeroU32::new(1000).unwrap_or(NonZeroU32::MIN),
            duration: 0,
            rate: MvhdBox::DEFAULT_RATE,
            volume: MvhdBox::DEFAULT_VOLUME,
            matrix: MvhdBox::DEFAULT_MATRIX,
            next_track_id: u32::try_from(tracks.len() + 1).unwrap_or(u32::MAX),
        },
        trak_boxes: tracks
            .iter()
            .zip(ids.clone())
            .map(|(t, id)| trak(t, id))
            .collect(),
        mvex_box: Some(MvexBox {
            mehd_box: None,
            trex_boxes: ids
                .map(|track_id| TrexBox {
                    track_id,
                    default_sample_description_index: 1,
                    default_sample_duration: 0,
                    default_sample_size: 0,
                    default_sample_flags: SampleFlags::new(0),
                })
                .collect(),
            unknown_boxes: Vec::new(),
        }),
        unknown_boxes: Vec::new(),
    };
    let mut bytes = encode(&ftyp)?;
    bytes.extend(encode(&moov)?);
    Ok(bytes)
}

fn moof(sequence: u32, runs: &[Run], offsets: &[i32]) -> MoofBox {
    MoofBox {
        mfhd_box: MfhdBox {
            sequence_number: sequence,
        },
        traf_boxes: runs
            .iter()
            .zip(offsets)
            .map(|(run, offset)| TrafBox {
                tfhd_box: TfhdBox {
                    track_id: u32::try_from(run.track + 1).unwrap_or(u32::MAX),
                    base_data_offset: None,
                    sample_description_index: None,
                    default_sample_duration: None,
                    default_sample_size: None,
                    default_sample_flags: None,
                    duration_is_empty: false,
                    default_base_is_moof: true,
                },
                tfdt_box: Some(TfdtBox {
                    version: 1,
                    base_media_decode_time: run.start,
                }),
                trun_boxes: vec![TrunBox {
                    data_offset: Some(*offset),
                    first_sample_flags: None,
                    samples: run
                        .samples
                        .iter()
                        .map(|s| TrunSample {
                            duration: Some(s.duration),
                            size: Some(u32::try_from(s.data.len()).unwrap_or(u32::MAX)),
                            flags: Some(sample_flags(s.keyframe)),
                            composition_time_offset: None,
                        })
                        .collect(),
                }],
                unknown_boxes: Vec::new(),
            })
            .collect(),
        unknown_boxes: Vec::new(),
    }
}

/// Writes a fragmented MP4, one synced fragment at a time.
#[derive(Debug)]
pub struct Fmp4Writer {
    file: BufWriter<File>,
    sequence: u32,
    /// Bytes written so far.
    pub written: u64,
    /// Whether each fragment is synced as it is written (archival files) or only the whole file
    /// at the end (derived files, rebuilt when lost).
    sync_each_fragment: bool,
}

impl Fmp4Writer {
    /// Creates `path` with the initialisation segment of `tracks`.
    pub fn create(path: &Path, tracks: &[Track]) -> Result<Fmp4Writer, Fmp4Error> {
        let mut file = BufWriter::new(File::create(path)?);
        let init = init_segment(tracks)?;
        file.write_all(&init)?;
        Ok(Fmp4Writer {
            file,
            sequence: 0,
            written: init.len() as u64,
            sync_each_fragment: true,
        })
    }

    /// [`create`](Self::create) for a derived file: fragments are not synced one by one.
    pub fn create_derived(path: &Path, tracks: &[Track]) -> Result<Fmp4Writer, Fmp4Error> {
        let mut writer = Fmp4Writer::create(path, tracks)?;
        writer.sync_each_fragment = false;
        Ok(writer)
    }

    /// Appends one fragment (`moof` + `mdat`) holding `runs` (empty runs are left out) and syncs
    /// it to disk.
    pub fn write_fragment(&mut self, runs: &[Run]) -> Result<(), Fmp4Error> {
        let runs: Vec<&Run> = runs.iter().filter(|r| !r.samples.is_empty()).collect();
        if runs.is_empty() {
            return Ok(());
        }
        let runs: Vec<Run> = runs.into_iter().cloned().collect();
        self.sequence += 1;
        let payload: u64 = runs
            .iter()
            .flat_map(|r| &r.samples)
            .map(|s| s.data.len() as u64)
            .sum();
        let placeholder = vec![0i32; runs.len()];
        let moof_size = encode(&moof(self.sequence, &runs, &placeholder))?.len() as u64;
        let header_size = BoxHeader::MIN_SIZE as u64;
        let mut offsets = Vec::with_capacity(runs.len());
        let mut at = moof_size + header_size;
        for run in &runs {
            offsets.push(
                i32::try_from(at).map_err(|_| Fmp4Error::Encode("fragment too large".into()))?,
            );
            at += run.samples.iter().map(|s| s.data.len() as u64).sum::<u64>();
        }
        let size = u32::try_from(header_size + payload)
            .map_err(|_| Fmp4Error::Encode("fragment too large".into()))?;
        self.file
            .write_all(&encode(&moof(self.sequence, &runs, &offsets))?)?;
        // The mdat header: 32-bit size and type (the crate builds headers only inside boxes).
        self.file.write_all(&size.to_be_bytes())?;
        self.file.write_all(b"mdat")?;
        for sample in runs.iter().flat_map(|r| &r.samples) {
            self.file.write_all(&sample.data)?;
        }
        if self.sync_each_fragment {
            self.file.flush()?;
            self.file.get_ref().sync_data()?;
        }
        self.written += moof_size + header_size + payload;
        Ok(())
    }

    /// Finishes the file (an archival one is then on disk; a derived one is left to the OS);
    /// its size.
    pub fn finish(mut self) -> Result<u64, Fmp4Error> {
        self.file.flush()?;
        if self.sync_each_fragment {
            self.file.get_ref().sync_all()?;
        }
        Ok(self.written)
    }
}

/// Cuts the fragmented MP4 at `path` back to its last complete fragment (a `moof` followed by
/// its whole `mdat`) and returns its new length. A file without a complete `moov` is cut to 0.
pub fn recover(path: &Path) -> Result<u64, Fmp4Error> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let length = file.metadata()?.len();
    let mut at = 0u64;
    let mut good = 0u64;
    let mut seen_moov = false;
    let mut pending_moof = false;
    loop {
        let mut header = [0u8; 16];
        file.seek(SeekFrom::Start(at))?;
        if at + 8 > length || file.read_exact(&mut header[..8]).is_err() {
            break;
        }
        let mut size = u64::from(u32::from_be_bytes([
            header[0], header[1], header[2], header[3],
        ]));
        if size == 1 {
            if at + 16 > length || file.read_exact(&mut header[8..16]).is_err() {
                break;
            }
            size = u64::from_be_bytes([
                header[8], header[9], header[10], header[11], header[12], header[13], header[14],
                header[15],
            ]);
        }
        if size < 8 || at + size > length {
            break;
        }
        let kind = &header[4..8];
        at += size;
        match kind {
            b"moov" => {
                seen_moov = true;
                good = at;
            }
            b"moof" => pending_moof = true,
            b"mdat" if pending_moof => {
                pending_moof = false;
                good = at;
            }
            b"ftyp" => {}
            _ => {}
        }
    }
    let keep = if seen_moov { good } else { 0 };
    if keep < length {
        file.set_len(keep)?;
        file.sync_all()?;
    }
    Ok(keep)
}
