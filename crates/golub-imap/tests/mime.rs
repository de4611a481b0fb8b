//! The MIME views over a corpus of real-world-shaped messages in `tests/data/mime/`.
//!
//! Each `name.eml` has siblings `name.envelope`, `name.body` and `name.bodystructure`
//! holding the expected ENVELOPE, BODY and BODYSTRUCTURE. They were compared with what
//! Dovecot 2.3 prints for the same files (see the notes in each test below for where Golub
//! differs on purpose), and every one is also checked here against the RFC 3501 §9 grammar.
//! `GOLUB_BLESS=1 cargo test -p golub-imap --test mime` rewrites them.

use std::path::{Path, PathBuf};

use golub_imap::command::{Section, SectionText};
use golub_imap::mime::{self, BinaryError};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/mime")
}

/// The message as stored: CRLF line ends whatever the checkout did to the file.
fn load(name: &str) -> Vec<u8> {
    let raw = std::fs::read(dir().join(name)).expect("corpus file");
    let mut out = Vec::with_capacity(raw.len());
    for (i, &c) in raw.iter().enumerate() {
        if c == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(c);
    }
    out
}

fn corpus() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .expect("corpus dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".eml"))
        .collect();
    names.sort();
    names
}

#[test]
fn corpus_matches_expected_envelope_body_and_bodystructure() {
    let bless = std::env::var_os("GOLUB_BLESS").is_some();
    let names = corpus();
    assert!(names.len() >= 9, "corpus went missing: {names:?}");
    let mut failures = Vec::new();
    for name in &names {
        let msg = load(name);
        let stem = name.trim_end_matches(".eml");
        let views = [
            ("envelope", mime::envelope(&msg)),
            ("body", mime::body_structure(&msg, false)),
            ("bodystructure", mime::body_structure(&msg, true)),
        ];
        for (ext, actual) in views {
            let path = dir().join(format!("{stem}.{ext}"));
            if bless {
                let mut file = actual.clone();
                file.push(b'\n');
                std::fs::write(&path, file).expect("write expected file");
            }
            let expected = std::fs::read(&path).unwrap_or_default();
            let expected = expected.strip_suffix(b"\n").unwrap_or(&expected);
            if actual != expected {
                failures.push(format!(
                    "{stem}.{ext}:\n  expected {}\n  actual   {}",
                    String::from_utf8_lossy(expected),
                    String::from_utf8_lossy(&actual)
                ));
            }
            let mut p = grammar::Parser::new(&actual);
            let ok = match ext {
                "envelope" => p.envelope(),
                _ => p.body(ext == "bodystructure"),
            };
            if let Err(e) = ok.and_then(|()| p.end()) {
                failures.push(format!("{stem}.{ext} breaks the RFC 3501 grammar: {e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn part(path: &[u32], text: Option<SectionText>) -> Section {
    Section {
        part: path.to_vec(),
        text,
    }
}

fn sect(msg: &[u8], path: &[u32], text: Option<SectionText>) -> Option<String> {
    mime::section(msg, &part(path, text)).map(|b| String::from_utf8_lossy(&b).into_owned())
}

#[test]
fn plain_message_sections() {
    let msg = load("plain-7bit.eml");
    let whole = sect(&msg, &[], None).expect("whole");
    assert_eq!(whole.as_bytes(), msg.as_slice());
    let header = sect(&msg, &[], Some(SectionText::Header)).expect("header");
    assert!(header.starts_with("Return-Path: <alice@example.org>\r\n"));
    assert!(header.ends_with("MIME-Version: 1.0\r\n\r\n"));
    let text = sect(&msg, &[], Some(SectionText::Text)).expect("text");
    assert!(text.starts_with("Hello Bob,\r\n"));
    assert_eq!(header.len() + text.len(), msg.len());
    // Part 1 of a non-multipart message is its body.
    assert_eq!(sect(&msg, &[1], None).as_deref(), Some(text.as_str()));
    assert_eq!(sect(&msg, &[2], None), None);
    assert_eq!(sect(&msg, &[1, 1], None), None);
    // HEADER of a part that is not message/rfc822 does not exist.
    assert_eq!(sect(&msg, &[1], Some(SectionText::Header)), None);
}

#[test]
fn header_fields_keep_stored_folding_and_end_with_a_blank_line() {
    let msg = load("plain-7bit.eml");
    let fields = SectionText::HeaderFields(vec!["TO".into(), "subject".into()]);
    assert_eq!(
        sect(&msg, &[], Some(fields)).expect("fields"),
        "Subject: afternoon meeting\r\n\
         To: Bob Jones <bob@example.net>,\r\n \"Carol \\\"CJ\\\" King\" <carol@example.net>\r\n\r\n"
    );
    let not = SectionText::HeaderFieldsNot(vec![
        "received".into(),
        "return-path".into(),
        "to".into(),
        "cc".into(),
        "mime-version".into(),
    ]);
    assert_eq!(
        sect(&msg, &[], Some(not)).expect("fields.not"),
        "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n\
         From: Alice Smith <alice@example.org>\r\n\
         Subject: afternoon meeting\r\n\
         Message-Id: <B27397-0100000@example.org>\r\n\r\n"
    );
    let none = SectionText::HeaderFields(vec!["x-absent".into()]);
    assert_eq!(sect(&msg, &[], Some(none)).as_deref(), Some("\r\n"));
}

#[test]
fn nested_multipart_parts_are_numbered_depth_first() {
    let msg = load("related-alternative.eml");
    assert_eq!(
        sect(&msg, &[1, 1], None).as_deref(),
        Some("Spring sale: everything 20% off.")
    );
    assert_eq!(
        sect(&msg, &[1, 1], Some(SectionText::Mime)).as_deref(),
        Some(
            "Content-Type: text/plain; charset=\"utf-8\"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
        )
    );
    let html = mime::binary(&msg, &[1, 2]).expect("html");
    assert_eq!(
        html,
        b"<html><body><p>Spring sale: everything 20% off.</p>\
          <img src=\"cid:logo@shop.example\"></body></html>"
    );
    let image = mime::binary(&msg, &[2]).expect("image");
    assert_eq!(image, (0u8..120).collect::<Vec<_>>());
    assert_eq!(mime::binary_size(&msg, &[2]), Ok(120));
    // The multipart/alternative itself: its body, boundaries and all.
    let alt = sect(&msg, &[1], None).expect("alternative");
    assert!(alt.starts_with("--alt-boundary\r\n"));
    assert!(alt.ends_with("--alt-boundary--\r\n"));
    assert_eq!(sect(&msg, &[3], None), None);
    assert_eq!(mime::binary(&msg, &[3]), Err(BinaryError::NoSuchPart));
    assert_eq!(mime::binary(&msg, &[0]), Err(BinaryError::NoSuchPart));
}

#[test]
fn attachments_decode_and_rfc2231_names_are_merged() {
    let msg = load("attachments-rfc2231.eml");
    let pdf = mime::binary(&msg, &[2]).expect("pdf");
    assert_eq!(pdf, b"%PDF-1.4\n%fake pdf for tests\n".repeat(3));
    let xlsx = mime::binary(&msg, &[3]).expect("xlsx");
    assert_eq!(xlsx, b"PK\x03\x04\x14\0\0\0\x08\0");
    let bs = String::from_utf8(mime::body_structure(&msg, true)).expect("utf-8");
    assert!(
        bs.contains("(\"attachment\" (\"filename\" \"€ rates.pdf\"))"),
        "{bs}"
    );
    assert!(bs.contains("\"Quartalsübersicht Q1 2023.xlsx\""), "{bs}");
}

#[test]
fn message_rfc822_parts_have_header_text_and_inner_parts() {
    let msg = load("forwarded-rfc822.eml");
    let inner_header = sect(&msg, &[2], Some(SectionText::Header)).expect("2.HEADER");
    assert!(inner_header.starts_with("From: Carol King <carol@example.net>\r\n"));
    assert!(inner_header.ends_with("boundary=inner\r\n\r\n"));
    let inner_text = sect(&msg, &[2], Some(SectionText::Text)).expect("2.TEXT");
    assert!(inner_text.starts_with("--inner\r\n"));
    assert!(inner_text.ends_with("--inner--\r\n"));
    let whole_inner = sect(&msg, &[2], None).expect("2");
    assert_eq!(whole_inner, format!("{inner_header}{inner_text}"));
    assert_eq!(
        sect(&msg, &[2], Some(SectionText::Mime)).as_deref(),
        Some("Content-Type: message/rfc822\r\nContent-Description: forwarded message\r\n\r\n")
    );
    assert_eq!(sect(&msg, &[2, 1], None).as_deref(), Some("3 PM works."));
    assert_eq!(
        sect(&msg, &[2, 2], None).as_deref(),
        Some("<p>3 PM works.</p>")
    );
    let subject = SectionText::HeaderFields(vec!["Subject".into()]);
    assert_eq!(
        sect(&msg, &[2], Some(subject)).as_deref(),
        Some("Subject: Re: afternoon meeting\r\n\r\n")
    );
    assert_eq!(sect(&msg, &[2, 3], None), None);
    assert_eq!(sect(&msg, &[1], Some(SectionText::Text)), None);
    assert!(mime::text_matches(&msg, b"3 pm WORKS", true));
    assert!(mime::text_matches(&msg, b"carol king", true));
}

#[test]
fn eight_bit_text_and_encoded_words_are_searchable() {
    let msg = load("utf8-8bit.eml");
    assert!(mime::header_contains(
        &msg,
        "subject",
        "grüße aus KÖLN".as_bytes()
    ));
    assert!(!mime::header_contains(&msg, "subject", b"=?UTF-8?Q?"));
    assert!(mime::header_contains(
        &msg,
        "FROM",
        "jörg müller".as_bytes()
    ));
    assert!(mime::header_contains(&msg, "to", b""));
    assert!(!mime::header_contains(&msg, "cc", b""));
    assert!(!mime::text_matches(&msg, b"STRASSE", true));
    assert!(mime::text_matches(&msg, "straße, ärger".as_bytes(), true));
    assert!(mime::text_matches(&msg, "日本語".as_bytes(), true));
    assert!(!mime::text_matches(&msg, "jörg müller".as_bytes(), true));
    assert!(mime::text_matches(&msg, "jörg müller".as_bytes(), false));
    assert_eq!(
        mime::header_values(&msg, "Subject"),
        vec![&b"=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?="[..]]
    );
    assert_eq!(mime::sent_date(&msg), Some(1_685_613_600));
    assert_eq!(
        mime::binary(&msg, &[1]).expect("body"),
        "Schöne Grüße aus Köln!\r\nStraße, Ärger, Öl — 日本語.\r\n".as_bytes()
    );
}

#[test]
fn transfer_encodings_and_charsets_are_undone() {
    let msg = load("qp-base64.eml");
    let qp = mime::binary(&msg, &[1]).expect("qp");
    assert_eq!(
        qp,
        b"Caf\xe9 cr\xe8me, d\xe9j\xe0 vu. \r\nA soft line break and an equals sign: =.\r\n"
    );
    assert_eq!(
        mime::binary(&msg, &[2]).expect("base64 text"),
        "Ünïcödé in base64 text.\n".as_bytes()
    );
    assert_eq!(
        mime::binary(&msg, &[3]).expect("octets"),
        (0u8..10).collect::<Vec<_>>()
    );
    assert_eq!(mime::binary(&msg, &[4]), Err(BinaryError::UnknownEncoding));
    assert_eq!(
        mime::binary_size(&msg, &[4]),
        Err(BinaryError::UnknownEncoding)
    );
    // BODY[4] still returns the encoded octets.
    assert!(
        sect(&msg, &[4], None)
            .expect("4")
            .starts_with("begin 644 old.bin")
    );
    // Latin-1 after quoted-printable, UTF-8 after base64.
    assert!(mime::text_matches(&msg, "CAFÉ CRÈME".as_bytes(), true));
    assert!(mime::text_matches(&msg, "soft line break".as_bytes(), true));
    assert!(mime::text_matches(&msg, "ünïcödé".as_bytes(), true));
    assert!(!mime::text_matches(&msg, b"AAECAwQF", true));
    assert!(!mime::text_matches(&msg, b"encodings", true));
    assert!(mime::text_matches(&msg, b"encodings", false));
}

#[test]
fn malformed_multiparts_degrade_to_readable_text() {
    // Dovecot shows an empty text/plain child here; Golub shows the body as text/plain
    // (RFC 2045 §5.2) so that the client can still display it.
    let msg = load("malformed-no-boundary.eml");
    let body = sect(&msg, &[1], None).expect("1");
    assert!(body.starts_with("--other\r\n"));
    assert_eq!(mime::binary(&msg, &[1]).expect("binary").len(), body.len());
    assert!(mime::text_matches(&msg, b"boundary is wrong", true));

    // A missing close delimiter: the last part runs to the end.
    let msg = load("malformed-unclosed.eml");
    assert_eq!(sect(&msg, &[1], None).as_deref(), Some("first part"));
    assert_eq!(
        sect(&msg, &[2], None).as_deref(),
        Some("second part, cut off\r\nand never closed\r\n")
    );
    assert_eq!(sect(&msg, &[3], None), None);
}

#[test]
fn digest_parts_default_to_message_rfc822() {
    let msg = load("digest.eml");
    assert_eq!(
        sect(&msg, &[2, 1], Some(SectionText::Header)).as_deref(),
        Some(
            "From: one@example.org\r\nSubject: hello\r\nDate: Sat, 3 Jun 2023 10:00:00 +0000\r\n\r\n"
        )
    );
    assert_eq!(
        sect(&msg, &[2, 1, 1], None).as_deref(),
        Some("Hello list.\r\n")
    );
    assert_eq!(sect(&msg, &[2, 2, 1], None).as_deref(), Some("Hi one.\r\n"));
    assert_eq!(
        sect(&msg, &[2, 1], Some(SectionText::Mime)).as_deref(),
        Some("\r\n")
    );
    assert_eq!(
        sect(&msg, &[2, 3], None).as_deref(),
        Some("Not a message: an explicit text part in a digest.")
    );
    assert_eq!(sect(&msg, &[2, 3], Some(SectionText::Header)), None);
}

#[test]
fn arbitrary_input_never_panics() {
    let samples: [&[u8]; 8] = [
        b"",
        b"\r\n",
        b"no header at all",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x--",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n--x\r\n",
        b"Content-Type: message/rfc822\r\n\r\n",
        b"From: <@>, :;, \"unterminated\r\nTo: (comment\r\n\r\n",
        b"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n",
    ];
    for msg in samples {
        let bs = mime::body_structure(msg, true);
        let mut p = grammar::Parser::new(&bs);
        p.body(true).and_then(|()| p.end()).expect("grammar");
        let env = mime::envelope(msg);
        let mut p = grammar::Parser::new(&env);
        p.envelope().and_then(|()| p.end()).expect("grammar");
        for path in [&[][..], &[1], &[1, 1], &[2]] {
            for text in [
                None,
                Some(SectionText::Header),
                Some(SectionText::Text),
                Some(SectionText::Mime),
            ] {
                let _ = mime::section(msg, &part(path, text));
            }
            let _ = mime::binary(msg, path);
        }
        let _ = mime::text_matches(msg, b"x", false);
        let _ = mime::sent_date(msg);
    }
}

/// A checker for the RFC 3501 §9 `body` and `envelope` productions (IMAP4rev1; RFC 9051
/// only relaxes them).
mod grammar {
    pub struct Parser<'a> {
        s: &'a [u8],
        pos: usize,
    }

    type R<T = ()> = Result<T, String>;

    impl<'a> Parser<'a> {
        pub fn new(s: &'a [u8]) -> Self {
            Parser { s, pos: 0 }
        }

        fn err<T>(&self, what: &str) -> R<T> {
            Err(format!(
                "expected {what} at {}: {:?}",
                self.pos,
                String::from_utf8_lossy(&self.s[self.pos.min(self.s.len())..])
            ))
        }

        fn peek(&self) -> Option<u8> {
            self.s.get(self.pos).copied()
        }

        fn eat(&mut self, c: u8) -> R {
            if self.peek() == Some(c) {
                self.pos += 1;
                Ok(())
            } else {
                self.err(&format!("{:?}", c as char))
            }
        }

        fn sp(&mut self) -> R {
            self.eat(b' ')
        }

        pub fn end(&self) -> R {
            if self.pos == self.s.len() {
                Ok(())
            } else {
                self.err("end")
            }
        }

        fn nil(&mut self) -> bool {
            if self.s[self.pos..].starts_with(b"NIL") {
                self.pos += 3;
                true
            } else {
                false
            }
        }

        fn string(&mut self) -> R<Vec<u8>> {
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    let mut out = Vec::new();
                    loop {
                        match self.peek() {
                            Some(b'"') => {
                                self.pos += 1;
                                return Ok(out);
                            }
                            Some(b'\\') => {
                                self.pos += 1;
                                match self.peek() {
                                    Some(c @ (b'"' | b'\\')) => out.push(c),
                                    _ => return self.err("quoted-special"),
                                }
                                self.pos += 1;
                            }
                            Some(b'\r' | b'\n' | 0) | None => return self.err("TEXT-CHAR"),
                            Some(c) => {
                                out.push(c);
                                self.pos += 1;
                            }
                        }
                    }
                }
                Some(b'{') => {
                    let close = self.s[self.pos..]
                        .iter()
                        .position(|&c| c == b'}')
                        .ok_or("literal")?;
                    let n: usize = std::str::from_utf8(&self.s[self.pos + 1..self.pos + close])
                        .ok()
                        .and_then(|n| n.parse().ok())
                        .ok_or("literal length")?;
                    self.pos += close + 1;
                    self.eat(b'\r')?;
                    self.eat(b'\n')?;
                    let out = self.s.get(self.pos..self.pos + n).ok_or("literal data")?;
                    self.pos += n;
                    Ok(out.to_vec())
                }
                _ => self.err("string"),
            }
        }

        fn nstring(&mut self) -> R<Option<Vec<u8>>> {
            if self.nil() {
                Ok(None)
            } else {
                self.string().map(Some)
            }
        }

        fn number(&mut self) -> R {
            let n = self.s[self.pos..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if n == 0 {
                return self.err("number");
            }
            self.pos += n;
            Ok(())
        }

        /// `"(" string SP string *(SP string SP string) ")" / nil`
        fn params(&mut self) -> R {
            if self.nil() {
                return Ok(());
            }
            self.eat(b'(')?;
            loop {
                self.string()?;
                self.sp()?;
                self.string()?;
                if self.peek() == Some(b')') {
                    self.pos += 1;
                    return Ok(());
                }
                self.sp()?;
            }
        }

        /// `body-fld-dsp SP body-fld-lang SP body-fld-loc` (all present, as Golub writes).
        fn ext_tail(&mut self) -> R {
            if !self.nil() {
                self.eat(b'(')?;
                self.string()?;
                self.sp()?;
                self.params()?;
                self.eat(b')')?;
            }
            self.sp()?;
            if !self.nil() {
                if self.peek() == Some(b'(') {
                    self.pos += 1;
                    self.string()?;
                    while self.peek() == Some(b' ') {
                        self.pos += 1;
                        self.string()?;
                    }
                    self.eat(b')')?;
                } else {
                    self.string()?;
                }
            }
            self.sp()?;
            self.nstring()?;
            Ok(())
        }

        pub fn body(&mut self, ext: bool) -> R {
            self.eat(b'(')?;
            if self.peek() == Some(b'(') {
                // body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]
                while self.peek() == Some(b'(') {
                    self.body(ext)?;
                }
                self.sp()?;
                self.string()?;
                if ext {
                    self.sp()?;
                    self.params()?;
                    self.sp()?;
                    self.ext_tail()?;
                }
                return self.eat(b')');
            }
            let ty = self.string()?.to_ascii_uppercase();
            self.sp()?;
            let subtype = self.string()?.to_ascii_uppercase();
            // body-fields = params SP id SP desc SP enc SP octets
            self.sp()?;
            self.params()?;
            self.sp()?;
            self.nstring()?;
            self.sp()?;
            self.nstring()?;
            self.sp()?;
            self.string()?;
            self.sp()?;
            self.number()?;
            if ty == b"MESSAGE" && subtype == b"RFC822" {
                self.sp()?;
                self.envelope()?;
                self.sp()?;
                self.body(ext)?;
                self.sp()?;
                self.number()?;
            } else if ty == b"TEXT" {
                self.sp()?;
                self.number()?;
            }
            if ext {
                // body-ext-1part = md5 SP dsp SP lang SP loc
                self.sp()?;
                self.nstring()?;
                self.sp()?;
                self.ext_tail()?;
            }
            self.eat(b')')
        }

        pub fn envelope(&mut self) -> R {
            self.eat(b'(')?;
            self.nstring()?;
            self.sp()?;
            self.nstring()?;
            for _ in 0..6 {
                self.sp()?;
                self.addresses()?;
            }
            self.sp()?;
            self.nstring()?;
            self.sp()?;
            self.nstring()?;
            self.eat(b')')
        }

        fn addresses(&mut self) -> R {
            if self.nil() {
                return Ok(());
            }
            self.eat(b'(')?;
            let mut depth = 0usize;
            while self.peek() == Some(b'(') {
                self.pos += 1;
                let name = self.nstring()?;
                self.sp()?;
                let adl = self.nstring()?;
                self.sp()?;
                let mailbox = self.nstring()?;
                self.sp()?;
                let host = self.nstring()?;
                self.eat(b')')?;
                // RFC 3501 §7.4.2: group markers have a NIL host.
                match (host.is_none(), mailbox.is_some()) {
                    (true, true) => depth += 1,
                    (true, false) if depth > 0 => depth -= 1,
                    (true, false) => return self.err("group start before group end"),
                    (false, _) if mailbox.is_none() => return self.err("mailbox"),
                    _ => {}
                }
                let _ = (name, adl);
            }
            if depth != 0 {
                return self.err("group end");
            }
            self.eat(b')')
        }
    }
}

proptest::proptest! {
    /// Messages glued from MIME-looking pieces: every view stays grammatical and nothing
    /// panics.
    #[test]
    fn mime_shaped_noise_never_panics(pieces in proptest::collection::vec(
        proptest::sample::select(vec![
            "Content-Type: multipart/mixed; boundary=b\r\n",
            "Content-Type: message/rfc822\r\n",
            "Content-Type: multipart/digest; boundary=\"b\"\r\n",
            "Content-Transfer-Encoding: base64\r\n",
            "Content-Transfer-Encoding: quoted-printable\r\n",
            "Content-Disposition: attachment; filename*0*=utf-8''%C3; filename*1=x\r\n",
            "From: a <b@c>, g: d@e;\r\n",
            "To: \"x\r\n",
            " folded\r\n",
            "\r\n",
            "--b\r\n",
            "--b--\r\n",
            "=C3=\r\n",
            "aGVsbG8=\r\n",
            "text\n",
            "\u{e9}\u{0}",
        ]),
        0..40,
    )) {
        let msg = pieces.concat().into_bytes();
        for ext in [false, true] {
            let bs = mime::body_structure(&msg, ext);
            let mut p = grammar::Parser::new(&bs);
            proptest::prop_assert!(p.body(ext).and_then(|()| p.end()).is_ok());
        }
        let env = mime::envelope(&msg);
        let mut p = grammar::Parser::new(&env);
        proptest::prop_assert!(p.envelope().and_then(|()| p.end()).is_ok());
        for path in [&[][..], &[1], &[1, 1], &[2, 1, 1]] {
            for text in [None, Some(SectionText::Header), Some(SectionText::Mime)] {
                let _ = mime::section(&msg, &part(path, text));
            }
            let _ = mime::binary(&msg, path);
        }
        let _ = mime::text_matches(&msg, b"hello", false);
        let _ = mime::header_contains(&msg, "to", b"x");
    }
}
