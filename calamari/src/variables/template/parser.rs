//! A hand-written backtracking parser for the Octostache grammar (`docs/behaviour.md`,
//! "Templates"). It records the furthest position at which anything failed, which is
//! where a parse error is reported and what the resilient mode keeps as literal text.
//!
//! The parser also notes whether anything it decided depended on the end of the text it
//! was given (a lookup at or past the last byte). That is what lets [`Chunked`] parse a
//! text that arrives in pieces (a file being substituted): a token whose parse touched the
//! end of the buffer is parsed again once more text has arrived, every other token is
//! final, so the tokens come out exactly as [`for_each_token`] gives them for the whole text.

use std::cell::Cell;

use super::ast::{
    CalcExpr, Condition, Conditional, Expression, Filter, FilterOption, Path, Repetition, Step, Template, Token,
};

/// Deepest nesting of conditionals, loops and nested filter tokens accepted.
pub(crate) const MAX_NESTING: usize = 256;

/// Most operands accepted in one `#{calc}` expression.
pub(crate) const MAX_CALC_OPERANDS: usize = 1000;

/// Why a template could not be parsed, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Human readable message including line and column.
    pub message: String,
    /// 1-based line of the failure.
    pub line: usize,
    /// 1-based column (in characters) of the failure.
    pub column: usize,
    /// Byte offset of the failure.
    pub offset: usize,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parses a whole template: every `#{` must start a valid token.
///
/// # Errors
/// [`ParseError`] with the line and column of the failure.
pub(crate) fn parse(text: &str) -> Result<Template, ParseError> {
    let mut p = Parser::new(text);
    let (tokens, end) = p.tokens(0, false);
    if end < text.len() {
        p.furthest = end;
        let _ = p.token(end);
        return Err(p.error());
    }
    Ok(Template { tokens })
}

/// Parses in the resilient mode: where no token can be parsed, the text the failed
/// attempt consumed is kept as literal text and parsing continues after it.
pub(crate) fn parse_resilient(text: &str) -> Template {
    let mut p = Parser::new(text);
    let mut tokens: Vec<Token> = Vec::new();
    let mut pos = 0;
    while pos < text.len() {
        let (mut ts, end) = p.tokens(pos, false);
        append(&mut tokens, ts.drain(..));
        pos = end;
        if pos >= text.len() {
            break;
        }
        p.furthest = pos;
        p.too_deep = false;
        let _ = p.token(pos);
        let mut stop = p.furthest.max(pos + 2).min(text.len());
        while !text.is_char_boundary(stop) {
            stop += 1;
        }
        append(&mut tokens, std::iter::once(Token::Text(text[pos..stop].to_string())));
        pos = stop;
    }
    Template { tokens }
}

/// Where a buffer holding part of a longer text starts in that text, for the line, column
/// and offset of a [`ParseError`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Origin {
    /// Byte offset of the buffer's first byte.
    pub offset: usize,
    /// Newlines before the buffer.
    pub lines: usize,
    /// Characters between the last newline before the buffer and the buffer.
    pub column: usize,
}

impl Origin {
    /// 1-based line and column (in characters) of byte `offset` of `buf`, a buffer that
    /// starts at this origin; `offset` must be a character boundary.
    pub(crate) fn line_column(&self, buf: &str, offset: usize) -> (usize, usize) {
        let before = &buf.as_bytes()[..offset];
        match memchr::memrchr(b'\n', before) {
            Some(last) => {
                let newlines = before.iter().filter(|&&b| b == b'\n').count();
                (self.lines + newlines + 1, buf[last + 1..offset].chars().count() + 1)
            }
            None => (self.lines + 1, self.column + buf[..offset].chars().count() + 1),
        }
    }

    /// The origin of `buf[consumed..]`.
    pub(crate) fn advance(&mut self, buf: &str, consumed: usize) {
        let before = &buf.as_bytes()[..consumed];
        match memchr::memrchr(b'\n', before) {
            Some(last) => {
                self.lines += before.iter().filter(|&&b| b == b'\n').count();
                self.column = buf[last + 1..consumed].chars().count();
            }
            None => self.column += buf[..consumed].chars().count(),
        }
        self.offset += consumed;
    }
}

/// What [`Chunked::next`] found at a position.
#[derive(Debug)]
pub(crate) enum Next {
    /// A token and where it ends.
    Token(Token, usize),
    /// No token starts here: the error halting mode reports, and where the resilient mode
    /// goes on (the fragment up to there is kept as literal text).
    Unparseable(ParseError, usize),
    /// The answer depends on text after the buffer's end: call again with more.
    More,
}

/// Parses a text that arrives in pieces, one top-level token at a time, with the same
/// results as [`for_each_token`] over the whole text. The caller keeps the text not yet
/// consumed in a buffer, appends to it, and asks for the token at a position; a token is
/// only given once nothing after the buffer can change it. Tokens are bounded only by the
/// text: an `#{if}` or `#{each}` holds its whole body, so the buffer grows to hold it.
#[derive(Debug, Default)]
pub(crate) struct Chunked {
    /// The parser's `unclosed` (absolute offset) and `too_deep`, carried from one token to
    /// the next as [`for_each_token`]'s single parser carries them.
    unclosed: Option<(usize, &'static str)>,
    too_deep: bool,
}

/// Bytes of look-ahead that plain text needs to be split safely (`###{` is four bytes).
const TEXT_LOOKAHEAD: usize = 4;

impl Chunked {
    /// The token at `pos` of `buf` (which starts at `origin`); `last` when the buffer runs
    /// to the end of the text.
    pub(crate) fn next(&mut self, buf: &str, origin: Origin, pos: usize, last: bool) -> Next {
        if !last && pos + TEXT_LOOKAHEAD >= buf.len() {
            return Next::More;
        }
        let mut p = Parser::new(buf);
        p.origin = origin;
        p.unclosed = self.unclosed.and_then(|(at, e)| at.checked_sub(origin.offset).map(|at| (at, e)));
        p.too_deep = self.too_deep;
        p.furthest = pos;
        let found = if p.starts(pos, "#{") {
            p.hash_token(pos)
        } else if last {
            p.text(pos, buf.len())
        } else {
            // Plain text is split where no escape (`##{`, `###{`) can straddle the end.
            let mut stop = buf.len() - TEXT_LOOKAHEAD;
            while !buf.is_char_boundary(stop) {
                stop -= 1;
            }
            if stop <= pos {
                return Next::More;
            }
            p.text(pos, stop)
        };
        // The error is made before deciding: what it says of the end counts too.
        let error = if found.is_none() { Some(p.error()) } else { None };
        if !last && p.hit_end.get() {
            return Next::More;
        }
        self.unclosed = p.unclosed.map(|(at, e)| (at + origin.offset, e));
        self.too_deep = p.too_deep;
        match (found, error) {
            (Some((t, q)), _) => Next::Token(t, q),
            (None, error) => {
                let mut stop = p.furthest.max(pos + 2).min(buf.len());
                while !buf.is_char_boundary(stop) {
                    stop += 1;
                }
                Next::Unparseable(error.expect("made above when no token was found"), stop)
            }
        }
    }
}

/// Parses `text` one top-level token at a time, handing each (with its byte offset) to
/// `f` as soon as it is parsed (so a large text never has its whole syntax tree in memory). Halting mode
/// stops at the first `#{` that starts no valid token and returns its [`ParseError`];
/// resilient mode hands the unparseable fragment over as literal text and goes on.
pub(crate) fn for_each_token<E>(
    text: &str,
    resilient: bool,
    mut f: impl FnMut(usize, Token) -> Result<(), E>,
) -> Result<Result<(), ParseError>, E> {
    let mut p = Parser::new(text);
    let mut pos = 0;
    while pos < text.len() {
        p.furthest = pos;
        if let Some((t, q)) = p.token(pos) {
            f(pos, t)?;
            pos = q;
            continue;
        }
        if !resilient {
            return Ok(Err(p.error()));
        }
        let mut stop = p.furthest.max(pos + 2).min(text.len());
        while !text.is_char_boundary(stop) {
            stop += 1;
        }
        f(pos, Token::Text(text[pos..stop].to_string()))?;
        pos = stop;
    }
    Ok(Ok(()))
}

fn append(tokens: &mut Vec<Token>, new: impl Iterator<Item = Token>) {
    for t in new {
        if let (Some(Token::Text(prev)), Token::Text(t)) = (tokens.last_mut(), &t) {
            prev.push_str(t);
            continue;
        }
        tokens.push(t);
    }
}

/// What a closing tag missing its `}` expected.
fn closing_tag_not_closed(open: &str) -> &'static str {
    match open {
        "#{/if" => "'}': the '#{/if' is not closed",
        "#{/unless" => "'}': the '#{/unless' is not closed",
        "#{/each" => "'}': the '#{/each' is not closed",
        _ => "'}'",
    }
}

/// Parses a variable name as a path (how names are arranged in the lookup tree).
pub(crate) fn parse_name(name: &str) -> Option<Path> {
    let mut p = Parser::new(name);
    let start = p.skip_ws(0);
    let (path, end) = p.path(start)?;
    if p.skip_ws(end) == name.len() { Some(path) } else { None }
}

pub(crate) struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    furthest: usize,
    expected: &'static str,
    depth: usize,
    too_deep: bool,
    calc_operands: usize,
    /// The furthest closing tag found without its `}` (`#{/if`), remembered across a
    /// re-parse: when parsing fails, that is the likeliest reason, whatever alternative
    /// reading of the `#{` got furthest on the second pass.
    unclosed: Option<(usize, &'static str)>,
    /// Set when a decision looked at (or for) a byte at or past the end of `s`: with more
    /// text after it, the parse could come out differently ([`Chunked`]).
    hit_end: Cell<bool>,
    /// Where `s` starts in the whole text, for error positions.
    origin: Origin,
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c.is_whitespace() || matches!(c, '_' | '-' | ':' | '/' | '~' | '(' | ')' | '@')
}

fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && is_ident_char(c)
}

impl<'a> Parser<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        Parser {
            s,
            b: s.as_bytes(),
            furthest: 0,
            expected: "a token",
            depth: 0,
            too_deep: false,
            calc_operands: 0,
            unclosed: None,
            hit_end: Cell::new(false),
            origin: Origin::default(),
        }
    }

    /// Notes that a decision depended on where the text ends.
    #[inline]
    fn touch_end(&self) {
        self.hit_end.set(true);
    }

    /// The byte at `pos`, noting a look past the end.
    #[inline]
    fn byte(&self, pos: usize) -> Option<u8> {
        let b = self.b.get(pos).copied();
        if b.is_none() {
            self.touch_end();
        }
        b
    }

    fn fail<T>(&mut self, pos: usize, expected: &'static str) -> Option<T> {
        if pos >= self.furthest {
            self.furthest = pos;
            self.expected = expected;
        }
        None
    }

    fn error(&self) -> ParseError {
        let (furthest, expected) = match self.unclosed {
            Some((at, expected)) if at > self.furthest => (at, expected),
            _ => (self.furthest, self.expected),
        };
        let offset = furthest.min(self.s.len());
        let (line, column) = self.origin.line_column(self.s, offset);
        let found = match self.s[offset..].chars().next() {
            None => {
                self.touch_end();
                "end of input".to_string()
            }
            Some(c) => format!("'{}'", c.escape_debug()),
        };
        let message = if self.too_deep {
            format!(
                "Parsing failure at line {line}, column {column}: the template nests conditionals, loops or filters more than {MAX_NESTING} levels deep"
            )
        } else {
            format!("Parsing failure at line {line}, column {column}: unexpected {found}; expected {expected}")
        };
        ParseError { message, line, column, offset: self.origin.offset + offset }
    }

    fn char_at(&self, pos: usize) -> Option<char> {
        if pos >= self.b.len() {
            self.touch_end();
        }
        self.s.get(pos..).and_then(|r| r.chars().next())
    }

    fn starts(&self, pos: usize, lit: &str) -> bool {
        if pos + lit.len() > self.b.len() {
            self.touch_end();
        }
        self.b.get(pos..).is_some_and(|r| r.starts_with(lit.as_bytes()))
    }

    fn starts_ci(&self, pos: usize, lit: &str) -> bool {
        if pos + lit.len() > self.b.len() {
            self.touch_end();
        }
        self.b.get(pos..pos + lit.len()).is_some_and(|r| r.eq_ignore_ascii_case(lit.as_bytes()))
    }

    fn skip_ws(&self, mut pos: usize) -> usize {
        while let Some(c) = self.char_at(pos) {
            if !c.is_whitespace() {
                break;
            }
            pos += c.len_utf8();
        }
        pos
    }

    fn ws1(&mut self, pos: usize) -> Option<usize> {
        let q = self.skip_ws(pos);
        if q == pos { self.fail(pos, "whitespace") } else { Some(q) }
    }

    fn expect(&mut self, pos: usize, lit: &'static str) -> Option<usize> {
        if self.starts(pos, lit) {
            return Some(pos + lit.len());
        }
        // A closing tag written without its `}` (`#{/if`): say so at the place the `}` is
        // missing, which is further on than any other reading of the `#{` gets.
        if let Some(open) = lit.strip_suffix('}').filter(|open| open.starts_with("#{/"))
            && self.starts(pos, open)
        {
            let at = pos + open.len();
            if self.unclosed.is_none_or(|(furthest, _)| at > furthest) {
                self.unclosed = Some((at, closing_tag_not_closed(open)));
            }
            return self.fail(at, closing_tag_not_closed(open));
        }
        self.fail(pos, lit)
    }

    /// Tokens until one cannot be parsed (or, in a body, until `#{else}`/`#{elseif`).
    pub(crate) fn tokens(&mut self, mut pos: usize, in_body: bool) -> (Vec<Token>, usize) {
        let mut out = Vec::new();
        loop {
            if pos >= self.s.len() {
                self.touch_end();
                break;
            }
            if in_body && (self.starts(pos, "#{else}") || self.is_elseif(pos)) {
                break;
            }
            match self.token(pos) {
                Some((t, q)) => {
                    out.push(t);
                    pos = q;
                }
                None => break,
            }
        }
        (out, pos)
    }

    fn is_elseif(&self, pos: usize) -> bool {
        self.starts(pos, "#{elseif") && self.char_at(pos + 8).is_some_and(char::is_whitespace)
    }

    fn token(&mut self, pos: usize) -> Option<(Token, usize)> {
        if self.starts(pos, "#{") { self.hash_token(pos) } else { self.text(pos, self.s.len()) }
    }

    /// A token starting at `#{`: conditional, calculation, repetition or substitution.
    fn hash_token(&mut self, pos: usize) -> Option<(Token, usize)> {
        if self.depth >= MAX_NESTING {
            self.too_deep = true;
            return self.fail(pos, "less nesting");
        }
        self.depth += 1;
        let r = stacker::maybe_grow(64 * 1024, 1024 * 1024, || {
            self.conditional(pos)
                .or_else(|| self.calculation(pos))
                .or_else(|| self.repetition(pos))
                .or_else(|| self.substitution(pos))
        });
        self.depth -= 1;
        r
    }

    /// Plain text from `pos`, unescaping `##{`, up to the next `#{` that starts a token, or
    /// up to `stop` (a character boundary, at least four bytes before the end unless it is
    /// the end): a split there gives the same text as going on.
    fn text(&mut self, pos: usize, stop: usize) -> Option<(Token, usize)> {
        let len = self.b.len();
        let mut out = String::new();
        let mut i = pos;
        while i < stop {
            let Some(off) = memchr::memchr(b'#', &self.b[i..stop]) else {
                if stop == len {
                    self.touch_end();
                }
                out.push_str(&self.s[i..stop]);
                i = stop;
                break;
            };
            out.push_str(&self.s[i..i + off]);
            i += off;
            if i + 1 == len {
                self.touch_end();
                out.push('#');
                i += 1;
            } else if self.starts(i, "###{") && {
                if i + 4 >= len {
                    self.touch_end();
                }
                i + 4 < len
            } {
                out.push('#');
                i += 2;
            } else if self.starts(i, "##{") {
                out.push_str("#{");
                i += 3;
            } else if self.b[i + 1] != b'{' {
                let c = self.char_at(i + 1).unwrap_or('#');
                out.push('#');
                out.push(c);
                i += 1 + c.len_utf8();
            } else {
                break;
            }
        }
        if i == pos { self.fail(pos, "a valid token after '#{'") } else { Some((Token::Text(out), i)) }
    }

    /// `#{` + optional whitespace + keyword + at least one whitespace.
    fn keyword(&mut self, pos: usize, kw: &'static str) -> Option<usize> {
        let p = self.expect(pos, "#{")?;
        let p = self.skip_ws(p);
        if !self.starts_ci(p, kw) {
            return self.fail(p, kw);
        }
        self.ws1(p + kw.len())
    }

    fn close(&mut self, pos: usize) -> Option<usize> {
        let p = self.skip_ws(pos);
        self.expect(p, "}")
    }

    fn conditional(&mut self, pos: usize) -> Option<(Token, usize)> {
        let (unless, p) = match self.keyword(pos, "if") {
            Some(p) => (false, p),
            None => (true, self.keyword(pos, "unless")?),
        };
        let (condition, p) = self.condition(p)?;
        let p = self.close(p)?;
        let (truthy, p) = self.tokens(p, true);
        if unless {
            let (falsy, p) = if self.starts(p, "#{else}") { self.tokens(p + 7, true) } else { (Vec::new(), p) };
            let p = self.expect(p, "#{/unless}")?;
            let c = Conditional { condition, truthy: falsy, falsy: truthy };
            return Some((Token::Conditional(Box::new(c)), p));
        }
        let (falsy, p) = self.if_tail(p)?;
        Some((Token::Conditional(Box::new(Conditional { condition, truthy, falsy })), p))
    }

    fn if_tail(&mut self, p: usize) -> Option<(Vec<Token>, usize)> {
        if self.is_elseif(p) {
            if self.depth >= MAX_NESTING {
                self.too_deep = true;
                return self.fail(p, "less nesting");
            }
            self.depth += 1;
            let r = stacker::maybe_grow(64 * 1024, 1024 * 1024, || {
                let q = self.skip_ws(p + 8);
                let (condition, q) = self.condition(q)?;
                let q = self.close(q)?;
                let (truthy, q) = self.tokens(q, true);
                let (falsy, q) = self.if_tail(q)?;
                Some((vec![Token::Conditional(Box::new(Conditional { condition, truthy, falsy }))], q))
            });
            self.depth -= 1;
            return r;
        }
        if self.starts(p, "#{else}") {
            let (falsy, q) = self.tokens(p + 7, true);
            let q = self.expect(q, "#{/if}")?;
            return Some((falsy, q));
        }
        let q = self.expect(p, "#{/if}")?;
        Some((Vec::new(), q))
    }

    fn operator(&mut self, pos: usize) -> Option<(bool, usize)> {
        let p = self.skip_ws(pos);
        if self.starts(p, "==") {
            Some((true, self.skip_ws(p + 2)))
        } else if self.starts(p, "!=") {
            Some((false, self.skip_ws(p + 2)))
        } else {
            self.fail(p, "'==' or '!='")
        }
    }

    fn condition(&mut self, pos: usize) -> Option<(Condition, usize)> {
        // 1. EXPR op EXPR
        if let Some((left, p)) = self.expression(pos)
            && let Some((equal, q)) = self.operator(p)
            && let Some((right, r)) = self.expression(q)
        {
            return Some((Condition::Compare { left, equal, right }, r));
        }
        // 2. "text" op EXPR
        if let Some((text, p)) = self.quoted(pos)
            && let Some((equal, q)) = self.operator(p)
            && let Some((left, r)) = self.expression(q)
        {
            return Some((Condition::CompareText { left, equal, text }, r));
        }
        // 3. EXPR op "text"; 4. EXPR
        let (left, p) = self.expression(pos)?;
        if let Some((equal, q)) = self.operator(p)
            && let Some((text, r)) = self.quoted(q)
        {
            return Some((Condition::CompareText { left, equal, text }, r));
        }
        Some((Condition::Truthy(left), p))
    }

    /// `"text"` (no `"` or `#` inside) or `\"text\"`.
    fn quoted(&mut self, pos: usize) -> Option<(String, usize)> {
        if self.starts(pos, "\\\"") {
            let start = pos + 2;
            return match memchr::memmem::find(&self.b[start..], b"\\\"") {
                Some(off) => Some((self.s[start..start + off].to_string(), start + off + 2)),
                None => {
                    self.touch_end();
                    self.fail(self.s.len(), "'\\\"'")
                }
            };
        }
        if self.byte(pos) != Some(b'"') {
            return self.fail(pos, "'\"'");
        }
        let start = pos + 1;
        match memchr::memchr2(b'"', b'#', &self.b[start..]) {
            Some(off) if self.b[start + off] == b'"' => Some((self.s[start..start + off].to_string(), start + off + 1)),
            Some(off) => self.fail(start + off, "'\"'"),
            None => {
                self.touch_end();
                self.fail(self.s.len(), "'\"'")
            }
        }
    }

    fn calculation(&mut self, pos: usize) -> Option<(Token, usize)> {
        let p = self.keyword(pos, "calc")?;
        self.calc_operands = 0;
        let (e, p) = self.calc_sum(p)?;
        let p = self.close(p)?;
        Some((Token::Calculation(e), p))
    }

    fn calc_sum(&mut self, pos: usize) -> Option<(CalcExpr, usize)> {
        let (mut left, mut p) = self.calc_product(pos)?;
        loop {
            let q = self.skip_ws(p);
            let Some(op) = self.byte(q).filter(|c| matches!(c, b'+' | b'-')) else { break };
            let Some((right, r)) = self.calc_product(q + 1) else { break };
            left = CalcExpr::Binary(Box::new(left), op as char, Box::new(right));
            p = r;
        }
        Some((left, p))
    }

    fn calc_product(&mut self, pos: usize) -> Option<(CalcExpr, usize)> {
        let (mut left, mut p) = self.calc_factor(pos)?;
        loop {
            let q = self.skip_ws(p);
            let Some(op) = self.byte(q).filter(|c| matches!(c, b'*' | b'/')) else { break };
            let Some((right, r)) = self.calc_factor(q + 1) else { break };
            left = CalcExpr::Binary(Box::new(left), op as char, Box::new(right));
            p = r;
        }
        Some((left, p))
    }

    fn calc_factor(&mut self, pos: usize) -> Option<(CalcExpr, usize)> {
        self.calc_operands += 1;
        if self.depth >= MAX_NESTING || self.calc_operands > MAX_CALC_OPERANDS {
            self.too_deep = true;
            return self.fail(pos, "less nesting");
        }
        let p = self.skip_ws(pos);
        match self.byte(p) {
            Some(b'(') => {
                self.depth += 1;
                let r = stacker::maybe_grow(64 * 1024, 1024 * 1024, || self.calc_sum(p + 1));
                self.depth -= 1;
                let (e, q) = r?;
                let q = self.skip_ws(q);
                let q = self.expect(q, ")")?;
                Some((e, q))
            }
            Some(b'{') => {
                let q = self.skip_ws(p + 1);
                let (path, q) = self.path(q)?;
                let q = self.skip_ws(q);
                let q = self.expect(q, "}")?;
                Some((CalcExpr::Path(path), q))
            }
            Some(c) if c.is_ascii_digit() => {
                let mut q = p;
                while self.byte(q).is_some_and(|c| c.is_ascii_digit()) {
                    q += 1;
                }
                if self.byte(q) == Some(b'.') && self.byte(q + 1).is_some_and(|c| c.is_ascii_digit()) {
                    q += 1;
                    while self.byte(q).is_some_and(|c| c.is_ascii_digit()) {
                        q += 1;
                    }
                }
                let v: f64 = self.s[p..q].parse().unwrap_or(0.0);
                Some((CalcExpr::Constant(v), q))
            }
            _ => {
                let (path, q) = self.path(p)?;
                Some((CalcExpr::Path(path), q))
            }
        }
    }

    fn repetition(&mut self, pos: usize) -> Option<(Token, usize)> {
        let p = self.keyword(pos, "each")?;
        let (variable, _, p) = self.identifier(p)?;
        let p = self.ws1(p)?;
        if !self.starts_ci(p, "in") {
            return self.fail(p, "'in'");
        }
        let p = self.ws1(p + 2)?;
        let (collection, p) = self.path(p)?;
        let p = self.close(p)?;
        let (body, p) = self.tokens(p, true);
        let p = self.expect(p, "#{/each}")?;
        Some((Token::Repetition(Box::new(Repetition { variable, collection, body })), p))
    }

    fn substitution(&mut self, pos: usize) -> Option<(Token, usize)> {
        let p = self.expect(pos, "#{")?;
        if self.starts(p, "/") {
            return self.fail(p, "a variable name");
        }
        let p = self.skip_ws(p);
        let (e, p) = self.expression(p)?;
        let p = self.close(p)?;
        Some((Token::Substitution(e), p))
    }

    /// `path`, `path | filter ...`, or `| filter ...`. Does not consume trailing whitespace.
    fn expression(&mut self, pos: usize) -> Option<(Expression, usize)> {
        let (path, mut p) = match self.path(pos) {
            Some((path, q)) => (Some(path), q),
            None => (None, pos),
        };
        let mut filters = Vec::new();
        let mut last_nested = false;
        loop {
            let q = if last_nested { p } else { self.skip_ws(p) };
            if self.byte(q) != Some(b'|') {
                if filters.is_empty() && path.is_none() {
                    return self.fail(q, "a variable name or '|'");
                }
                break;
            }
            let q = self.skip_ws(q + 1);
            let Some((name, mut q)) = self.word(q) else { break };
            let mut options = Vec::new();
            last_nested = false;
            loop {
                let r = self.skip_ws(q);
                match self.option(r) {
                    Some((o, r2)) => {
                        last_nested = matches!(o, FilterOption::Token(_));
                        options.push(o);
                        q = r2;
                    }
                    None => break,
                }
            }
            filters.push(Filter { name, options });
            p = q;
        }
        if path.is_none() && filters.is_empty() {
            return None;
        }
        Some((Expression { path, filters }, p))
    }

    fn word(&mut self, pos: usize) -> Option<(String, usize)> {
        let mut q = pos;
        while let Some(c) = self.char_at(q) {
            if !is_word_char(c) {
                break;
            }
            q += c.len_utf8();
        }
        if q == pos { self.fail(pos, "a filter name or option") } else { Some((self.s[pos..q].to_string(), q)) }
    }

    fn option(&mut self, pos: usize) -> Option<(FilterOption, usize)> {
        match self.byte(pos) {
            Some(b'"') | Some(b'\\') => self.quoted(pos).map(|(t, q)| (FilterOption::Text(t), q)),
            Some(b'#') if self.starts(pos, "#{") => {
                let (t, q) = self.hash_token(pos)?;
                Some((FilterOption::Token(Box::new(t)), q))
            }
            _ => self.word(pos).map(|(t, q)| (FilterOption::Text(t), q)),
        }
    }

    /// One identifier: returns the trimmed text, its offset and the end position.
    fn identifier(&mut self, pos: usize) -> Option<(String, u32, usize)> {
        let mut q = pos;
        while let Some(c) = self.char_at(q) {
            if !is_ident_char(c) {
                break;
            }
            if c.is_whitespace() {
                let n = q + c.len_utf8();
                match self.byte(n) {
                    Some(b'|') | Some(b'}') => break,
                    _ => {}
                }
                if (self.starts_ci(n, "in") || self.starts(n, "==") || self.starts(n, "!="))
                    && self.char_at(n + 2).is_some_and(char::is_whitespace)
                {
                    break;
                }
            }
            q += c.len_utf8();
        }
        let raw = &self.s[pos..q];
        let text = raw.trim();
        if text.is_empty() {
            return self.fail(pos, "a variable name");
        }
        Some((text.to_string(), pos as u32, q))
    }

    pub(crate) fn path(&mut self, pos: usize) -> Option<(Path, usize)> {
        let (text, offset, mut p) = self.identifier(pos)?;
        let mut steps = vec![Step::Identifier { text, offset }];
        loop {
            match self.byte(p) {
                Some(b'.') => match self.identifier(p + 1) {
                    Some((text, offset, q)) => {
                        steps.push(Step::Identifier { text, offset });
                        p = q;
                    }
                    None => break,
                },
                Some(b'[') => match self.indexer(p) {
                    Some((step, q)) => {
                        steps.push(step);
                        p = q;
                    }
                    None => break,
                },
                _ => break,
            }
        }
        Some((Path::new(steps), p))
    }

    fn indexer(&mut self, pos: usize) -> Option<(Step, usize)> {
        let offset = pos as u32;
        if self.starts(pos, "[#{") && self.depth < MAX_NESTING {
            let p = self.skip_ws(pos + 3);
            self.depth += 1;
            let inner = stacker::maybe_grow(64 * 1024, 1024 * 1024, || self.path(p));
            self.depth -= 1;
            if let Some((path, q)) = inner {
                let q = self.skip_ws(q);
                if self.starts(q, "}]") {
                    return Some((Step::SymbolIndex { path, offset }, q + 2));
                }
            }
        }
        let start = self.skip_ws(pos + 1);
        let mut depth = 0usize;
        let mut q = start;
        loop {
            match self.byte(q) {
                None => return self.fail(q, "']'"),
                Some(b'[') => depth += 1,
                Some(b']') if depth == 0 => break,
                Some(b']') => depth -= 1,
                _ => {}
            }
            q += 1;
        }
        Some((Step::Index { text: self.s[start..q].to_string(), offset }, q + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        parse(s).unwrap().to_string()
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(canon("#{ Foo }"), "#{Foo}");
        assert_eq!(canon("#{foo | Substring 1 2 3}"), "#{foo | Substring \"1\" \"2\" \"3\"}");
        assert_eq!(canon("#{ | Md5}"), "#{ | Md5}");
        assert_eq!(canon("#{calc C+2}"), "#{C+2}");
        assert_eq!(canon("##{x}"), "##{x}");
        assert_eq!(
            canon("#{if First}first#{elseif Second}second#{else}else#{/if}"),
            "#{if First}first#{else}#{if Second}second#{else}else#{/if}#{/if}"
        );
        assert_eq!(canon("#{A[#{B}].C[x y ]}"), "#{A[#{B}].C[x y ]}");
    }

    #[test]
    fn errors_carry_line_and_column() {
        let e = parse("ab\ncd #{Foo").unwrap_err();
        assert_eq!((e.line, e.column), (2, 9), "{}", e.message);
        assert!(parse("#{}").is_err());
        assert!(parse("#{ }").is_err());
        assert!(parse("#{/if}").is_err());
        let unclosed = parse("#{if Foo}yes#{/if").unwrap_err();
        assert_eq!(
            unclosed.message,
            "Parsing failure at line 1, column 18: unexpected end of input; expected '}': the '#{/if' is not closed"
        );
        let unclosed_each = parse("#{each a in B}x#{/each ").unwrap_err();
        assert!(
            unclosed_each.message.ends_with("expected '}': the '#{/each' is not closed"),
            "{}",
            unclosed_each.message
        );
        assert!(parse("#{X | Format 0.00}").is_err());
        assert!(parse("#{D | AddHours #{H} | Format x}").is_err());
        assert!(parse("#{D | AddHours #{H}| Format x}").is_ok());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let t = "#{if a}".repeat(10_000) + &"#{/if}".repeat(10_000);
        let e = parse(&t).unwrap_err();
        assert!(e.message.contains("levels deep"), "{}", e.message);
        let _ = parse_resilient(&t);
    }
}
