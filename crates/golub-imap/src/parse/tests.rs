use super::*;
use crate::command::*;

/// Parses `line` (CRLF added when missing) and returns the command; panics on error.
fn ok(line: &str) -> Command {
    ok_bytes(line.as_bytes())
}

fn ok_bytes(line: &[u8]) -> Command {
    let mut input = line.to_vec();
    if !input.ends_with(b"\n") {
        input.extend_from_slice(b"\r\n");
    }
    match command(&input) {
        Ok(t) => t.command,
        Err(e) => panic!("{}: {e:?}", String::from_utf8_lossy(line)),
    }
}

fn err(line: &str) -> ParseError {
    let mut input = line.as_bytes().to_vec();
    input.extend_from_slice(b"\r\n");
    match command(&input) {
        Ok(t) => panic!("{line}: parsed as {t:?}"),
        Err(e) => e,
    }
}

fn set(ranges: &[(u32, u32)]) -> SequenceSet {
    let n = |v: u32| {
        if v == 0 {
            SeqNumber::Largest
        } else {
            SeqNumber::Value(v)
        }
    };
    SequenceSet(
        ranges
            .iter()
            .map(|&(a, b)| SeqRange {
                start: n(a),
                end: n(b),
            })
            .collect(),
    )
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn tag_and_command_name() {
    let t = command(b"a001 capability\r\n").unwrap();
    assert_eq!(t.tag, "a001");
    assert_eq!(t.command, Command::Capability);
    assert_eq!(ok("x]y NoOp"), Command::Noop);
    assert_eq!(ok("A LOGOUT"), Command::Logout);
    assert_eq!(ok("A STARTTLS"), Command::StartTls);
    assert_eq!(ok("A NAMESPACE"), Command::Namespace);
    assert_eq!(ok("A IDLE"), Command::Idle);
    assert_eq!(ok("A CHECK"), Command::Check);
    assert_eq!(ok("A CLOSE"), Command::Close);
    assert_eq!(ok("A UNSELECT"), Command::Unselect);
    assert_eq!(ok("A EXPUNGE"), Command::Expunge { uids: None });
    assert_eq!(
        ok("A003 UID EXPUNGE 3000:3002"),
        Command::Expunge {
            uids: Some(set(&[(3000, 3002)]))
        }
    );
    // Bare LF and a missing line end are accepted.
    assert_eq!(command(b"a NOOP\n").unwrap().command, Command::Noop);
    assert_eq!(command(b"a NOOP").unwrap().command, Command::Noop);
}

#[test]
fn bad_tags_and_spacing_are_refused() {
    assert_eq!(err("+a NOOP").tag, None);
    assert_eq!(err("a+ NOOP").tag, None);
    assert_eq!(err("a{ NOOP").tag, None);
    assert_eq!(err(" NOOP").tag, None);
    let e = err("a1  NOOP");
    assert_eq!(e.tag.as_deref(), Some("a1"));
    assert_eq!(e.message, "more than one space between arguments");
    assert_eq!(err("a1").message, "missing command");
    assert_eq!(err("a1 NOOP ").message, "NOOP: trailing space");
    assert_eq!(
        err("a1 NOOP x").message,
        "NOOP: unexpected \"x\" at the end"
    );
    assert_eq!(
        err("a1 NOOP\r\nb NOOP").message,
        "NOOP: unexpected \"\" at the end"
    );
    assert_eq!(err("a1 FOO bar").message, "unknown command FOO");
    assert_eq!(err("a1 UID FOO 1").message, "unknown command UID FOO");
    assert!(command(b"a NOOP\r").is_err());
    assert!(command(b"a NOOP\rx\r\n").is_err());
}

#[test]
fn authenticate_with_and_without_initial_response() {
    assert_eq!(
        ok("A001 AUTHENTICATE GSSAPI"),
        Command::Authenticate {
            mechanism: "GSSAPI".into(),
            initial: None
        }
    );
    // RFC 4959 §3.
    assert_eq!(
        ok("a authenticate plain dGVzdAB0ZXN0AHRlc3Q="),
        Command::Authenticate {
            mechanism: "PLAIN".into(),
            initial: Some(b"dGVzdAB0ZXN0AHRlc3Q=".to_vec())
        }
    );
    assert_eq!(
        ok("a AUTHENTICATE EXTERNAL ="),
        Command::Authenticate {
            mechanism: "EXTERNAL".into(),
            initial: Some(b"=".to_vec())
        }
    );
    assert_eq!(
        err("a AUTHENTICATE").message,
        "AUTHENTICATE needs a mechanism"
    );
    assert!(
        err("a AUTHENTICATE PLAIN a*b")
            .message
            .starts_with("AUTHENTICATE")
    );
}

#[test]
fn login_takes_atoms_quoted_strings_and_literals() {
    // RFC 3501 §6.2.3.
    assert_eq!(
        ok("a001 LOGIN SMITH SESAME"),
        Command::Login {
            user: b"SMITH".to_vec(),
            password: b"SESAME".to_vec()
        }
    );
    assert_eq!(
        ok_bytes(b"a LOGIN \"fred \\\"x\\\\\" {5}\r\npa\"s \r\n"),
        Command::Login {
            user: b"fred \"x\\".to_vec(),
            password: b"pa\"s ".to_vec()
        }
    );
    assert_eq!(
        ok_bytes(b"a LOGIN {4+}\nj\xc3\xb6e \"p\xc3\xa4ss\"\n"),
        Command::Login {
            user: "jöe".as_bytes().to_vec(),
            password: "päss".as_bytes().to_vec()
        }
    );
    assert_eq!(err("a LOGIN").message, "LOGIN needs a user name");
    assert_eq!(err("a LOGIN joe").message, "LOGIN needs a password");
    assert_eq!(
        err("a LOGIN \"joe").message,
        "LOGIN: unterminated quoted string"
    );
    assert_eq!(
        err("a LOGIN \"j\\oe\" x").message,
        "LOGIN: bad escape in quoted string"
    );
    assert_eq!(
        err("a LOGIN joe {10}\r\nshort").message,
        "LOGIN: literal cut short"
    );
    assert_eq!(
        err("a LOGIN joe {2}\r\n\0x").message,
        "LOGIN: NUL in literal"
    );
    assert!(err("a LOGIN joe (x)").message.starts_with("LOGIN"));
}

#[test]
fn enable_upper_cases_capabilities() {
    assert_eq!(
        ok("t2 ENABLE CONDSTORE qresync"),
        Command::Enable(strings(&["CONDSTORE", "QRESYNC"]))
    );
    assert_eq!(err("t ENABLE").message, "ENABLE needs a capability");
}

#[test]
fn select_and_examine_with_condstore_and_qresync() {
    assert_eq!(
        ok("A142 SELECT INBOX"),
        Command::Select {
            mailbox: b"INBOX".to_vec(),
            read_only: false,
            condstore: false,
            qresync: None
        }
    );
    assert_eq!(
        ok("A932 EXAMINE blurdybloop"),
        Command::Select {
            mailbox: b"blurdybloop".to_vec(),
            read_only: true,
            condstore: false,
            qresync: None
        }
    );
    // RFC 7162 §3.1.8.
    assert_eq!(
        ok("a SELECT INBOX (CONDSTORE)"),
        Command::Select {
            mailbox: b"INBOX".to_vec(),
            read_only: false,
            condstore: true,
            qresync: None
        }
    );
    // RFC 7162 §3.2.5.1.
    assert_eq!(
        ok("A03 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))"),
        Command::Select {
            mailbox: b"INBOX".to_vec(),
            read_only: false,
            condstore: false,
            qresync: Some(Qresync {
                uidvalidity: 67890007,
                modseq: 20050715194045000,
                known_uids: Some(set(&[(41, 41), (43, 211), (214, 541)])),
                seq_match: None
            })
        }
    );
    assert_eq!(
        ok(
            "B04 SELECT INBOX (QRESYNC (67890007 90060115194045000 41:211,214:541 \
            (1:15,100:211 8:31,301:441)))"
        ),
        Command::Select {
            mailbox: b"INBOX".to_vec(),
            read_only: false,
            condstore: false,
            qresync: Some(Qresync {
                uidvalidity: 67890007,
                modseq: 90060115194045000,
                known_uids: Some(set(&[(41, 211), (214, 541)])),
                seq_match: Some((set(&[(1, 15), (100, 211)]), set(&[(8, 31), (301, 441)])))
            })
        }
    );
    let Command::Select { qresync, .. } = ok("a SELECT x (QRESYNC (1 2))") else {
        panic!()
    };
    assert_eq!(qresync.unwrap().known_uids, None);
    let Command::Select { qresync, .. } = ok("a SELECT x (QRESYNC (1 2 (1 5)))") else {
        panic!()
    };
    assert_eq!(
        qresync.unwrap().seq_match,
        Some((set(&[(1, 1)]), set(&[(5, 5)])))
    );
    assert_eq!(err("a SELECT").message, "SELECT needs a mailbox name");
    assert_eq!(err("a SELECT x ()").message, "SELECT: empty list");
    assert_eq!(
        err("a SELECT x (FOO)").message,
        "SELECT: unknown SELECT parameter FOO"
    );
    assert!(err("a SELECT x (QRESYNC (0 1))").message.contains("zero"));
}

#[test]
fn create_with_special_use() {
    assert_eq!(
        ok("A003 CREATE owatagusiam/"),
        Command::Create {
            mailbox: b"owatagusiam/".to_vec(),
            special_use: vec![]
        }
    );
    // RFC 6154 §5.3.
    assert_eq!(
        ok("t1 CREATE \"Important Messages\" (USE (\\flagged \\Junk \\Custom))"),
        Command::Create {
            mailbox: b"Important Messages".to_vec(),
            special_use: strings(&["\\Flagged", "\\Junk", "\\Custom"])
        }
    );
    assert!(
        err("t CREATE x (FOO (\\Sent))")
            .message
            .starts_with("CREATE")
    );
}

#[test]
fn delete_rename_subscribe_unsubscribe() {
    assert_eq!(
        ok("A683 DELETE blurdybloop"),
        Command::Delete(b"blurdybloop".to_vec())
    );
    assert_eq!(
        ok("A683 RENAME blurdybloop sarasoop"),
        Command::Rename {
            from: b"blurdybloop".to_vec(),
            to: b"sarasoop".to_vec()
        }
    );
    assert_eq!(
        ok("A002 SUBSCRIBE #news.comp.mail.mime"),
        Command::Subscribe(b"#news.comp.mail.mime".to_vec())
    );
    assert_eq!(
        ok("A002 UNSUBSCRIBE \"#news.comp.mail.mime\""),
        Command::Unsubscribe(b"#news.comp.mail.mime".to_vec())
    );
    assert_eq!(err("a RENAME x").message, "RENAME needs a new mailbox name");
}

fn list(
    selection: Vec<ListSelect>,
    reference: &str,
    patterns: &[&str],
    returns: Vec<ListReturn>,
) -> Command {
    Command::List(List {
        selection,
        reference: reference.as_bytes().to_vec(),
        patterns: patterns.iter().map(|p| p.as_bytes().to_vec()).collect(),
        returns,
    })
}

#[test]
fn plain_list_and_lsub() {
    // RFC 3501 §6.3.8.
    assert_eq!(ok("A101 LIST \"\" \"\""), list(vec![], "", &[""], vec![]));
    assert_eq!(
        ok("A102 LIST #news.comp.mail.misc \"\""),
        list(vec![], "#news.comp.mail.misc", &[""], vec![])
    );
    assert_eq!(
        ok("A202 LIST ~/Mail/ %"),
        list(vec![], "~/Mail/", &["%"], vec![])
    );
    assert_eq!(ok("a LIST \"\" *]x%"), list(vec![], "", &["*]x%"], vec![]));
    assert_eq!(
        ok("A002 LSUB \"#news.\" \"comp.mail.*\""),
        Command::Lsub {
            reference: b"#news.".to_vec(),
            pattern: b"comp.mail.*".to_vec()
        }
    );
    assert_eq!(
        err("a LIST").message,
        "LIST needs a reference and a mailbox pattern"
    );
    assert_eq!(err("a LIST \"\"").message, "LIST needs a mailbox pattern");
}

#[test]
fn extended_list_from_rfc_5258() {
    use ListReturn as Ret;
    use ListSelect as Sel;
    // RFC 5258 §5, examples 3, 5, 7, 9; RFC 6154 §5.1; RFC 5819 §5.
    assert_eq!(
        ok("A02 LIST (SUBSCRIBED) \"\" \"*\""),
        list(vec![Sel::Subscribed], "", &["*"], vec![])
    );
    assert_eq!(
        ok("A04 LIST (REMOTE) \"\" \"%\" RETURN (CHILDREN)"),
        list(vec![Sel::Remote], "", &["%"], vec![Ret::Children])
    );
    assert_eq!(
        ok("C04 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"%\""),
        list(
            vec![Sel::Subscribed, Sel::RecursiveMatch],
            "",
            &["%"],
            vec![]
        )
    );
    assert_eq!(
        ok("BBB LIST \"\" (\"INBOX\" \"Drafts\" \"Sent/%\")"),
        list(vec![], "", &["INBOX", "Drafts", "Sent/%"], vec![])
    );
    assert_eq!(
        ok("t1 LIST \"\" \"%\" RETURN (SPECIAL-USE)"),
        list(vec![], "", &["%"], vec![Ret::SpecialUse])
    );
    assert_eq!(
        ok("A01 LIST \"\" % RETURN (STATUS (MESSAGES UNSEEN))"),
        list(
            vec![],
            "",
            &["%"],
            vec![Ret::Status(vec![StatusItem::Messages, StatusItem::Unseen])]
        )
    );
    assert_eq!(
        ok(
            "a LIST (SUBSCRIBED REMOTE RECURSIVEMATCH SPECIAL-USE) \"\" (\"a\" \"b\") \
            RETURN (SUBSCRIBED CHILDREN SPECIAL-USE STATUS (MESSAGES UNSEEN))"
        ),
        list(
            vec![
                Sel::Subscribed,
                Sel::Remote,
                Sel::RecursiveMatch,
                Sel::SpecialUse
            ],
            "",
            &["a", "b"],
            vec![
                Ret::Subscribed,
                Ret::Children,
                Ret::SpecialUse,
                Ret::Status(vec![StatusItem::Messages, StatusItem::Unseen])
            ]
        )
    );
    assert_eq!(
        ok("a LIST () \"\" % RETURN ()"),
        list(vec![], "", &["%"], vec![])
    );
    assert_eq!(
        err("a LIST (RECURSIVEMATCH) \"\" %").message,
        "LIST: RECURSIVEMATCH needs another selection option"
    );
    assert_eq!(
        err("a LIST (FOO) \"\" %").message,
        "LIST: unknown selection option FOO"
    );
    assert_eq!(
        err("a LIST \"\" % RETURN (FOO)").message,
        "LIST: unknown return option FOO"
    );
    assert!(err("a LIST \"\" % FOO").message.contains("RETURN"));
}

#[test]
fn status_items() {
    // RFC 3501 §6.3.10, RFC 9051 and RFC 7162 items.
    assert_eq!(
        ok("A042 STATUS blurdybloop (UIDNEXT MESSAGES)"),
        Command::Status {
            mailbox: b"blurdybloop".to_vec(),
            items: vec![StatusItem::UidNext, StatusItem::Messages]
        }
    );
    assert_eq!(
        ok("a STATUS x (recent uidvalidity unseen deleted size highestmodseq)"),
        Command::Status {
            mailbox: b"x".to_vec(),
            items: vec![
                StatusItem::Recent,
                StatusItem::UidValidity,
                StatusItem::Unseen,
                StatusItem::Deleted,
                StatusItem::Size,
                StatusItem::HighestModSeq
            ]
        }
    );
    assert_eq!(err("a STATUS x").message, "STATUS needs status items");
    assert_eq!(err("a STATUS x ()").message, "STATUS: empty list");
    assert_eq!(
        err("a STATUS x (FOO)").message,
        "STATUS: unknown status item FOO"
    );
}

#[test]
fn append_with_flags_date_and_literal() {
    let msg = b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\nSubject: afternoon meeting\r\n\r\nHello Joe\r\n";
    let mut input =
        format!("A003 APPEND saved-messages (\\Seen) {{{}}}\r\n", msg.len()).into_bytes();
    input.extend_from_slice(msg);
    input.extend_from_slice(b"\r\n");
    assert_eq!(
        ok_bytes(&input),
        Command::Append {
            mailbox: b"saved-messages".to_vec(),
            flags: strings(&["\\Seen"]),
            date: None,
            message: msg.to_vec()
        }
    );
    assert_eq!(
        ok_bytes(b"a APPEND INBOX (\\seen $Junk) \"07-Feb-1994 21:52:25 -0800\" {3+}\r\nabc\r\n"),
        Command::Append {
            mailbox: b"INBOX".to_vec(),
            flags: strings(&["\\Seen", "$Junk"]),
            date: Some(760_686_745),
            message: b"abc".to_vec()
        }
    );
    assert_eq!(
        ok_bytes(b"a APPEND INBOX \" 7-Feb-1994 21:52:25 +0000\" ~{3}\r\n\0\x01\x02\r\n"),
        Command::Append {
            mailbox: b"INBOX".to_vec(),
            flags: vec![],
            date: Some(760_657_945),
            message: b"\0\x01\x02".to_vec()
        }
    );
    assert_eq!(
        ok_bytes(b"a APPEND INBOX () {0}\r\n\r\n"),
        Command::Append {
            mailbox: b"INBOX".to_vec(),
            flags: vec![],
            date: None,
            message: vec![]
        }
    );
    assert_eq!(
        err("a APPEND INBOX").message,
        "APPEND needs a message literal"
    );
    assert_eq!(
        err("a APPEND INBOX \"hello\"").message,
        "APPEND: bad date-time"
    );
    assert_eq!(
        err("a APPEND INBOX (\\Recent) {1}").message,
        "APPEND: \\Recent cannot be set"
    );
    assert_eq!(
        err("a APPEND INBOX \"07-Feb-1994 21:52:25 -0800\"").message,
        "APPEND needs a message literal"
    );
}

#[test]
fn date_time_parsing() {
    assert_eq!(parse_date_time(b"01-Jan-1970 00:00:00 +0000"), Some(0));
    assert_eq!(parse_date_time(b"\"01-Jan-1970 01:00:00 +0100\""), Some(0));
    assert_eq!(
        parse_date_time(b"17-Jul-1996 02:44:25 -0700"),
        Some(837_596_665)
    );
    assert_eq!(
        parse_date_time(b"29-Feb-2024 12:00:00 +0000"),
        Some(1_709_208_000)
    );
    assert_eq!(parse_date_time(b"29-Feb-2023 12:00:00 +0000"), None);
    assert_eq!(parse_date_time(b"17-Jux-1996 02:44:25 -0700"), None);
    assert_eq!(parse_date_time(b"17-Jul-1996 24:44:25 -0700"), None);
    assert_eq!(parse_date_time(b"17-Jul-1996 02:44:25 0700"), None);
    assert_eq!(parse_date_time(b"17-Jul-1996 02:44:25 -0700x"), None);
    assert_eq!(parse_date_time(b""), None);
}

#[test]
fn search_keys_of_rfc_3501() {
    use SearchKey as K;
    let keys = |line: &str| match ok(line) {
        Command::Search(s) => s,
        other => panic!("{other:?}"),
    };
    // RFC 3501 §6.4.4.
    let s = keys("A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"");
    assert_eq!(
        s,
        Search {
            uid: false,
            returns: None,
            charset: None,
            keys: vec![
                K::Flagged,
                K::Since(Date {
                    year: 1994,
                    month: 2,
                    day: 1
                }),
                K::Not(Box::new(K::From(b"Smith".to_vec())))
            ]
        }
    );
    let s = keys("A284 SEARCH CHARSET UTF-8 TEXT {6}\r\nXXXXXX");
    assert_eq!(s.charset.as_deref(), Some("UTF-8"));
    assert_eq!(s.keys, vec![K::Text(b"XXXXXX".to_vec())]);
    let s = keys(
        "a UID SEARCH ALL ANSWERED BCC b BODY \"x y\" CC c DELETED DRAFT FROM f \
         HEADER Message-ID <a@b> KEYWORD $Junk LARGER 100 NEW OLD ON \"05-Mar-2020\" \
         RECENT SEEN SENTBEFORE 1-jan-2000 SENTON 02-Jan-2000 SENTSINCE 3-Jan-2000 \
         BEFORE 4-Jan-2000 SMALLER 5 SUBJECT s TO t UID 1:* UNANSWERED UNDELETED UNDRAFT \
         UNFLAGGED UNKEYWORD $Done UNSEEN 2,4:6 * $ OR SEEN (DRAFT FLAGGED) MODSEQ 620162338",
    );
    let d = |year, month, day| Date { year, month, day };
    assert!(s.uid);
    assert_eq!(
        s.keys,
        vec![
            K::All,
            K::Answered,
            K::Bcc(b"b".to_vec()),
            K::Body(b"x y".to_vec()),
            K::Cc(b"c".to_vec()),
            K::Deleted,
            K::Draft,
            K::From(b"f".to_vec()),
            K::Header("Message-ID".into(), b"<a@b>".to_vec()),
            K::Keyword("$Junk".into()),
            K::Larger(100),
            K::New,
            K::Old,
            K::On(d(2020, 3, 5)),
            K::Recent,
            K::Seen,
            K::SentBefore(d(2000, 1, 1)),
            K::SentOn(d(2000, 1, 2)),
            K::SentSince(d(2000, 1, 3)),
            K::Before(d(2000, 1, 4)),
            K::Smaller(5),
            K::Subject(b"s".to_vec()),
            K::To(b"t".to_vec()),
            K::Uid(set(&[(1, 0)])),
            K::Unanswered,
            K::Undeleted,
            K::Undraft,
            K::Unflagged,
            K::Unkeyword("$Done".into()),
            K::Unseen,
            K::Seq(set(&[(2, 2), (4, 6)])),
            K::Seq(set(&[(0, 0)])),
            K::Saved,
            K::Or(
                Box::new(K::Seen),
                Box::new(K::And(vec![K::Draft, K::Flagged]))
            ),
            K::ModSeq(620162338),
        ]
    );
}

#[test]
fn search_return_options_and_modseq_entry() {
    use SearchKey as K;
    // RFC 4731 §4; RFC 5182 §2.4; RFC 7162 §3.1.5.
    let Command::Search(s) =
        ok("A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"")
    else {
        panic!()
    };
    assert_eq!(
        s.returns,
        Some(vec![SearchReturn::Min, SearchReturn::Count])
    );
    assert_eq!(s.keys.len(), 3);
    let Command::Search(s) = ok("A301 UID SEARCH RETURN (SAVE MAX ALL) CHARSET us-ascii UNSEEN")
    else {
        panic!()
    };
    assert_eq!(
        s.returns,
        Some(vec![
            SearchReturn::Save,
            SearchReturn::Max,
            SearchReturn::All
        ])
    );
    assert_eq!(s.charset.as_deref(), Some("US-ASCII"));
    let Command::Search(s) = ok("A283 SEARCH RETURN () FLAGGED") else {
        panic!()
    };
    assert_eq!(s.returns, Some(vec![]));
    let Command::Search(s) = ok("a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338") else {
        panic!()
    };
    assert_eq!(s.keys, vec![K::ModSeq(620162338)]);
    let Command::Search(s) = ok("a SEARCH OR NOT (UID 1:* LARGER 1) (((SEEN)))") else {
        panic!()
    };
    assert!(matches!(&s.keys[..], [K::Or(..)]));
}

#[test]
fn search_errors_carry_the_tag_and_say_what_is_wrong() {
    let e = err("t9 SEARCH");
    assert_eq!(e.tag.as_deref(), Some("t9"));
    assert_eq!(e.message, "SEARCH needs search keys");
    assert_eq!(
        err("t SEARCH FOO").message,
        "SEARCH: unknown search key FOO"
    );
    assert_eq!(err("t SEARCH SINCE").message, "SEARCH: SINCE needs a date");
    assert_eq!(
        err("t SEARCH SINCE 32-Jan-2000").message,
        "SEARCH: no such day"
    );
    assert_eq!(
        err("t SEARCH SINCE 1-Foo-2000").message,
        "SEARCH: bad date (expected d-Mon-yyyy)"
    );
    assert_eq!(
        err("t SEARCH ()").message,
        "SEARCH: empty parenthesized search list"
    );
    assert!(err("t SEARCH (SEEN").message.starts_with("SEARCH"));
    assert!(err("t SEARCH OR SEEN").message.starts_with("SEARCH"));
    assert!(err("t SEARCH 0").message.contains("0 is not"));
    assert!(err("t SEARCH 4294967296").message.contains("too large"));
    assert_eq!(
        err("t SEARCH CHARSET UTF-8").message,
        "SEARCH needs search keys"
    );
}

#[test]
fn nesting_is_capped_without_recursion() {
    let deep = format!("t SEARCH {}SEEN{}", "(".repeat(33), ")".repeat(33));
    assert_eq!(err(&deep).message, "SEARCH: search keys too deeply nested");
    let ok32 = format!("t SEARCH {}SEEN{}", "(".repeat(32), ")".repeat(32));
    ok(&ok32);
    let nots = format!("t SEARCH {}SEEN", "NOT ".repeat(100_000));
    assert_eq!(err(&nots).message, "SEARCH: search keys too deeply nested");
    let ors = format!("t SEARCH {}SEEN{}", "OR SEEN ".repeat(100_000), "");
    assert_eq!(err(&ors).message, "SEARCH: search keys too deeply nested");
    let wide = format!("t SEARCH {}", "OR SEEN SEEN ".repeat(50_000).trim_end());
    ok(&wide);
}

#[test]
fn sequence_sets() {
    let fetch_set = |s: &str| match ok(&format!("a FETCH {s} FLAGS")) {
        Command::Fetch(f) => f.set,
        other => panic!("{other:?}"),
    };
    assert_eq!(fetch_set("1"), set(&[(1, 1)]));
    assert_eq!(
        fetch_set("2:4,*,7:*,4294967295"),
        set(&[(2, 4), (0, 0), (7, 0), (u32::MAX, u32::MAX)])
    );
    assert_eq!(fetch_set("5:2"), set(&[(5, 2)]));
    for bad in ["0", "1:0", "1,", ",1", "1::2", "4294967296", "a", "1:", "$"] {
        assert!(
            command(format!("a FETCH {bad} FLAGS\r\n").as_bytes()).is_err(),
            "{bad}"
        );
    }
    let many = vec!["1"; 100_000].join(",");
    assert_eq!(fetch_set(&many).0.len(), 100_000);
    let too_many = vec!["1"; 100_001].join(",");
    assert!(
        err(&format!("a FETCH {too_many} FLAGS"))
            .message
            .contains("too many ranges")
    );
}

fn fetch_attrs(line: &str) -> Vec<FetchAttr> {
    match ok(line) {
        Command::Fetch(f) => f.attrs,
        other => panic!("{other:?}"),
    }
}

#[test]
fn fetch_macros_and_simple_items() {
    use FetchAttr as A;
    assert_eq!(
        fetch_attrs("a FETCH 1 FAST"),
        vec![A::Flags, A::InternalDate, A::Rfc822Size]
    );
    assert_eq!(
        fetch_attrs("a FETCH 1 all"),
        vec![A::Flags, A::InternalDate, A::Rfc822Size, A::Envelope]
    );
    assert_eq!(
        fetch_attrs("a FETCH 1 FULL"),
        vec![
            A::Flags,
            A::InternalDate,
            A::Rfc822Size,
            A::Envelope,
            A::Body
        ]
    );
    assert_eq!(
        fetch_attrs(
            "a FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY BODYSTRUCTURE \
             MODSEQ RFC822 RFC822.HEADER RFC822.TEXT)"
        ),
        vec![
            A::Uid,
            A::Flags,
            A::InternalDate,
            A::Rfc822Size,
            A::Envelope,
            A::Body,
            A::BodyStructure,
            A::ModSeq,
            A::Rfc822,
            A::Rfc822Header,
            A::Rfc822Text
        ]
    );
    assert_eq!(err("a FETCH 1").message, "FETCH needs data items");
    assert_eq!(err("a FETCH 1 FOO").message, "FETCH: unknown data item FOO");
    assert_eq!(
        err("a FETCH 1 (FLAGS FAST)").message,
        "FETCH: unknown data item FAST"
    );
    assert_eq!(err("a FETCH 1 ()").message, "FETCH: empty list");
}

#[test]
fn fetch_body_sections_and_partials() {
    use FetchAttr as A;
    let body = |peek, part: &[u32], text, partial| A::BodySection {
        peek,
        section: Section {
            part: part.to_vec(),
            text,
        },
        partial,
    };
    // RFC 3501 §6.4.5.
    assert_eq!(
        fetch_attrs("A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])"),
        vec![
            A::Flags,
            body(
                false,
                &[],
                Some(SectionText::HeaderFields(strings(&["DATE", "FROM"]))),
                None
            )
        ]
    );
    assert_eq!(
        fetch_attrs(
            "a FETCH 1 (BODY[] BODY.PEEK[1.2.3] body[1.2.MIME] BODY[3.HEADER] BODY[TEXT]<0.2048> \
             BODY.PEEK[HEADER.FIELDS.NOT (\"Received\" x-spam)] BODY[4.TEXT] BODY[]<10.1>)"
        ),
        vec![
            body(false, &[], None, None),
            body(true, &[1, 2, 3], None, None),
            body(false, &[1, 2], Some(SectionText::Mime), None),
            body(false, &[3], Some(SectionText::Header), None),
            body(
                false,
                &[],
                Some(SectionText::Text),
                Some(Partial {
                    offset: 0,
                    length: 2048
                })
            ),
            body(
                true,
                &[],
                Some(SectionText::HeaderFieldsNot(strings(&[
                    "Received", "x-spam"
                ]))),
                None
            ),
            body(false, &[4], Some(SectionText::Text), None),
            body(
                false,
                &[],
                None,
                Some(Partial {
                    offset: 10,
                    length: 1
                })
            ),
        ]
    );
    // RFC 3516 §4.
    assert_eq!(
        fetch_attrs("a FETCH 1 (BINARY[1.2]<0.100> BINARY.PEEK[] BINARY.SIZE[3])"),
        vec![
            A::Binary {
                peek: false,
                part: vec![1, 2],
                partial: Some(Partial {
                    offset: 0,
                    length: 100
                })
            },
            A::Binary {
                peek: true,
                part: vec![],
                partial: None
            },
            A::BinarySize { part: vec![3] }
        ]
    );
    for bad in [
        "BODY[MIME]",
        "BODY[0]",
        "BODY[1.]",
        "BODY[HEADER.FIELDS]",
        "BODY[HEADER.FIELDS ()]",
        "BODY[FOO]",
        "BODY[1",
        "BODY.PEEK",
        "BODY[]<1>",
        "BODY[]<1.0>",
        "BINARY[TEXT]",
        "BINARY.SIZE[1]<0.1>",
    ] {
        assert!(
            command(format!("a FETCH 1 {bad}\r\n").as_bytes()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn fetch_modifiers_of_rfc_7162() {
    let f = |line: &str| match ok(line) {
        Command::Fetch(f) => f,
        other => panic!("{other:?}"),
    };
    // RFC 7162 §3.1.4.1 and §3.2.6.
    let x = f("s100 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)");
    assert!(x.uid);
    assert_eq!((x.changed_since, x.vanished), (Some(12345), false));
    let x = f("s100 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)");
    assert_eq!((x.changed_since, x.vanished), (Some(12345), true));
    assert!(
        err("a FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED)")
            .message
            .contains("VANISHED")
    );
    assert!(
        err("a UID FETCH 1 FLAGS (VANISHED)")
            .message
            .contains("VANISHED")
    );
    assert!(
        err("a FETCH 1 FLAGS (CHANGEDSINCE 9223372036854775808)")
            .message
            .contains("too large")
    );
}

#[test]
fn store_forms() {
    let s = |line: &str| match ok(line) {
        Command::Store(s) => s,
        other => panic!("{other:?}"),
    };
    // RFC 3501 §6.4.6.
    assert_eq!(
        s("A003 STORE 2:4 +FLAGS (\\Deleted)"),
        Store {
            uid: false,
            set: set(&[(2, 4)]),
            unchanged_since: None,
            mode: StoreMode::Add,
            silent: false,
            flags: strings(&["\\Deleted"])
        }
    );
    // RFC 7162 §3.1.3.
    assert_eq!(
        s("d105 UID STORE 7,5,9 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)"),
        Store {
            uid: true,
            set: set(&[(7, 7), (5, 5), (9, 9)]),
            unchanged_since: Some(320162338),
            mode: StoreMode::Add,
            silent: true,
            flags: strings(&["\\Deleted"])
        }
    );
    let x = s("a STORE 1 -flags.silent \\SEEN $Junk");
    assert_eq!((x.mode, x.silent), (StoreMode::Remove, true));
    assert_eq!(x.flags, strings(&["\\Seen", "$Junk"]));
    let x = s("a STORE 1 FLAGS ()");
    assert_eq!((x.mode, x.flags), (StoreMode::Replace, vec![]));
    let x = s("a STORE 1 (UNCHANGEDSINCE 0) FLAGS (\\draft)");
    assert_eq!(x.unchanged_since, Some(0));
    assert_eq!(x.flags, strings(&["\\Draft"]));
    assert_eq!(
        err("a STORE 1 FLAGS (\\X-Custom)").message,
        "STORE: \\X-Custom is not a system flag"
    );
    assert_eq!(
        err("a STORE 1 FLAGS (\\*)").message,
        "STORE: \\* is not a flag"
    );
    assert_eq!(
        err("a STORE 1 FLAGS \\Recent").message,
        "STORE: \\Recent cannot be set"
    );
    assert_eq!(
        err("a STORE 1 LABELS (x)").message,
        "STORE: expected FLAGS, +FLAGS or -FLAGS"
    );
    assert_eq!(err("a STORE 1 +FLAGS").message, "STORE needs flags");
    assert_eq!(
        err("a STORE 1").message,
        "STORE needs FLAGS, +FLAGS or -FLAGS"
    );
}

#[test]
fn copy_and_move() {
    // RFC 3501 §6.4.7, RFC 6851 §4.
    assert_eq!(
        ok("A003 COPY 2:4 MEETING"),
        Command::Copy {
            uid: false,
            set: set(&[(2, 4)]),
            mailbox: b"MEETING".to_vec()
        }
    );
    assert_eq!(
        ok("a UID MOVE 42:69 foo"),
        Command::Move {
            uid: true,
            set: set(&[(42, 69)]),
            mailbox: b"foo".to_vec()
        }
    );
    assert_eq!(
        ok("a uid copy 1 \"Sent Items\""),
        Command::Copy {
            uid: true,
            set: set(&[(1, 1)]),
            mailbox: b"Sent Items".to_vec()
        }
    );
    assert_eq!(err("a MOVE 1").message, "MOVE needs a mailbox name");
}

#[test]
fn id_and_quota() {
    // RFC 2971 §4, RFC 9208 §4.
    assert_eq!(
        ok("a023 ID (\"name\" \"sodr\" \"version\" \"19.34\" \"vendor\" NIL)"),
        Command::Id(vec![
            ("name".into(), Some("sodr".into())),
            ("version".into(), Some("19.34".into())),
            ("vendor".into(), None)
        ])
    );
    assert_eq!(ok("a ID NIL"), Command::Id(vec![]));
    assert!(err("a ID (\"name\")").message.starts_with("ID"));
    assert_eq!(
        ok("G0001 GETQUOTA \"!partition/sda4\""),
        Command::GetQuota(b"!partition/sda4".to_vec())
    );
    assert_eq!(
        ok("G0002 GETQUOTAROOT INBOX"),
        Command::GetQuotaRoot(b"INBOX".to_vec())
    );
}

#[test]
fn framed_commands_parse() {
    use crate::frame::{Frame, FrameLimits, Framer};
    let mut f = Framer::new(FrameLimits::default());
    f.push(b"a LOGIN {3}\r\njoe {6+}\r\nsecret\r\nb SELECT \"INBOX\"\n");
    assert_eq!(f.next(), Some(Frame::Continue));
    let Some(Frame::Command(c)) = f.next() else {
        panic!()
    };
    assert_eq!(
        command(&c).unwrap().command,
        Command::Login {
            user: b"joe".to_vec(),
            password: b"secret".to_vec()
        }
    );
    let Some(Frame::Command(c)) = f.next() else {
        panic!()
    };
    assert!(matches!(
        command(&c).unwrap().command,
        Command::Select { .. }
    ));
}

#[test]
fn an_empty_reference_may_be_left_out_as_imaplib_does() {
    match command(b"a LIST  *\r\n").unwrap().command {
        Command::List(l) => {
            assert!(l.reference.is_empty());
            assert_eq!(l.patterns, vec![b"*".to_vec()]);
        }
        c => panic!("{c:?}"),
    }
    match command(b"a LSUB  %\r\n").unwrap().command {
        Command::Lsub { reference, pattern } => {
            assert!(reference.is_empty());
            assert_eq!(pattern, b"%");
        }
        c => panic!("{c:?}"),
    }
}
