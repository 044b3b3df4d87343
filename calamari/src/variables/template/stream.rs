//! Evaluating a template that arrives in pieces (a file being substituted), with memory
//! bounded by the piece size and the largest single token instead of the whole text.
//!
//! [`TemplateStream`] keeps the text not yet evaluated in a buffer, asks the parser's
//! [`Chunked`] driver for the next top-level token (a token is only handed out once no
//! later text can change how it parses, so one may straddle any number of pieces), and
//! evaluates it into an output buffer the caller drains after each piece. The results are
//! those of [`super::evaluate_checked`] over the whole text, in both modes at once: the
//! tokens are parsed as the resilient mode does, and the first place where the halting mode
//! would have stopped is kept ([`StreamEnd::halt_error`]), since up to there both modes
//! parse and evaluate alike. What can differ is only the work count of an evaluation that
//! reaches [`super::limits::MAXIMUM_WORK`]: plain text split at a piece boundary is two
//! steps instead of one.

use super::ast::Token;
use super::eval::{self, Evaluator, Run, Scope};
use super::parser::{Chunked, Next, Origin, ParseError};
use crate::variables::{Error, VariableDictionary};

/// A template evaluated piece by piece; see the module documentation.
pub(crate) struct TemplateStream<'d> {
    evaluator: Evaluator<'d>,
    scope: Scope<'static>,
    run: Run,
    parser: Chunked,
    /// Text received and not yet consumed; `buf[pos..]` is not yet parsed.
    buf: String,
    origin: Origin,
    pos: usize,
    /// Output not yet drained.
    out: String,
    halt_error: Option<ParseError>,
    failed: Option<Error>,
    /// Whether every token so far gave back its own text.
    same: bool,
    /// After the parser asked for more: parse again once `buf` is this long, so a token
    /// spanning many pieces is parsed a logarithmic number of times, not once per piece.
    wait_for: usize,
}

/// What a whole streamed template came to.
#[derive(Debug)]
pub(crate) struct StreamEnd {
    /// Where the halting mode would have stopped; the output is the resilient mode's.
    pub halt_error: Option<ParseError>,
    /// Evaluation failed (a recursive variable, a limit): the output is to be discarded.
    pub failed: Option<Error>,
    /// The reference's error text for the tokens that could not be evaluated.
    pub missing: Option<String>,
    /// The template evaluated to no value (the `null` filter): the output is empty.
    pub null: bool,
    /// Every token gave back its own text, so the output is the input.
    pub unchanged: bool,
}

impl<'d> TemplateStream<'d> {
    /// A stream over a text of `len` bytes (UTF-8) in all, evaluated against `variables`
    /// (the length bounds the output as [`super::evaluate_checked`] bounds it).
    ///
    /// # Errors
    /// [`Error::InvalidLimit`] for a limit variable that is not a positive number.
    pub(crate) fn new(variables: &'d VariableDictionary, len: usize) -> Result<Self, Error> {
        let evaluator = Evaluator::new(variables.tree(), variables.template_limits()?);
        let max_output = evaluator.limits().max_output(len);
        Ok(TemplateStream {
            evaluator,
            scope: Scope::root(),
            run: Run::new(max_output),
            parser: Chunked::default(),
            buf: String::new(),
            origin: Origin::default(),
            pos: 0,
            out: String::new(),
            halt_error: None,
            failed: None,
            same: true,
            wait_for: 0,
        })
    }

    /// Takes the next piece of the text and evaluates every token it completes.
    pub(crate) fn push(&mut self, text: &str) {
        self.buf.push_str(text);
        if self.buf.len() >= self.wait_for {
            self.advance(false);
        }
    }

    /// Where the halting mode would have stopped, once it is known.
    pub(crate) fn halt_error(&self) -> Option<&ParseError> {
        self.halt_error.as_ref()
    }

    /// Whether the rest of the text can change nothing: evaluation failed and the halting
    /// mode's stop is known.
    pub(crate) fn settled(&self) -> bool {
        self.failed.is_some() && self.halt_error.is_some()
    }

    /// Hands the output so far to `f` (when there is any) and forgets it.
    ///
    /// # Errors
    /// What `f` returns; the output is then kept.
    pub(crate) fn drain_output<E>(&mut self, f: impl FnOnce(&str) -> Result<(), E>) -> Result<(), E> {
        if self.out.is_empty() {
            return Ok(());
        }
        f(&self.out)?;
        self.run.flushed += self.out.len();
        self.out.clear();
        Ok(())
    }

    /// Evaluates what is left, the end of the text having been reached; drain the output
    /// once more afterwards with [`TemplateStream::drain_output`].
    pub(crate) fn finish(&mut self) -> StreamEnd {
        self.advance(true);
        StreamEnd {
            halt_error: self.halt_error.take(),
            failed: self.failed.take(),
            missing: eval::missing_error(&self.run.missing),
            null: self.run.null,
            unchanged: self.same && !self.run.null,
        }
    }

    fn advance(&mut self, last: bool) {
        loop {
            if self.settled() {
                self.pos = self.buf.len();
                break;
            }
            if self.pos >= self.buf.len() {
                break;
            }
            match self.parser.next(&self.buf, self.origin, self.pos, last) {
                Next::More => {
                    self.wait_for = self.buf.len() + (self.buf.len() - self.pos);
                    break;
                }
                Next::Token(t, end) => {
                    self.evaluate(&t, end);
                    self.pos = end;
                }
                Next::Unparseable(error, end) => {
                    if self.halt_error.is_none() {
                        self.halt_error = Some(error);
                    }
                    let t = Token::Text(self.buf[self.pos..end].to_string());
                    self.evaluate(&t, end);
                    self.pos = end;
                }
            }
        }
        if self.pos > 0 {
            self.origin.advance(&self.buf, self.pos);
            self.buf.drain(..self.pos);
            self.wait_for = self.wait_for.saturating_sub(self.pos);
            self.pos = 0;
        }
    }

    /// Evaluates the token `buf[pos..end]` (unless evaluation already failed).
    fn evaluate(&mut self, t: &Token, end: usize) {
        if self.failed.is_some() {
            return;
        }
        let before = self.out.len();
        match self.evaluator.render(std::slice::from_ref(t), &self.scope, &mut self.out, &mut self.run) {
            Ok(()) => self.same = self.same && self.out[before..] == self.buf[self.pos..end],
            Err(mut e) => {
                if let Error::LimitExceeded { at, .. } = &mut e {
                    at.position = Some(self.origin.line_column(&self.buf, self.pos));
                }
                self.failed = Some(e);
                self.out.clear();
                self.same = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ParseMode, evaluate_checked};
    use super::*;
    use proptest::prelude::*;

    fn vars() -> VariableDictionary {
        let mut d = VariableDictionary::new();
        for (k, v) in [
            ("A", "alpha"),
            ("B", "bé 😀"),
            ("Empty", ""),
            ("T", "true"),
            ("F", "False"),
            ("Nested", "<#{A}>"),
            ("L[x].N", "one"),
            ("L[y].N", "two"),
            ("Json", "{\"k\": \"v\", \"n\": [1, 2]}"),
            ("Self", "#{Self}"),
        ] {
            d.set(k, Some(v.to_string()));
        }
        d
    }

    /// What the substitution of a file makes of a whole-text evaluation: the halting
    /// mode's parse error (if any), then the resilient mode's result.
    #[derive(Debug, PartialEq)]
    struct Outcome {
        halt_error: Option<(String, usize, usize)>,
        result: Result<(String, Option<String>), String>,
    }

    fn whole(d: &VariableDictionary, text: &str) -> Outcome {
        let halt = evaluate_checked(d, text, ParseMode::Halt);
        let halt_error = match &halt {
            Ok(Err(e)) => Some((e.message.clone(), e.line, e.column)),
            _ => None,
        };
        let evaluation = match halt {
            Ok(Err(_)) => evaluate_checked(d, text, ParseMode::Resilient).map(|r| r.expect("resilient parses")),
            Ok(Ok(e)) => Ok(e),
            Err(e) => Err(e),
        };
        let result = evaluation.map(|e| (e.output.unwrap_or_default(), e.error)).map_err(|e| e.to_string());
        Outcome { halt_error, result }
    }

    fn streamed(d: &VariableDictionary, text: &str, sizes: &[usize]) -> (Outcome, bool) {
        let mut s = TemplateStream::new(d, text.len()).unwrap();
        let mut out = String::new();
        let mut rest = text;
        let mut i = 0;
        while !rest.is_empty() {
            let mut n = sizes[i % sizes.len()].clamp(1, rest.len());
            while !rest.is_char_boundary(n) {
                n += 1;
            }
            s.push(&rest[..n]);
            s.drain_output(|o| -> Result<(), ()> {
                out.push_str(o);
                Ok(())
            })
            .unwrap();
            rest = &rest[n..];
            i += 1;
        }
        let end = s.finish();
        s.drain_output(|o| -> Result<(), ()> {
            out.push_str(o);
            Ok(())
        })
        .unwrap();
        let halt_error = end.halt_error.map(|e| (e.message, e.line, e.column));
        let result = match end.failed {
            Some(e) => Err(e.to_string()),
            None => Ok((if end.null { String::new() } else { out.clone() }, end.missing)),
        };
        (Outcome { halt_error, result }, end.unchanged)
    }

    fn check(text: &str, sizes: &[usize]) {
        let d = vars();
        let want = whole(&d, text);
        let (got, unchanged) = streamed(&d, text, sizes);
        assert_eq!(got, want, "text {text:?}, pieces of {sizes:?}");
        if unchanged {
            assert_eq!(want.result.as_ref().map(|r| r.0.as_str()), Ok(text), "said unchanged: {text:?}");
        }
    }

    #[test]
    fn tokens_straddling_pieces() {
        let cases = [
            "a=#{A};b=#{B}\r\nc=#{Missing}\n",
            "#{if T}yes #{A}#{else}no#{/if} after",
            "#{each i in L}[#{i.N}]#{/each}.",
            "x ##{A} ###{A} #{A | ToUpper} #{Json.k} #{Nested}",
            "line1\nline2 #{A\nline3 #{B}",
            "😀é#{B}我",
            "#{if T}unclosed #{A}",
            "#{Self} then #{A}",
            "a #{/if x #{A}",
            "#{A | null}",
            "#",
            "ends with #{",
        ];
        for text in cases {
            for sizes in [&[1][..], &[2], &[3], &[5], &[7, 1, 2], &[64]] {
                check(text, sizes);
            }
        }
    }

    #[test]
    fn errors_name_the_line_and_column_of_the_whole_text() {
        let d = vars();
        let text = "first line\nsecond #{A} é #{\"x}\nthird";
        let (got, _) = streamed(&d, text, &[3]);
        assert_eq!(got, whole(&d, text));
        let (message, line, column) = got.halt_error.unwrap();
        assert_eq!((line, column), (2, 17), "{message}");
        assert!(message.starts_with("Parsing failure at line 2, column 17:"), "{message}");
        let mut limited = d.clone();
        limited.set("Octopus.Calamari.Template.MaximumWork", Some("5".into()));
        let text = "a\nb\nc #{A} #{B} #{A} #{B} #{A}";
        let (got, _) = streamed(&limited, text, &[2]);
        assert_eq!(got, whole(&limited, text));
        assert!(got.result.unwrap_err().contains("line 3, column"));
    }

    fn fragment() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "#{",
            "}",
            "#{A}",
            "#{B}",
            "#{Missing}",
            "#{if T}",
            "#{if F}",
            "#{unless A}",
            "#{elseif T}",
            "#{else}",
            "#{/if}",
            "#{/unless}",
            "#{each i in L}",
            "#{i.N}",
            "#{/each}",
            "##{",
            "###{",
            "#",
            "{",
            " ",
            "\n",
            "\r\n",
            "é",
            "我",
            "😀",
            "|",
            " | ToUpper",
            "\"",
            "[",
            "]",
            "#{A | Replace a b}",
            "#{Json.n[1]}",
            "text",
            "#{ A }",
            "#{Nested}",
            "#{calc 1+2}",
            "#{ | null}",
            "#{/if",
            "x",
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
        #[test]
        fn same_as_the_whole_text(
            parts in prop::collection::vec(fragment(), 0..40),
            sizes in prop::collection::vec(1usize..9, 1..4),
        ) {
            check(&parts.concat(), &sizes);
        }
    }
}
