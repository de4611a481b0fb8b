//! Fuzz target: address parsing (`Mailbox`, `Domain`, `ReversePath`, `ForwardPath`).
//!
//! Arbitrary and grammar-shaped strings never make a parser panic; whatever is accepted
//! displays back to text that parses to an equal value (with the same SMTPUTF8 flag),
//! stays within RFC 5321 §4.5.3.1's limits as stored (local part 64, domain 255, label
//! 63 octets), and is ASCII unless UTF-8 was allowed; over-long parts are refused with
//! `TooLong`. Seeds: `tests/corpus/address/*.txt`, one escaped candidate per line, tried
//! as a mailbox, a domain and both kinds of path.

use golub_fuzzkit as support;

use golub_types::{AddressError, Domain, ForwardPath, Mailbox, ReversePath};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

#[global_allocator]
static ALLOC: support::Counting = support::Counting;

fn check_domain(d: &Domain, utf8: bool) -> Result<(), TestCaseError> {
    let s = d.as_str();
    prop_assert!(s.len() <= 255, "domain of {} octets: {:?}", s.len(), s);
    if !d.is_literal() {
        prop_assert!(
            s.split('.').all(|l| l.len() <= 63),
            "label over 63 octets: {:?}",
            s
        );
    }
    prop_assert!(utf8 || s.is_ascii());
    prop_assert_eq!(Domain::parse(&d.to_string(), utf8), Ok(d.clone()));
    Ok(())
}

fn check_mailbox(m: &Mailbox, utf8: bool) -> Result<(), TestCaseError> {
    prop_assert!(m.local_part().len() <= 64);
    prop_assert!(utf8 || !m.is_utf8());
    check_domain(m.domain(), utf8)?;
    let text = m.to_string();
    prop_assert_eq!(
        Mailbox::parse(&text, utf8),
        Ok(m.clone()),
        "displayed as {:?}",
        text
    );
    let _ = m.canonical();
    Ok(())
}

fn check(s: &str) -> Result<(), TestCaseError> {
    for utf8 in [false, true] {
        if let Ok(m) = Mailbox::parse(s, utf8) {
            check_mailbox(&m, utf8)?;
            if !utf8 {
                prop_assert_eq!(Mailbox::parse(s, true), Ok(m));
            }
        }
        if let Ok(d) = Domain::parse(s, utf8) {
            check_domain(&d, utf8)?;
        }
        if let Ok(p) = ReversePath::parse(s, utf8) {
            if let Some(m) = p.mailbox() {
                check_mailbox(m, utf8)?;
            }
            let text = p.to_string();
            if text.len() <= 256 {
                prop_assert_eq!(
                    ReversePath::parse(&text, utf8),
                    Ok(p),
                    "displayed as {:?}",
                    text
                );
            }
        }
        if let Ok(p) = ForwardPath::parse(s, utf8) {
            if let Some(m) = p.mailbox() {
                check_mailbox(m, utf8)?;
            }
            let text = p.to_string();
            if text.len() <= 256 {
                prop_assert_eq!(
                    ForwardPath::parse(&text, utf8),
                    Ok(p),
                    "displayed as {:?}",
                    text
                );
            }
        }
    }
    Ok(())
}

#[test]
fn address_seeds_never_panic_and_round_trip() {
    let mut n = 0;
    for (path, text) in support::seeds(env!("CARGO_MANIFEST_DIR"), "address") {
        for line in support::seed_lines(&text) {
            let bytes = support::unescape(line);
            check(&String::from_utf8_lossy(&bytes))
                .unwrap_or_else(|e| panic!("{}: {line}: {e}", path.display()));
            n += 1;
        }
    }
    assert!(n >= 40, "only {n} address seeds");
}

fn local() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]{1,12}(\\.[a-zA-Z0-9]{1,6}){0,3}",
        "\"([ -!#-\\[\\]-~]|\\\\[ -~]|[éü]){0,16}\"",
        "[a-zéüßİ]{1,8}",
        prop::sample::select(vec![63usize, 64, 65, 100]).prop_map(|n| "a".repeat(n)),
        "[a-z.\"\\\\@ ]{0,10}",
    ]
}

fn domain() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9]([a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?(\\.[a-zA-Z0-9]([a-z0-9-]{0,6}[a-z0-9])?){0,4}",
        1 => "[a-zA-ZüİßΣ\u{212A}\u{130}]{1,40}(\\.[a-zİ]{1,40}){0,6}",
        1 => "\\[(25[0-5]|2[0-4][0-9]|1?[0-9]{1,2})(\\.(25[0-5]|2[0-4][0-9]|1?[0-9]{1,2})){3}\\]",
        1 => "\\[(IPv6|ipv6|IPV6):[0-9a-fA-F:.]{2,40}\\]",
        1 => "\\[[a-zA-Z0-9-]{1,5}:[!-Z^-~]{1,10}\\]",
        1 => prop::sample::select(vec![62usize, 63, 64, 250, 254, 255, 256]).prop_map(|n| {
            let label = "b".repeat(n.min(63));
            let mut d = label.clone();
            while d.len() < n { d.push('.'); d.push_str(&label); }
            d.truncate(n);
            d.trim_end_matches('.').to_string()
        }),
        1 => "[a-z0-9.\\[\\]:-]{0,12}",
    ]
}

fn candidate() -> impl Strategy<Value = String> {
    let route = prop::collection::vec(domain(), 0..3).prop_map(|hops| {
        if hops.is_empty() {
            String::new()
        } else {
            format!("@{}:", hops.join(",@"))
        }
    });
    (local(), domain(), route, 0u8..4).prop_map(|(l, d, r, shape)| match shape {
        0 => format!("{l}@{d}"),
        1 => format!("<{r}{l}@{d}>"),
        2 => d,
        _ => format!("<{l}>"),
    })
}

#[test]
fn arbitrary_strings_never_panic_and_accepted_ones_round_trip() {
    support::fuzz("address_arbitrary", 3000, any::<String>(), |s| check(&s));
}

#[test]
fn address_shaped_strings_never_panic_and_accepted_ones_round_trip() {
    support::fuzz("address_shaped", 3000, candidate(), |s| check(&s));
}

#[test]
fn over_long_parts_are_refused() {
    let atext = "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]";
    let long_local = proptest::string::string_regex(&format!("{atext}{{65,200}}")).unwrap();
    let long_label = "[a-z]{64,120}";
    let long_domain = prop::collection::vec("[a-z]{1,63}", 5..40)
        .prop_map(|l| l.join("."))
        .prop_filter("over 255 octets", |d| d.len() > 255);
    let cases = prop_oneof![
        (long_local, "[a-z]{1,10}\\.org").prop_map(|(l, d)| (format!("{l}@{d}"), 0)),
        ("[a-z]{1,10}", long_label).prop_map(|(l, d)| (format!("{l}@{d}.org"), 1)),
        ("[a-z]{1,10}", long_domain).prop_map(|(l, d)| (format!("{l}@{d}"), 2)),
        (
            "[a-z]{40,64}",
            "[a-z]{63}\\.[a-z]{63}\\.[a-z]{63}\\.[a-z]{63}"
        )
            .prop_map(|(l, d)| (format!("<{l}@{d}>"), 3)),
    ];
    support::fuzz("address_too_long", 1000, cases, |(s, what)| {
        for utf8 in [false, true] {
            if what == 3 {
                // A whole path over 256 octets (RFC 5321 §4.5.3.1.3).
                prop_assert_eq!(ReversePath::parse(&s, utf8), Err(AddressError::TooLong));
                prop_assert_eq!(ForwardPath::parse(&s, utf8), Err(AddressError::TooLong));
            } else {
                prop_assert_eq!(
                    Mailbox::parse(&s, utf8),
                    Err(AddressError::TooLong),
                    "{}",
                    s
                );
            }
        }
        Ok(())
    });
}
