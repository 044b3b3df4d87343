//! One file substituted in bounded memory: read in chunks, decoded incrementally,
//! evaluated token by token ([`TemplateStream`]), encoded and written into a temp file
//! beside the file ([`StagingFile`]) that is staged for the all-or-nothing rename.
//!
//! Memory is a few chunks plus the largest single top-level token (an `#{if}` or `#{each}`
//! block holds its whole body, and its output is built before it is written), whatever the
//! file's size. The results are byte for byte those of evaluating the whole text at once
//! (the tests compare the two), which takes a few passes over the file for what the whole
//! text shows at a glance:
//!
//! 1. A first pass looks for `#{` and stops at the first one (the whole file when there is
//!    none, which is then left alone). A UTF-16 file is decoded to look, and its decoded
//!    length is noted on the way: the output limit is eight times the text's length.
//! 2. The file is streamed. Without a BOM it is taken to be UTF-8; when an invalid byte
//!    turns up it is windows-1252 instead (as the detection says), and the stream starts
//!    again; likewise a UTF-8 file with a BOM and invalid bytes is decoded again with
//!    replacement characters, its decoded length counted first. When the output encoding
//!    cannot represent a character the stream starts again writing UTF-8 without a BOM, as
//!    [`TextEncoding::encode_or_utf8`] does for a whole text.
//!
//! Evaluation is deterministic, so starting again gives what one pass over the whole text
//! gives; messages are logged once, at the end.

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::Path;

use encoding_rs::Encoding;

use super::{Error, FAIL_ON_SUBSTITUTION_FAILS, FileOutcome, OUTPUT_ENCODING, in_file};
use crate::fs::{IoContext as _, IoError, StagedReplacements, StagingFile};
use crate::log::Log;
use crate::text_encoding::{self, Charset, TextEncoding};
use crate::variables::VariableDictionary;
use crate::variables::template::parser::ParseError;
use crate::variables::template::stream::{StreamEnd, TemplateStream};

/// Substitutes variables in `path`, staging its new contents in `staged` when they differ;
/// `chunk` is how many bytes are read at a time.
pub(super) fn substitute(
    path: &Path,
    variables: &VariableDictionary,
    log: &Log,
    chunk: usize,
    staged: &mut StagedReplacements,
) -> Result<FileOutcome, Error> {
    let chunk = chunk.max(1);
    let mut source = Source::open(path, chunk)?;
    let mut encoding = source.encoding;
    let utf16 = matches!(encoding.charset, Charset::Utf16Le | Charset::Utf16Be);
    let (has_token, utf16_len) = if utf16 {
        let (len, found) = source.decoded_len(decoder_for(encoding))?;
        (found, Some(len))
    } else {
        (source.has_token_bytes()?, None)
    };
    if !has_token {
        log.verbose(format!("No variables to substitute in '{}'", path.display()));
        return Ok(FileOutcome::NoTokens);
    }
    log.info(format!("Performing variable substitution on '{}'", path.display()));
    let fail = variables.get_flag(FAIL_ON_SUBSTITUTION_FAILS, false)?;
    let requested = variables.get(OUTPUT_ENCODING)?.filter(|n| !n.trim().is_empty());
    let output_encoding = |encoding: TextEncoding| match &requested {
        Some(name) => TextEncoding::by_name(name, encoding.bom).unwrap_or(encoding),
        None => encoding,
    };

    let mut decoding = if utf16 { Decoding::Replacing(decoder_for(encoding)) } else { Decoding::StrictUtf8 };
    let mut len = utf16_len.unwrap_or(source.len);
    let mut out_encoding = output_encoding(encoding);
    let mut write_as = out_encoding;
    let mut staging = StagingFile::create(path)?;
    let mut first = true;
    let end = loop {
        if !first {
            staging.truncate()?;
        }
        first = false;
        match source.stream(variables, decoding, len, write_as, fail, &mut staging)? {
            Attempt::Done(end) => break end,
            Attempt::Syntax(e) => return Err(syntax_error(path, e)),
            Attempt::InvalidUtf8 => {
                // A BOM says UTF-8 whatever follows (invalid bytes become U+FFFD); without
                // one, text that is not UTF-8 is windows-1252.
                if !encoding.bom {
                    encoding = TextEncoding { charset: Charset::Other(encoding_rs::WINDOWS_1252), bom: false };
                }
                let decoder = decoder_for(encoding);
                len = source.decoded_len(decoder)?.0;
                decoding = Decoding::Replacing(decoder);
                out_encoding = output_encoding(encoding);
                write_as = out_encoding;
            }
            Attempt::Unrepresentable => write_as = TextEncoding::UTF8,
        }
    };

    if let Some(e) = end.halt_error {
        log.verbose(syntax_error(path, e).to_string());
    }
    if let Some(e) = end.failed {
        return Err(in_file(path, e));
    }
    if let Some(message) = end.missing {
        let error = Error::Template { path: path.to_path_buf(), message };
        if fail {
            return Err(error);
        }
        log.verbose(error.to_string());
    }
    if let Some(name) = &requested
        && TextEncoding::by_name(name, encoding.bom).is_none()
    {
        log.verbose(format!("Unknown output encoding '{name}'; keeping the file's own encoding"));
    }
    if end.unchanged && out_encoding == encoding {
        return Ok(FileOutcome::Unchanged);
    }
    if end.null {
        // No value at all: the file becomes the encoding of no text (its BOM, if any).
        staging.truncate()?;
        staging.write_all(&out_encoding.encode_or_utf8("").bytes)?;
    } else if write_as != out_encoding {
        log.warn(text_encoding::unrepresentable_warning(path));
    }
    staged.stage_file(staging)?;
    Ok(FileOutcome::Substituted)
}

fn syntax_error(path: &Path, e: ParseError) -> Error {
    Error::TemplateSyntax { path: path.to_path_buf(), message: e.message, line: e.line, column: e.column }
}

/// The decoder of a text known not to be strict UTF-8 (replacing what is malformed).
fn decoder_for(encoding: TextEncoding) -> &'static Encoding {
    match encoding.charset {
        Charset::Utf16Le => encoding_rs::UTF_16LE,
        Charset::Utf16Be => encoding_rs::UTF_16BE,
        Charset::Other(e) => e,
        Charset::Utf8 | Charset::Ascii => encoding_rs::UTF_8,
    }
}

/// How the bytes after the BOM become text.
#[derive(Debug, Clone, Copy)]
enum Decoding {
    /// UTF-8, giving up at the first invalid byte ([`Attempt::InvalidUtf8`]).
    StrictUtf8,
    /// This encoding, malformed bytes becoming U+FFFD.
    Replacing(&'static Encoding),
}

/// How one streaming pass ended.
enum Attempt {
    /// The whole text was evaluated and the output written.
    Done(StreamEnd),
    /// The halting mode failed and the caller fails on that.
    Syntax(ParseError),
    /// The text is not UTF-8 after all.
    InvalidUtf8,
    /// The output encoding cannot represent the output.
    Unrepresentable,
}

/// The file being substituted, read a chunk at a time.
struct Source<'p> {
    path: &'p Path,
    file: File,
    buf: Vec<u8>,
    chunk: usize,
    /// The encoding its BOM (or the lack of one) says.
    encoding: TextEncoding,
    /// Length of the BOM.
    skip: u64,
    /// Bytes after the BOM.
    len: usize,
}

impl<'p> Source<'p> {
    fn open(path: &'p Path, chunk: usize) -> Result<Self, Error> {
        let mut file = crate::fs::open(path)?;
        let size = file.metadata().at("read metadata of", path)?.len();
        let mut head = [0u8; 3];
        let n = read_full(&mut file, &mut head, path)?;
        let head = &head[..n];
        let with = |charset, skip| (TextEncoding { charset, bom: true }, skip);
        let (encoding, skip) = if head.starts_with(b"\xEF\xBB\xBF") {
            with(Charset::Utf8, 3)
        } else if head.starts_with(b"\xFF\xFE") {
            with(Charset::Utf16Le, 2)
        } else if head.starts_with(b"\xFE\xFF") {
            with(Charset::Utf16Be, 2)
        } else {
            (TextEncoding::UTF8, 0)
        };
        let len = usize::try_from(size.saturating_sub(skip)).unwrap_or(usize::MAX);
        Ok(Source { path, file, buf: vec![0; chunk + 4], chunk, encoding, skip, len })
    }

    fn seek(&mut self, to: u64) -> Result<(), IoError> {
        self.file.seek(SeekFrom::Start(to)).map(drop).at("seek in", self.path)
    }

    /// Reads the next chunk into `buf[keep..]`; returns its length (short only at the end).
    fn read_chunk(&mut self, keep: usize) -> Result<usize, IoError> {
        let end = keep + self.chunk;
        read_full(&mut self.file, &mut self.buf[keep..end], self.path)
    }

    /// Whether the bytes hold `#{` (the test the whole file's bytes get when they are not
    /// UTF-16); stops at the first.
    fn has_token_bytes(&mut self) -> Result<bool, IoError> {
        self.seek(0)?;
        let mut after_hash = false;
        loop {
            let n = self.read_chunk(0)?;
            let bytes = &self.buf[..n];
            if (after_hash && bytes.first() == Some(&b'{')) || memchr::memmem::find(bytes, b"#{").is_some() {
                return Ok(true);
            }
            if n < self.chunk {
                return Ok(false);
            }
            after_hash = bytes.last() == Some(&b'#');
        }
    }

    /// The length in UTF-8 of the text after the BOM decoded with `encoding` (malformed
    /// bytes replaced), and whether it holds `#{`.
    fn decoded_len(&mut self, encoding: &'static Encoding) -> Result<(usize, bool), IoError> {
        self.seek(self.skip)?;
        let mut decoder = encoding.new_decoder_without_bom_handling();
        let mut text = String::new();
        let (mut len, mut found, mut after_hash) = (0, false, false);
        loop {
            let n = self.read_chunk(0)?;
            let last = n < self.chunk;
            text.clear();
            decode_into(&mut decoder, &self.buf[..n], &mut text, last);
            len += text.len();
            found = found || (after_hash && text.starts_with('{')) || text.contains("#{");
            if !text.is_empty() {
                after_hash = text.ends_with('#');
            }
            if last {
                return Ok((len, found));
            }
        }
    }

    /// One pass: decodes, evaluates and writes the output in `write_as` into `staging`.
    fn stream(
        &mut self,
        variables: &VariableDictionary,
        decoding: Decoding,
        len: usize,
        write_as: TextEncoding,
        fail: bool,
        staging: &mut StagingFile,
    ) -> Result<Attempt, Error> {
        self.seek(self.skip)?;
        let mut stream = TemplateStream::new(variables, len).map_err(|e| in_file(self.path, e))?;
        let mut encoder = Encoder::new(write_as);
        encoder.start(staging)?;
        let mut decoder = match decoding {
            Decoding::StrictUtf8 => None,
            Decoding::Replacing(e) => Some(e.new_decoder_without_bom_handling()),
        };
        let mut text = String::new();
        // Bytes of a UTF-8 sequence split by the chunk's end, kept at the front of `buf`.
        let mut carry = 0;
        // Text taken for UTF-8 may turn out not to be, and then every message about it
        // changes: until the end has been checked, nothing is final.
        let tentative = decoder.is_none();
        let mut evaluating = true;
        let mut syntax = None;
        loop {
            let n = self.read_chunk(carry)?;
            let last = n < self.chunk;
            let filled = carry + n;
            let bytes = &self.buf[..filled];
            let piece = match &mut decoder {
                None => match std::str::from_utf8(bytes) {
                    Ok(s) => {
                        carry = 0;
                        s
                    }
                    Err(e) if e.error_len().is_none() && !last => {
                        let valid = e.valid_up_to();
                        carry = bytes.len() - valid;
                        std::str::from_utf8(&bytes[..valid]).expect("valid up to valid_up_to")
                    }
                    Err(_) => return Ok(Attempt::InvalidUtf8),
                },
                Some(d) => {
                    text.clear();
                    decode_into(d, bytes, &mut text, last);
                    &text
                }
            };
            if evaluating {
                stream.push(piece);
                if fail && let Some(e) = stream.halt_error() {
                    if !tentative {
                        return Ok(Attempt::Syntax(e.clone()));
                    }
                    syntax = Some(e.clone());
                    evaluating = false;
                } else if stream.settled() {
                    if !tentative {
                        break;
                    }
                    evaluating = false;
                } else if !encoder.write(&mut stream, false, staging)? {
                    return Ok(Attempt::Unrepresentable);
                }
            }
            if carry > 0 {
                self.buf.copy_within(filled - carry..filled, 0);
            }
            if last {
                break;
            }
        }
        if let Some(e) = syntax {
            return Ok(Attempt::Syntax(e));
        }
        let end = stream.finish();
        if fail && let Some(e) = end.halt_error {
            return Ok(Attempt::Syntax(e));
        }
        if end.failed.is_none() && !encoder.write(&mut stream, true, staging)? {
            return Ok(Attempt::Unrepresentable);
        }
        Ok(Attempt::Done(end))
    }
}

/// Decodes `bytes` onto `text` (which has room made for it).
fn decode_into(decoder: &mut encoding_rs::Decoder, bytes: &[u8], text: &mut String, last: bool) {
    let room = decoder.max_utf8_buffer_length(bytes.len()).expect("a chunk's decoded length fits in memory");
    text.reserve(room);
    let (result, read, _) = decoder.decode_to_string(bytes, text, last);
    debug_assert!(result == encoding_rs::CoderResult::InputEmpty && read == bytes.len());
}

/// Fills `buf` unless the file ends first; returns how much was read.
fn read_full(file: &mut File, buf: &mut [u8], path: &Path) -> Result<usize, IoError> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).at("read", path),
        }
    }
    Ok(n)
}

/// Encodes output as it comes, in the encoding (and with the BOM) it is to be written in.
struct Encoder {
    encoding: TextEncoding,
    /// For encodings `encoding_rs` writes (windows-1252, Shift_JIS, ...).
    inner: Option<encoding_rs::Encoder>,
    bytes: Vec<u8>,
}

/// Why encoding stopped.
enum Stop {
    Io(IoError),
    Unrepresentable,
}

impl Encoder {
    fn new(encoding: TextEncoding) -> Self {
        let inner = match encoding.charset {
            Charset::Other(e) => Some(e.new_encoder()),
            _ => None,
        };
        Encoder { encoding, inner, bytes: Vec::new() }
    }

    /// Writes the BOM, when the encoding has one and the file had one.
    fn start(&self, staging: &mut StagingFile) -> Result<(), IoError> {
        let bom: &[u8] = match (self.encoding.bom, self.encoding.charset) {
            (true, Charset::Utf8) => b"\xEF\xBB\xBF",
            (true, Charset::Utf16Le) => b"\xFF\xFE",
            (true, Charset::Utf16Be) => b"\xFE\xFF",
            _ => b"",
        };
        staging.write_all(bom)
    }

    /// Writes the stream's output so far (`last`: all of it, the stream being finished);
    /// `false` when a character cannot be represented.
    fn write(
        &mut self,
        stream: &mut TemplateStream<'_>,
        last: bool,
        staging: &mut StagingFile,
    ) -> Result<bool, IoError> {
        let r = stream.drain_output(|s| self.encode(s, false, staging));
        let r = r.and_then(|()| if last { self.encode("", true, staging) } else { Ok(()) });
        match r {
            Ok(()) => Ok(true),
            Err(Stop::Unrepresentable) => Ok(false),
            Err(Stop::Io(e)) => Err(e),
        }
    }

    fn encode(&mut self, s: &str, last: bool, staging: &mut StagingFile) -> Result<(), Stop> {
        match self.encoding.charset {
            Charset::Utf8 => return staging.write_all(s.as_bytes()).map_err(Stop::Io),
            Charset::Ascii if !s.is_ascii() => return Err(Stop::Unrepresentable),
            Charset::Ascii => return staging.write_all(s.as_bytes()).map_err(Stop::Io),
            Charset::Utf16Le => {
                self.bytes.clear();
                self.bytes.extend(s.encode_utf16().flat_map(u16::to_le_bytes));
            }
            Charset::Utf16Be => {
                self.bytes.clear();
                self.bytes.extend(s.encode_utf16().flat_map(u16::to_be_bytes));
            }
            Charset::Other(_) => {
                let encoder = self.inner.as_mut().expect("made for Other encodings");
                let mut src = s;
                loop {
                    self.bytes.resize(64 * 1024, 0);
                    let (result, read, written) =
                        encoder.encode_from_utf8_without_replacement(src, &mut self.bytes, last);
                    staging.write_all(&self.bytes[..written]).map_err(Stop::Io)?;
                    src = &src[read..];
                    match result {
                        encoding_rs::EncoderResult::InputEmpty => return Ok(()),
                        encoding_rs::EncoderResult::OutputFull => {}
                        encoding_rs::EncoderResult::Unmappable(_) => return Err(Stop::Unrepresentable),
                    }
                }
            }
        }
        staging.write_all(&self.bytes).map_err(Stop::Io)
    }
}
