//! The crash-tolerant SCN reader.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::io::{Seek, SeekFrom};
use std::path::Path;

use super::record::DecodeError;
use super::{
    FORMAT_VERSION, MAGIC, MAX_HEADER_BYTES, MAX_RECORD_BYTES, PREAMBLE_BYTES,
    RECORD_FRAMING_BYTES, Record, ScnError, ScnHeader,
};

/// What a reader skipped at the end of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// Offset of the first byte not returned (the start of the damaged record).
    pub offset: u64,
    /// How many bytes from there to the end of the file were not returned.
    pub bytes: u64,
    /// Why.
    pub reason: DropReason,
}

/// Why the reader stopped before the end of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropReason {
    /// The file ends inside a record (a crash during the append).
    Torn {
        /// Bytes the record needed (framing included), when its length was readable.
        needed: Option<u64>,
    },
    /// The record's CRC does not match its bytes.
    BadCrc,
    /// The record's length field is zero or above [`MAX_RECORD_BYTES`].
    BadLength(u32),
    /// The record's type is not one this build knows.
    UnknownType(u8),
    /// The record's CRC matched but its body is malformed.
    BadBody(&'static str),
    /// Bytes follow the end record.
    AfterEnd,
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DropReason::Torn { needed: Some(n) } => write!(f, "torn record (needed {n} bytes)"),
            DropReason::Torn { needed: None } => write!(f, "torn record framing"),
            DropReason::BadCrc => write!(f, "CRC mismatch"),
            DropReason::BadLength(len) => write!(f, "impossible record length {len}"),
            DropReason::UnknownType(kind) => write!(f, "unknown record type {kind}"),
            DropReason::BadBody(why) => write!(f, "malformed record: {why}"),
            DropReason::AfterEnd => write!(f, "data after the end record"),
        }
    }
}

/// Reads an SCN file record by record, streaming (memory stays bounded by one record).
#[derive(Debug)]
pub struct ScnReader<R> {
    input: R,
    header: ScnHeader,
    offset: u64,
    dropped: Option<Dropped>,
    finished: bool,
    ended: bool,
}

impl ScnReader<BufReader<File>> {
    /// Opens a file and reads its header.
    pub fn open(path: &Path) -> Result<Self, ScnError> {
        ScnReader::new(BufReader::with_capacity(1 << 20, File::open(path)?))
    }
}

/// Reads up to `buf.len()` bytes, stopping early only at end of input; returns how many.
fn read_full<R: Read>(input: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

impl<R: Read> ScnReader<R> {
    /// Reads and checks the header. A file that ends inside its header, or whose header is
    /// damaged, has nothing recoverable and is an error.
    pub fn new(mut input: R) -> Result<Self, ScnError> {
        let mut preamble = [0u8; PREAMBLE_BYTES as usize];
        let got = read_full(&mut input, &mut preamble)?;
        if got >= MAGIC.len() && preamble[..MAGIC.len()] != MAGIC {
            return Err(ScnError::BadMagic);
        }
        if got < preamble.len() {
            return Err(ScnError::HeaderTorn {
                needed: PREAMBLE_BYTES,
                available: got as u64,
            });
        }
        let version = u16::from_le_bytes([preamble[8], preamble[9]]);
        if version != FORMAT_VERSION {
            return Err(ScnError::UnsupportedVersion(version));
        }
        let len = u32::from_le_bytes([preamble[10], preamble[11], preamble[12], preamble[13]]);
        let crc = u32::from_le_bytes([preamble[14], preamble[15], preamble[16], preamble[17]]);
        if len > MAX_HEADER_BYTES {
            return Err(ScnError::HeaderCorrupt(format!(
                "header length {len} exceeds {MAX_HEADER_BYTES}"
            )));
        }
        let mut json = vec![0u8; len as usize];
        let got = read_full(&mut input, &mut json)?;
        if got < json.len() {
            return Err(ScnError::HeaderTorn {
                needed: PREAMBLE_BYTES + u64::from(len),
                available: PREAMBLE_BYTES + got as u64,
            });
        }
        if crc32fast::hash(&json) != crc {
            return Err(ScnError::HeaderCorrupt("header CRC mismatch".into()));
        }
        let header: ScnHeader =
            serde_json::from_slice(&json).map_err(|e| ScnError::HeaderCorrupt(e.to_string()))?;
        Ok(ScnReader {
            input,
            header,
            offset: PREAMBLE_BYTES + u64::from(len),
            dropped: None,
            finished: false,
            ended: false,
        })
    }

    /// The file's header.
    pub fn header(&self) -> &ScnHeader {
        &self.header
    }

    /// The offset just past the last record returned: the length of the file's valid prefix.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// What was skipped at the end, once [`next_record`](Self::next_record) returned `None`.
    pub fn dropped(&self) -> Option<&Dropped> {
        self.dropped.as_ref()
    }

    /// Whether the file's last returned record was the end record (a clean close).
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The next whole record, or `None` at the end of the file or at the first damaged record
    /// (then [`dropped`](Self::dropped) says what was skipped). Only IO errors are errors.
    pub fn next_record(&mut self) -> io::Result<Option<Record>> {
        if self.finished {
            return Ok(None);
        }
        let mut framing = [0u8; RECORD_FRAMING_BYTES as usize];
        let got = read_full(&mut self.input, &mut framing)?;
        if got == 0 {
            self.finished = true;
            return Ok(None);
        }
        if self.ended {
            return self.drop_rest(got as u64, DropReason::AfterEnd);
        }
        if got < framing.len() {
            return self.drop_rest(got as u64, DropReason::Torn { needed: None });
        }
        let len = u32::from_le_bytes([framing[0], framing[1], framing[2], framing[3]]);
        let crc = u32::from_le_bytes([framing[4], framing[5], framing[6], framing[7]]);
        if len == 0 || len > MAX_RECORD_BYTES {
            return self.drop_rest(got as u64, DropReason::BadLength(len));
        }
        let mut body = vec![0u8; len as usize];
        let got_body = read_full(&mut self.input, &mut body)?;
        let consumed = RECORD_FRAMING_BYTES + got_body as u64;
        if got_body < body.len() {
            let needed = RECORD_FRAMING_BYTES + u64::from(len);
            return self.drop_rest(
                consumed,
                DropReason::Torn {
                    needed: Some(needed),
                },
            );
        }
        if crc32fast::hash(&body) != crc {
            return self.drop_rest(consumed, DropReason::BadCrc);
        }
        match Record::decode(&body) {
            Ok(record) => {
                self.offset += consumed;
                self.ended = matches!(record, Record::End { .. });
                Ok(Some(record))
            }
            Err(DecodeError::UnknownType(kind)) => {
                self.drop_rest(consumed, DropReason::UnknownType(kind))
            }
            Err(DecodeError::Body(why)) => self.drop_rest(consumed, DropReason::BadBody(why)),
        }
    }

    /// Stops reading: counts the bytes from the damaged record to the end of the input.
    fn drop_rest(&mut self, consumed: u64, reason: DropReason) -> io::Result<Option<Record>> {
        let rest = io::copy(&mut self.input, &mut io::sink())?;
        self.dropped = Some(Dropped {
            offset: self.offset,
            bytes: consumed + rest,
            reason,
        });
        self.finished = true;
        Ok(None)
    }
}

/// Reads the whole record that starts at `offset` (a length [`super::ScnWriter::append`]
/// returned before it): random access for the agent's spool, which sends records long after it
/// wrote them. A record that is torn, fails its CRC or does not decode is an
/// [`io::ErrorKind::InvalidData`] error.
pub fn read_record_at<R: Read + Seek>(input: &mut R, offset: u64) -> io::Result<Record> {
    let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
    input.seek(SeekFrom::Start(offset))?;
    let mut framing = [0u8; RECORD_FRAMING_BYTES as usize];
    if read_full(input, &mut framing)? < framing.len() {
        return Err(invalid(format!("record at {offset} is torn")));
    }
    let len = u32::from_le_bytes([framing[0], framing[1], framing[2], framing[3]]);
    let crc = u32::from_le_bytes([framing[4], framing[5], framing[6], framing[7]]);
    if len == 0 || len > MAX_RECORD_BYTES {
        return Err(invalid(format!("record at {offset} has length {len}")));
    }
    let mut body = vec![0u8; len as usize];
    if read_full(input, &mut body)? < body.len() {
        return Err(invalid(format!("record at {offset} is torn")));
    }
    if crc32fast::hash(&body) != crc {
        return Err(invalid(format!("record at {offset} fails its CRC")));
    }
    Record::decode(&body).map_err(|e| invalid(format!("record at {offset}: {e:?}")))
}

/// Everything recoverable from one SCN file.
#[derive(Debug, Clone, PartialEq)]
pub struct Recovery {
    /// The header.
    pub header: ScnHeader,
    /// Every whole record, in file order.
    pub records: Vec<Record>,
    /// What was skipped at the end, if anything.
    pub dropped: Option<Dropped>,
    /// Whether the file was closed cleanly (its last record is the end record).
    pub ended: bool,
}

/// Reads a whole file into memory. For large files iterate with [`ScnReader`] instead.
pub fn recover(path: &Path) -> Result<Recovery, ScnError> {
    recover_from_reader(BufReader::with_capacity(1 << 20, File::open(path)?))
}

/// Reads everything recoverable from any byte source (a file, a buffer, a download).
pub fn recover_from_reader<R: Read>(input: R) -> Result<Recovery, ScnError> {
    let mut reader = ScnReader::new(input)?;
    let mut records = Vec::new();
    while let Some(record) = reader.next_record()? {
        records.push(record);
    }
    Ok(Recovery {
        ended: reader.ended(),
        dropped: reader.dropped,
        header: reader.header,
        records,
    })
}
