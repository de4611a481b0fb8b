//! A raw RFC 5322 address-list reader for ENVELOPE: names stay as written (encoded-words
//! are not decoded, quoted strings lose their quotes), groups become RFC 3501 §7.4.2
//! start and end markers.

/// One ENVELOPE address or group marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Mailbox {
        name: Option<Vec<u8>>,
        adl: Option<Vec<u8>>,
        mailbox: Vec<u8>,
        host: Vec<u8>,
    },
    /// `(NIL NIL "name" NIL)`.
    GroupStart(Vec<u8>),
    /// `(NIL NIL NIL NIL)`.
    GroupEnd,
}

/// What Dovecot writes for the missing halves of a broken address, so that no ordinary
/// address ever has a NIL host (which would read as a group marker).
const MISSING_MAILBOX: &[u8] = b"MISSING_MAILBOX";
const MISSING_DOMAIN: &[u8] = b"MISSING_DOMAIN";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(Vec<u8>),
    Quoted(Vec<u8>),
    Comment(Vec<u8>),
    Special(u8),
}

fn tokenize(s: &[u8]) -> Vec<Token> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'(' => {
                let mut depth = 0usize;
                let mut text = Vec::new();
                while i < s.len() {
                    let c = s[i];
                    i += 1;
                    match c {
                        b'\\' if i < s.len() => {
                            text.push(s[i]);
                            i += 1;
                        }
                        b'(' => {
                            if depth > 0 {
                                text.push(c);
                            }
                            depth += 1;
                        }
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                            text.push(c);
                        }
                        b'\r' | b'\n' => {}
                        _ => text.push(c),
                    }
                }
                out.push(Token::Comment(text));
            }
            b'"' => {
                i += 1;
                let mut text = Vec::new();
                while i < s.len() {
                    let c = s[i];
                    i += 1;
                    match c {
                        b'\\' if i < s.len() => {
                            text.push(s[i]);
                            i += 1;
                        }
                        b'"' => break,
                        b'\r' | b'\n' => {}
                        _ => text.push(c),
                    }
                }
                out.push(Token::Quoted(text));
            }
            b'[' => {
                let start = i;
                while i < s.len() && s[i] != b']' {
                    i += 1;
                }
                i = (i + 1).min(s.len());
                out.push(Token::Word(s[start..i].to_vec()));
            }
            b'<' | b'>' | b',' | b':' | b';' | b'@' => {
                out.push(Token::Special(c));
                i += 1;
            }
            _ => {
                let start = i;
                while i < s.len()
                    && !matches!(
                        s[i],
                        b' ' | b'\t'
                            | b'\r'
                            | b'\n'
                            | b'('
                            | b'"'
                            | b'['
                            | b'<'
                            | b'>'
                            | b','
                            | b':'
                            | b';'
                            | b'@'
                    )
                {
                    i += 1;
                }
                out.push(Token::Word(s[start..i].to_vec()));
            }
        }
    }
    out
}

/// Parses an address-list header value.
pub fn parse_list(value: &[u8]) -> Vec<Item> {
    let tokens = tokenize(value);
    let mut items = Vec::new();
    let mut in_group = false;
    let mut current: Vec<Token> = Vec::new();
    let mut in_angle = false;
    for tok in tokens {
        match tok {
            Token::Special(b'<') => {
                in_angle = true;
                current.push(tok);
            }
            Token::Special(b'>') => {
                in_angle = false;
                current.push(tok);
            }
            Token::Special(b',') if !in_angle => flush(&mut current, &mut items),
            Token::Special(b':') if !in_angle && !in_group && !has_at(&current) => {
                let name = phrase(&current).unwrap_or_default();
                current.clear();
                items.push(Item::GroupStart(name));
                in_group = true;
            }
            Token::Special(b';') if !in_angle => {
                flush(&mut current, &mut items);
                if in_group {
                    items.push(Item::GroupEnd);
                    in_group = false;
                }
            }
            _ => current.push(tok),
        }
    }
    flush(&mut current, &mut items);
    if in_group {
        items.push(Item::GroupEnd);
    }
    items
}

fn has_at(tokens: &[Token]) -> bool {
    tokens.contains(&Token::Special(b'@'))
}

/// The words of a phrase joined by single spaces; None when there are none.
fn phrase(tokens: &[Token]) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::new();
    let mut any = false;
    for t in tokens {
        let w = match t {
            Token::Word(w) | Token::Quoted(w) => w,
            Token::Special(c) if *c != b'<' && *c != b'>' => {
                out.push(*c);
                any = true;
                continue;
            }
            _ => continue,
        };
        if any && !out.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(w);
        any = true;
    }
    any.then_some(out)
}

/// Local part or domain: the tokens joined without spaces, comments dropped.
fn joined(tokens: &[Token]) -> Vec<u8> {
    let mut out = Vec::new();
    for t in tokens {
        match t {
            Token::Word(w) => out.extend_from_slice(w),
            Token::Quoted(w) => {
                out.push(b'"');
                out.extend_from_slice(w);
                out.push(b'"');
            }
            Token::Special(c) => out.push(*c),
            Token::Comment(_) => {}
        }
    }
    out
}

fn flush(current: &mut Vec<Token>, items: &mut Vec<Item>) {
    let tokens = std::mem::take(current);
    if tokens
        .iter()
        .all(|t| matches!(t, Token::Comment(_) | Token::Special(b'>')))
    {
        return;
    }
    if let Some(lt) = tokens.iter().position(|t| *t == Token::Special(b'<')) {
        let name = phrase(&tokens[..lt]);
        let inner_end = tokens[lt..]
            .iter()
            .position(|t| *t == Token::Special(b'>'))
            .map_or(tokens.len(), |i| lt + i);
        let mut inner = &tokens[lt + 1..inner_end];
        // RFC 5322 obs-route: "@a,@b:" before the addr-spec (commas in angles were kept).
        let mut adl = None;
        if inner.first() == Some(&Token::Special(b'@'))
            && let Some(colon) = inner.iter().position(|t| *t == Token::Special(b':'))
        {
            adl = Some(joined(&inner[..colon]));
            inner = &inner[colon + 1..];
        }
        let (mailbox, host) = split_addr_spec(inner);
        items.push(Item::Mailbox {
            name,
            adl,
            mailbox,
            host,
        });
    } else {
        // A bare addr-spec; a comment may carry the name ("a@b (Name)").
        let name = tokens.iter().rev().find_map(|t| match t {
            Token::Comment(c) if !c.is_empty() => Some(c.clone()),
            _ => None,
        });
        let (mailbox, host) = split_addr_spec(&tokens);
        items.push(Item::Mailbox {
            name,
            adl: None,
            mailbox,
            host,
        });
    }
}

fn split_addr_spec(tokens: &[Token]) -> (Vec<u8>, Vec<u8>) {
    let (local, domain) = match tokens.iter().rposition(|t| *t == Token::Special(b'@')) {
        Some(at) => (joined(&tokens[..at]), joined(&tokens[at + 1..])),
        None => (joined(tokens), Vec::new()),
    };
    let local = if local.is_empty() {
        MISSING_MAILBOX.to_vec()
    } else {
        local
    };
    let domain = if domain.is_empty() {
        MISSING_DOMAIN.to_vec()
    } else {
        domain
    };
    (local, domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mb(name: Option<&str>, mailbox: &str, host: &str) -> Item {
        Item::Mailbox {
            name: name.map(|n| n.as_bytes().to_vec()),
            adl: None,
            mailbox: mailbox.as_bytes().to_vec(),
            host: host.as_bytes().to_vec(),
        }
    }

    #[test]
    fn display_names_stay_raw() {
        assert_eq!(
            parse_list(b"\"Doe, John\" <john@example.com>, =?UTF-8?Q?J=C3=B6rg?= <j@x.de>"),
            vec![
                mb(Some("Doe, John"), "john", "example.com"),
                mb(Some("=?UTF-8?Q?J=C3=B6rg?="), "j", "x.de"),
            ]
        );
    }

    #[test]
    fn bare_address_takes_its_comment_as_name() {
        assert_eq!(
            parse_list(b"john.doe@example.com (John Doe)"),
            vec![mb(Some("John Doe"), "john.doe", "example.com")]
        );
    }

    #[test]
    fn groups_have_start_and_end_markers() {
        assert_eq!(
            parse_list(b"Team: a@x.org, B <b@x.org>;, c@y.org"),
            vec![
                Item::GroupStart(b"Team".to_vec()),
                mb(None, "a", "x.org"),
                mb(Some("B"), "b", "x.org"),
                Item::GroupEnd,
                mb(None, "c", "y.org"),
            ]
        );
        assert_eq!(
            parse_list(b"undisclosed-recipients:;"),
            vec![
                Item::GroupStart(b"undisclosed-recipients".to_vec()),
                Item::GroupEnd
            ]
        );
    }

    #[test]
    fn source_route_is_the_adl() {
        assert_eq!(
            parse_list(b"<@relay1,@relay2:user@example.com>"),
            vec![Item::Mailbox {
                name: None,
                adl: Some(b"@relay1,@relay2".to_vec()),
                mailbox: b"user".to_vec(),
                host: b"example.com".to_vec(),
            }]
        );
    }

    #[test]
    fn broken_addresses_get_placeholders() {
        assert_eq!(
            parse_list(b"nobody"),
            vec![mb(None, "nobody", "MISSING_DOMAIN")]
        );
        assert_eq!(parse_list(b""), vec![]);
        assert_eq!(parse_list(b"  ,  "), vec![]);
    }
}
