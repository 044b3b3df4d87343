//! Substituting `#{...}` variables inside files, keeping encodings, as the reference's
//! `FileSubstituter` does.
//!
//! Each file is read with the reference's encoding detection (a BOM decides UTF-8 or
//! UTF-16 LE/BE, else strict UTF-8, else windows-1252), evaluated as one Octostache
//! template, and replaced atomically in its original encoding, BOM and permissions (by
//! [`substitute_in_files`], all files together once every one has been evaluated). Line
//! endings are never touched and a file without `#{`, or whose text comes out the same,
//! is not rewritten at all (the reference always rewrites). Output the encoding cannot
//! represent is written as UTF-8 without a BOM, with a warning, by the rule structured
//! configuration shares ([`crate::text_encoding`]).
//!
//! Files are streamed ([`stream`]): read, decoded, evaluated and written a chunk at a
//! time into the staged temp file, so memory does not grow with the file (a 100 MB file
//! is substituted in about 10 MB), with the same output as evaluating the whole text.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

mod stream;

use crate::glob::Glob;
use crate::log::Log;
use crate::variables::VariableDictionary;

/// How many bytes of a file are read at a time: large enough that per-chunk work is
/// noise, small enough that memory stays a few of them (see [`stream`]).
const CHUNK_SIZE: usize = 256 * 1024;

/// Newline-separated globs of the files to substitute.
pub(crate) const TARGET_FILES: &str = "Octopus.Action.SubstituteInFiles.TargetFiles";
/// Output encoding name (any .NET encoding name); invalid → the file's own encoding.
pub(crate) const OUTPUT_ENCODING: &str = "Octopus.Action.SubstituteInFiles.OutputEncoding";
/// `false` silences the warning for a target that matches nothing.
pub(crate) const ENABLE_NO_MATCH_WARNING: &str = "Octopus.Action.SubstituteInFiles.EnableNoMatchWarning";
/// `true` turns a template error in a file into a failure.
pub(crate) const FAIL_ON_SUBSTITUTION_FAILS: &str = "OctopusShouldFailDeploymentOnSubstitutionFails";

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem call failed.
    #[error(transparent)]
    Io(#[from] crate::fs::IoError),
    /// A target pattern is malformed.
    #[error("Invalid substitution target pattern '{target}': {source}")]
    Pattern {
        /// The target as given.
        target: String,
        /// Why the pattern is malformed.
        #[source]
        source: crate::glob::GlobError,
    },
    /// A file is not a valid template (halting parse), with where it failed.
    #[error("Parsing file '{}' with Octostache returned the following error: `{message}` (line {line}, column {column})", path.display())]
    TemplateSyntax {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
        /// 1-based line of the failure.
        line: usize,
        /// 1-based column (in characters) of the failure.
        column: usize,
    },
    /// Evaluating a file left an error (tokens that could not be evaluated, or a parse
    /// failure the resilient parser reported).
    #[error("Parsing file '{}' with Octostache returned the following error: `{message}`", path.display())]
    Template {
        /// The file.
        path: PathBuf,
        /// The evaluator's message.
        message: String,
    },
    /// Evaluating a file went past a template limit (value size or work); the file is
    /// left as it was.
    #[error("Could not substitute variables in '{}'", path.display())]
    Limit {
        /// The file.
        path: PathBuf,
        /// The limit that was exceeded, and where.
        #[source]
        source: crate::variables::Error,
    },
    /// A variable could not be evaluated (recursion → exit 101).
    #[error(transparent)]
    Variables(#[from] crate::variables::Error),
}

/// A limit exceeded while evaluating `path` names the file.
fn in_file(path: &Path, e: crate::variables::Error) -> Error {
    match e {
        e @ crate::variables::Error::LimitExceeded { .. } => Error::Limit { path: path.to_path_buf(), source: e },
        e => Error::Variables(e),
    }
}

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileOutcome {
    /// The file had no `#{` and was left untouched.
    NoTokens,
    /// Evaluation gave the same bytes; the file was left untouched.
    Unchanged,
    /// The file was rewritten.
    Substituted,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubstitutionSummary {
    /// Every file matched by a target, in the order processed.
    pub files: Vec<PathBuf>,
    /// The files that were rewritten.
    pub substituted: Vec<PathBuf>,
    /// Targets that matched no file.
    pub unmatched_targets: Vec<String>,
}

/// Substitutes variables in every file under `dir` matched by one of `targets` (globs
/// relative to `dir`, also tried under each `Octopus.Action.AdditionalPaths`).
///
/// All or nothing (the reference rewrites each file as it goes): the new contents are
/// staged beside the files and put in place once every file has been evaluated.
///
/// # Errors
/// An invalid glob, an unreadable/unwritable file, a template error with
/// `OctopusShouldFailDeploymentOnSubstitutionFails`, or a recursive variable.
pub fn substitute_in_files(
    dir: &Path,
    targets: &[String],
    variables: &VariableDictionary,
    log: &Log,
) -> Result<SubstitutionSummary, Error> {
    let mut summary = SubstitutionSummary::default();
    let warn_no_match = variables.get_flag(ENABLE_NO_MATCH_WARNING, true)?;
    let roots = crate::variables::target_roots(dir, variables)?;
    let mut seen = HashSet::new();
    for target in targets.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        let glob = Glob::new(target).map_err(|source| Error::Pattern { target: target.to_string(), source })?;
        let mut matched = false;
        for root in &roots {
            for file in glob.find_files(root) {
                matched = true;
                if seen.insert(file.clone()) {
                    summary.files.push(file);
                }
            }
        }
        if !matched {
            if warn_no_match {
                log.warn(format!(
                    "No files were found in {} that match the substitution target pattern '{target}'",
                    dir.display()
                ));
            }
            summary.unmatched_targets.push(target.to_string());
        }
    }
    for stale in crate::fs::remove_stale_temp_files_beside(&summary.files)? {
        log.verbose(format!("Removed '{}', left by an interrupted substitution", stale.display()));
    }
    // All or nothing: every file is evaluated (its new contents streamed into a temp file
    // beside it) before any is replaced, so a template error in the last file leaves the
    // first as it was.
    let mut staged = crate::fs::StagedReplacements::new();
    for file in &summary.files {
        if stream::substitute(file, variables, log, CHUNK_SIZE, &mut staged)? == FileOutcome::Substituted {
            summary.substituted.push(file.clone());
        }
    }
    staged.commit()?;
    Ok(summary)
}

/// Substitutes variables in one file (resilient mode), keeping its encoding, BOM,
/// line endings and permissions.
///
/// # Errors
/// Unreadable/unwritable file; with `OctopusShouldFailDeploymentOnSubstitutionFails`
/// a template error (the file is then left as it was); a recursive variable.
pub(crate) fn substitute_file(path: &Path, variables: &VariableDictionary, log: &Log) -> Result<FileOutcome, Error> {
    let mut staged = crate::fs::StagedReplacements::new();
    let outcome = stream::substitute(path, variables, log, CHUNK_SIZE, &mut staged)?;
    staged.commit()?;
    Ok(outcome)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;
    use crate::text_encoding::{self, TextEncoding};
    use crate::variables::template::{self, ParseMode};
    use proptest::prelude::*;

    /// The whole-text substitution this module did before it streamed, kept as the oracle
    /// the streamed files are compared with: the file's new bytes (`None`: not rewritten).
    fn in_memory(path: &Path, variables: &VariableDictionary, log: &Log) -> Result<Option<Vec<u8>>, Error> {
        let bytes = crate::fs::read(path)?;
        let utf16 = text_encoding::is_utf16(&bytes);
        if !utf16 && memchr::memmem::find(&bytes, b"#{").is_none() {
            log.verbose(format!("No variables to substitute in '{}'", path.display()));
            return Ok(None);
        }
        let (text, encoding) = text_encoding::decode(&bytes);
        if utf16 && memchr::memmem::find(text.as_bytes(), b"#{").is_none() {
            log.verbose(format!("No variables to substitute in '{}'", path.display()));
            return Ok(None);
        }
        log.info(format!("Performing variable substitution on '{}'", path.display()));
        let fail = variables.get_flag(FAIL_ON_SUBSTITUTION_FAILS, false)?;
        let evaluation =
            match template::evaluate_checked(variables, &text, ParseMode::Halt).map_err(|e| in_file(path, e))? {
                Ok(e) => e,
                Err(e) => {
                    let error = Error::TemplateSyntax {
                        path: path.to_path_buf(),
                        message: e.message,
                        line: e.line,
                        column: e.column,
                    };
                    if fail {
                        return Err(error);
                    }
                    log.verbose(error.to_string());
                    template::evaluate(variables, &text, ParseMode::Resilient).map_err(|e| in_file(path, e))?
                }
            };
        if let Some(error) = &evaluation.error {
            let error = Error::Template { path: path.to_path_buf(), message: error.clone() };
            if fail {
                return Err(error);
            }
            log.verbose(error.to_string());
        }
        let output = evaluation.output.unwrap_or_default();
        let mut out_encoding = encoding;
        if let Some(name) = variables.get(OUTPUT_ENCODING)?.filter(|n| !n.trim().is_empty()) {
            match TextEncoding::by_name(&name, encoding.bom) {
                Some(e) => out_encoding = e,
                None => log.verbose(format!("Unknown output encoding '{name}'; keeping the file's own encoding")),
            }
        }
        if out_encoding == encoding && output == text {
            return Ok(None);
        }
        let encoded = out_encoding.encode_or_utf8(&output);
        if encoded.fell_back_to_utf8 {
            log.warn(text_encoding::unrepresentable_warning(path));
        }
        Ok(Some(encoded.bytes))
    }

    /// Streams `bytes` as a file in chunks of `chunk` bytes and substitutes it the whole-text
    /// way too; asserts the same outcome, bytes, messages and error. Returns the new bytes.
    fn same_as_in_memory(bytes: &[u8], variables: &VariableDictionary, chunk: usize) -> Option<Vec<u8>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        std::fs::write(&path, bytes).unwrap();
        let (want_log, want_out, _) = Log::capture();
        let want = in_memory(&path, variables, &want_log).map_err(|e| e.to_string());
        let (log, out, _) = Log::capture();
        let mut staged = crate::fs::StagedReplacements::new();
        let got = stream::substitute(&path, variables, &log, chunk, &mut staged).map_err(|e| e.to_string());
        assert_eq!(out.contents(), want_out.contents(), "messages for {bytes:?} in chunks of {chunk}");
        let got = got.map(|outcome| {
            assert_eq!(staged.is_empty(), outcome != FileOutcome::Substituted);
            staged.staged(&path).map(|p| std::fs::read(p).unwrap())
        });
        assert_eq!(got, want, "{bytes:?} in chunks of {chunk}");
        drop(staged);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temp file left behind");
        got.ok().flatten()
    }

    fn utf16(bom: bool, le: bool, text: &str) -> Vec<u8> {
        let mut out = match (bom, le) {
            (false, _) => vec![],
            (true, true) => vec![0xFF, 0xFE],
            (true, false) => vec![0xFE, 0xFF],
        };
        for u in text.encode_utf16() {
            out.extend(if le { u.to_le_bytes() } else { u.to_be_bytes() });
        }
        out
    }

    #[test]
    fn tokens_straddle_chunks_and_encodings_survive() {
        let mut d = vars(&[("Name", "Grüße 😀"), ("Port", "8080"), ("Emoji", "😀")]);
        let text = "port=#{Port}\r\nname=#{Name}\r\n#{if Port}on#{/if}\n😀 end #{Missing}";
        let want = "port=8080\r\nname=Grüße 😀\r\non\n😀 end #{Missing}";
        for chunk in [1, 2, 3, 5, 8, 13, 64] {
            // UTF-8 without and with a BOM; CRLF kept.
            assert_eq!(same_as_in_memory(text.as_bytes(), &d, chunk).unwrap(), want.as_bytes());
            let bom = [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat();
            let want_bom = [b"\xEF\xBB\xBF".as_slice(), want.as_bytes()].concat();
            assert_eq!(same_as_in_memory(&bom, &d, chunk).unwrap(), want_bom);
            // UTF-16 both ways, the 😀 surrogate pairs split by odd chunks.
            for le in [true, false] {
                assert_eq!(same_as_in_memory(&utf16(true, le, text), &d, chunk).unwrap(), utf16(true, le, want));
            }
        }
        // windows-1252: invalid UTF-8 only in the last chunk, so the stream starts again.
        let mut w1252 = b"#{Port} ".repeat(40);
        w1252.extend_from_slice(b"caf\xE9\r\n");
        let mut want = b"8080 ".repeat(40);
        want.extend_from_slice(b"caf\xE9\r\n");
        d.set("Port", Some("8080".into()));
        assert_eq!(same_as_in_memory(&w1252, &d, 7).unwrap(), want);
        // A BOM with invalid bytes after it: U+FFFD, as the whole-text decoding gives.
        same_as_in_memory(b"\xEF\xBB\xBF#{Port} \xFF\xC3 #{Port}", &d, 3);
        // An output encoding that cannot hold the value: UTF-8, found after the first chunk.
        d.set(OUTPUT_ENCODING, Some("windows-1252".into()));
        let text = format!("{}#{{Emoji}}", "#{Port}\n".repeat(20));
        let out = same_as_in_memory(text.as_bytes(), &d, 4).unwrap();
        assert!(String::from_utf8(out).unwrap().ends_with("8080\n😀"));
    }

    #[test]
    fn unchanged_and_untouched_files_are_not_rewritten() {
        let d = vars(&[("A", "1")]);
        for chunk in [1, 4, 1024] {
            assert_eq!(same_as_in_memory(b"no tokens, # and { apart", &d, chunk), None);
            assert_eq!(same_as_in_memory(b"only #{Missing} and #{Unknown | ToUpper}", &d, chunk), None);
            assert_eq!(same_as_in_memory(&utf16(true, true, "a # { b"), &d, chunk), None);
        }
    }

    #[test]
    fn errors_and_null_as_the_whole_text() {
        let mut d = vars(&[("A", "1"), ("Loop", "#{Loop}")]);
        let cases: [&[u8]; 5] = [
            b"x=#{A}\ny=#{\"\nz=#{A}",
            b"x=#{A}\n#{if A}never closed",
            b"#{A | null} and #{A}",
            b"\xEF\xBB\xBF#{A | null}",
            b"#{Loop} #{\"",
        ];
        for fail in ["false", "true"] {
            d.set(FAIL_ON_SUBSTITUTION_FAILS, Some(fail.into()));
            for bytes in cases {
                for chunk in [1, 3, 64] {
                    same_as_in_memory(bytes, &d, chunk);
                }
            }
        }
    }

    #[test]
    fn chunks_bound_memory_not_the_file() {
        // A 4 MB file in 64 KiB chunks: the same bytes as the whole-text path.
        let d = vars(&[("Port", "8080")]);
        let text = "line connection=#{Port};timeout=30\r\n".repeat(110_000);
        let out = same_as_in_memory(text.as_bytes(), &d, 64 * 1024).unwrap();
        assert_eq!(out.len(), text.len() - 110_000 * 3);
    }

    fn fragment() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "#{",
            "}",
            "#{A}",
            "#{B}",
            "#{Missing}",
            "#{if A}",
            "#{else}",
            "#{/if}",
            "#{each i in L}",
            "#{i}",
            "#{/each}",
            "##{",
            "###{",
            "#",
            "{",
            " ",
            "\n",
            "\r\n",
            "é",
            "ÿ",
            "我",
            "😀",
            "#{A | ToUpper}",
            "#{\"",
            "text",
            "#{ | null}",
            "#{/if",
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
        #[test]
        fn streamed_files_match_the_whole_text(
            parts in prop::collection::vec(fragment(), 0..30),
            form in 0usize..6,
            output in prop::sample::select(vec!["", "utf-8", "windows-1252", "us-ascii", "utf-16", "nonsense"]),
            fail in any::<bool>(),
            chunk in 1usize..9,
        ) {
            let mut d = vars(&[("A", "a😀"), ("B", "é"), ("L", "x,y")]);
            d.set(OUTPUT_ENCODING, Some(output.into()));
            d.set(FAIL_ON_SUBSTITUTION_FAILS, Some(fail.to_string()));
            let text = parts.concat();
            let bytes = match form {
                0 => text.into_bytes(),
                1 => [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat(),
                2 => utf16(true, true, &text),
                3 => utf16(true, false, &text),
                4 => encoding_rs::WINDOWS_1252.encode(&text).0.into_owned(),
                _ => [text.as_bytes(), b"\xFF"].concat(),
            };
            same_as_in_memory(&bytes, &d, chunk);
        }
    }

    fn vars(pairs: &[(&str, &str)]) -> VariableDictionary {
        let mut d = VariableDictionary::new();
        for (k, v) in pairs {
            d.set(*k, Some(v.to_string()));
        }
        d
    }

    #[test]
    fn keeps_encodings_and_line_endings() {
        let dir = tempfile::tempdir().unwrap();
        let d = vars(&[("Name", "Grüße")]);
        let (log, _, _) = Log::capture();
        let utf16: Vec<u8> =
            b"\xFF\xFE".iter().copied().chain("a=#{Name}\r\n".encode_utf16().flat_map(u16::to_le_bytes)).collect();
        let p16 = dir.path().join("u16.txt");
        std::fs::write(&p16, &utf16).unwrap();
        assert_eq!(substitute_file(&p16, &d, &log).unwrap(), FileOutcome::Substituted);
        let want: Vec<u8> =
            b"\xFF\xFE".iter().copied().chain("a=Grüße\r\n".encode_utf16().flat_map(u16::to_le_bytes)).collect();
        assert_eq!(std::fs::read(&p16).unwrap(), want);

        let p1252 = dir.path().join("w.txt");
        std::fs::write(&p1252, b"caf\xE9 #{Name}\n").unwrap();
        substitute_file(&p1252, &d, &log).unwrap();
        assert_eq!(std::fs::read(&p1252).unwrap(), b"caf\xE9 Gr\xFC\xDFe\n");

        let bom = dir.path().join("bom.txt");
        std::fs::write(&bom, b"\xEF\xBB\xBF#{Name}\r\nx").unwrap();
        substitute_file(&bom, &d, &log).unwrap();
        assert_eq!(std::fs::read(&bom).unwrap(), "\u{feff}Grüße\r\nx".as_bytes());
    }

    #[test]
    fn untouched_without_tokens_and_resilient_with_errors() {
        let dir = tempfile::tempdir().unwrap();
        let d = vars(&[("A", "1")]);
        let (log, out, _) = Log::capture();
        let plain = dir.path().join("plain.txt");
        std::fs::write(&plain, b"no tokens ## here").unwrap();
        assert_eq!(substitute_file(&plain, &d, &log).unwrap(), FileOutcome::NoTokens);
        let js = dir.path().join("a.js");
        std::fs::write(&js, b"x=\"#{A}\";y=\"#{\"").unwrap();
        substitute_file(&js, &d, &log).unwrap();
        assert_eq!(std::fs::read_to_string(&js).unwrap(), "x=\"1\";y=\"#{\"");
        assert!(out.contents().contains("line 1, column"), "{}", out.contents());

        let mut strict = d.clone();
        strict.set(FAIL_ON_SUBSTITUTION_FAILS, Some("true".into()));
        std::fs::write(&js, b"x=\"#{A}\";y=\"#{\"").unwrap();
        assert!(substitute_file(&js, &strict, &log).is_err());
        assert_eq!(std::fs::read_to_string(&js).unwrap(), "x=\"#{A}\";y=\"#{\"");
    }

    #[test]
    fn unrepresentable_output_falls_back_to_utf8_without_bom() {
        // The reference's writer falls back to a BOM-less UTF-8 encoder, whatever the input had.
        let dir = tempfile::tempdir().unwrap();
        let mut d = vars(&[("A", "我")]);
        d.set(OUTPUT_ENCODING, Some("windows-1252".into()));
        let (log, out, _) = Log::capture();
        let p = dir.path().join("bom.txt");
        std::fs::write(&p, b"\xEF\xBB\xBF#{A}").unwrap();
        substitute_file(&p, &d, &log).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), "我".as_bytes());
        assert!(out.contents().contains("cannot be represented"));
    }

    #[test]
    fn unrepresentable_output_falls_back_to_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = vars(&[("A", "我")]);
        d.set(OUTPUT_ENCODING, Some("windows-1252".into()));
        let (log, out, _) = Log::capture();
        let p = dir.path().join("x.txt");
        std::fs::write(&p, b"#{A}").unwrap();
        substitute_file(&p, &d, &log).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "我");
        assert!(out.contents().contains("cannot be represented"));
    }
}
