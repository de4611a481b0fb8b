use super::*;
use crate::config::{DnsConfig, HumanDuration};
use hickory_resolver::proto::op::{Message, OpCode, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, AAAA, MX, SOA, TXT};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::UdpSocket;

fn mx(preference: u16, exchange: &str) -> Mx {
    Mx {
        preference,
        exchange: exchange.to_owned(),
    }
}

/// A deterministic random source: a fixed sequence, reduced below `n`.
fn seq(values: Vec<usize>) -> impl FnMut(usize) -> usize {
    let mut i = 0;
    move |n| {
        let v = values[i % values.len()];
        i += 1;
        v % n
    }
}

fn names(records: &[Mx]) -> Vec<&str> {
    records.iter().map(|r| r.exchange.as_str()).collect()
}

#[test]
fn mx_records_come_most_preferred_first() {
    let records = vec![
        mx(20, "B.example."),
        mx(5, "c.example"),
        mx(10, "a.example."),
    ];
    let ordered = order_mx("d", records, &Local::default(), &mut seq(vec![0])).unwrap();
    assert_eq!(names(&ordered), ["c.example", "a.example", "b.example"]);
}

#[test]
fn equal_preferences_are_shuffled_within_their_group_only() {
    let records = vec![
        mx(10, "a"),
        mx(10, "b"),
        mx(10, "c"),
        mx(20, "d"),
        mx(20, "e"),
        mx(5, "first"),
    ];
    let mut seen = HashSet::new();
    for seed in 0..50 {
        let mut random = seq(vec![seed, seed / 3 + 1, seed * 7 + 2, seed / 5]);
        let ordered = order_mx("d", records.clone(), &Local::default(), &mut random).unwrap();
        let n = names(&ordered);
        assert_eq!(n[0], "first");
        let mut mid: Vec<&str> = n[1..4].to_vec();
        mid.sort();
        assert_eq!(mid, ["a", "b", "c"]);
        let mut last: Vec<&str> = n[4..].to_vec();
        last.sort();
        assert_eq!(last, ["d", "e"]);
        seen.insert(n.join(","));
    }
    assert!(seen.len() > 3, "{seen:?}");
}

#[test]
fn a_lone_null_mx_means_no_mail() {
    let e = order_mx(
        "d.example",
        vec![mx(0, ".")],
        &Local::default(),
        &mut seq(vec![0]),
    )
    .unwrap_err();
    assert_eq!(e, RouteError::NullMx("d.example".into()));
    assert!(e.is_permanent());
    let reply = e.reply();
    assert_eq!(reply.code, 556);
    assert_eq!(reply.enhanced, Some(EnhancedCode(5, 1, 10)));
    // A null MX mixed with real ones is ignored.
    let ordered = order_mx(
        "d",
        vec![mx(0, "."), mx(10, "a")],
        &Local::default(),
        &mut seq(vec![0]),
    )
    .unwrap();
    assert_eq!(names(&ordered), ["a"]);
}

#[test]
fn our_own_mx_drops_itself_and_every_less_preferred_one() {
    let local = Local {
        hostnames: vec!["MX.Ours.example.".into()],
        addrs: vec![],
    };
    let records = vec![
        mx(5, "backup"),
        mx(10, "mx.ours.example"),
        mx(10, "peer"),
        mx(20, "late"),
    ];
    let ordered = order_mx("d", records, &local, &mut seq(vec![0])).unwrap();
    assert_eq!(names(&ordered), ["backup"]);
    let e = order_mx(
        "d",
        vec![mx(10, "mx.ours.example."), mx(20, "x")],
        &local,
        &mut seq(vec![0]),
    )
    .unwrap_err();
    assert_eq!(e, RouteError::Loop("d".into()));
    assert_eq!(e.reply().enhanced, Some(EnhancedCode(5, 4, 6)));
}

#[test]
fn every_error_carries_its_code() {
    let d = || "d".to_string();
    let cases = [
        (RouteError::NoSuchDomain(d()), 550, EnhancedCode(5, 1, 2)),
        (RouteError::NoAddress(d()), 550, EnhancedCode(5, 4, 4)),
        (
            RouteError::Temporary {
                domain: d(),
                reason: "SERVFAIL".into(),
            },
            451,
            EnhancedCode(4, 4, 3),
        ),
    ];
    for (e, code, enhanced) in cases {
        let r = e.reply();
        assert_eq!((r.code, r.enhanced), (code, Some(enhanced)), "{e}");
        assert_eq!(e.is_permanent(), code >= 500);
    }
}

#[test]
fn this_host_is_the_configured_name_and_smtp_addresses() {
    let mut config = crate::config::Config {
        hostname: "mx.ours.example".into(),
        ..Default::default()
    };
    config.listen.smtp = vec![
        "0.0.0.0:25".parse().unwrap(),
        "192.0.2.7:25".parse().unwrap(),
    ];
    let local = Local::from_config(&config);
    assert_eq!(local.hostnames, ["mx.ours.example"]);
    assert_eq!(local.addrs, ips(&["192.0.2.7"]));
    assert!(local.is_name("mx.ours.example"));
    assert!(local.has_addr(&ips(&["192.0.2.7"])));
    assert!(!local.has_addr(&ips(&["0.0.0.0"])));
}

/// A resolver that must never be asked: literals need no DNS.
struct NoDns;

impl Resolver for NoDns {
    async fn mx(&self, domain: &str) -> Result<Vec<Mx>, LookupError> {
        panic!("asked MX of {domain}")
    }
    async fn ips(&self, host: &str) -> Result<Vec<IpAddr>, LookupError> {
        panic!("asked addresses of {host}")
    }
}

#[tokio::test]
async fn address_literals_go_to_their_address_without_dns() {
    let local = Local::default();
    let mut random = seq(vec![0]);
    let t = route(&NoDns, "[192.0.2.1]", 2525, &local, &mut random)
        .await
        .unwrap();
    assert_eq!(
        t,
        vec![Target {
            host: "192.0.2.1".into(),
            addrs: vec!["192.0.2.1".parse().unwrap()],
            port: 2525
        }]
    );
    let t = route(&NoDns, "[IPv6:2001:DB8::1]", 25, &local, &mut random)
        .await
        .unwrap();
    assert_eq!(t[0].addrs, vec!["2001:db8::1".parse::<IpAddr>().unwrap()]);
    for bad in [
        "[2001:db8::1]",
        "[IPv6:192.0.2.1]",
        "[300.0.0.1]",
        "[]",
        "",
        "a..b",
        "a b",
    ] {
        let e = route(&NoDns, bad, 25, &local, &mut random)
            .await
            .unwrap_err();
        assert!(matches!(e, RouteError::NoSuchDomain(_)), "{bad}: {e}");
    }
    let ours = Local {
        hostnames: vec![],
        addrs: vec!["192.0.2.1".parse().unwrap()],
    };
    let e = route(&NoDns, "[192.0.2.1]", 25, &ours, &mut random)
        .await
        .unwrap_err();
    assert!(matches!(e, RouteError::Loop(_)), "{e}");
}

/// The zone `example.` that hickory-server serves in the tests.
fn example_zone() -> Vec<(&'static str, RData)> {
    let mxr = |p: u16, n: &str| RData::MX(MX::new(p, Name::from_ascii(n).unwrap()));
    let a = |s: &str| RData::A(A(s.parse().unwrap()));
    let aaaa = |s: &str| RData::AAAA(AAAA(s.parse().unwrap()));
    let txt = || RData::TXT(TXT::new(vec!["exists".into()]));
    vec![
        ("mx", mxr(20, "b.mx.example.")),
        ("mx", mxr(10, "a.mx.example.")),
        ("a.mx", a("192.0.2.1")),
        ("a.mx", aaaa("2001:db8::1")),
        ("b.mx", a("192.0.2.2")),
        ("nullmx", mxr(0, ".")),
        ("broken", mxr(10, "noaddr.example.")),
        ("broken", mxr(20, "a.mx.example.")),
        ("onlybroken", mxr(10, "noaddr.example.")),
        ("onlybroken", mxr(20, "gone.example.")),
        ("noaddr", txt()),
        ("equal", mxr(10, "e1.equal.example.")),
        ("equal", mxr(10, "e2.equal.example.")),
        ("equal", mxr(10, "e3.equal.example.")),
        ("equal", mxr(10, "e4.equal.example.")),
        ("e1.equal", a("192.0.2.11")),
        ("e2.equal", a("192.0.2.12")),
        ("e3.equal", a("192.0.2.13")),
        ("e4.equal", a("192.0.2.14")),
        ("implicit", a("192.0.2.50")),
        // bücher.example, by its A-labels.
        ("xn--bcher-kva", mxr(10, "a.mx.example.")),
        ("empty", txt()),
        ("loop", mxr(5, "a.mx.example.")),
        ("loop", mxr(10, "mx.ours.example.")),
        ("selfaddr", mxr(10, "me.example.")),
        ("me", a("192.0.2.99")),
    ]
}

/// Keeps a test DNS server running until the test ends.
type ServerTask = tokio::task::JoinHandle<()>;

/// hickory-server on 127.0.0.1 (UDP and TCP, port 0), authoritative for `example.`.
async fn zone_server() -> (SocketAddr, ServerTask) {
    let origin = Name::from_ascii("example.").unwrap();
    let mut zone: InMemoryZoneHandler =
        InMemoryZoneHandler::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny);
    let soa = SOA::new(
        Name::from_ascii("ns.example.").unwrap(),
        Name::from_ascii("hostmaster.example.").unwrap(),
        1,
        3600,
        600,
        86400,
        60,
    );
    zone.upsert_mut(Record::from_rdata(origin.clone(), 60, RData::SOA(soa)), 1);
    for (label, rdata) in example_zone() {
        let name = Name::from_ascii(label)
            .unwrap()
            .append_domain(&origin)
            .unwrap();
        zone.upsert_mut(Record::from_rdata(name, 60, rdata), 1);
    }
    let mut catalog = Catalog::new();
    catalog.upsert(origin.into(), vec![Arc::new(zone)]);
    let mut server = hickory_server::Server::new(catalog);
    // UDP and TCP on one port: the UDP port the system picks may be taken for TCP by
    // another socket, so pick again until both are free.
    let (udp, tcp) = loop {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        if let Ok(tcp) = tokio::net::TcpListener::bind(udp.local_addr().unwrap()).await {
            break (udp, tcp);
        }
    };
    let addr = udp.local_addr().unwrap();
    server.register_socket(udp);
    server.register_listener(tcp, std::time::Duration::from_secs(5), 4096);
    let task = tokio::spawn(async move {
        let _server = server;
        std::future::pending::<()>().await
    });
    (addr, task)
}

/// A misbehaving DNS server on 127.0.0.1 (UDP, port 0): SERVFAIL for
/// `servfail.example.` and `flaky.example.`, an MX for `flaky-mx.example.` pointing at
/// the latter, no answer at all for `silent.example.`, NXDOMAIN for anything else.
async fn failing_server() -> (SocketAddr, ServerTask) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let Ok(request) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let Some(query) = request.queries.first().cloned() else {
                continue;
            };
            let name = query.name.to_ascii().to_ascii_lowercase();
            let mut response = Message::response(request.metadata.id, OpCode::Query);
            response.metadata.recursion_desired = request.metadata.recursion_desired;
            response.metadata.recursion_available = true;
            response.add_query(query.clone());
            match (name.as_str(), query.query_type) {
                ("silent.example.", _) => continue,
                ("servfail.example.", _) | ("flaky.example.", _) => {
                    response.metadata.response_code = ResponseCode::ServFail;
                }
                ("flaky-mx.example.", RecordType::MX) => {
                    let mx = MX::new(10, Name::from_ascii("flaky.example.").unwrap());
                    response.add_answer(Record::from_rdata(query.name.clone(), 60, RData::MX(mx)));
                }
                _ => response.metadata.response_code = ResponseCode::NXDomain,
            }
            if let Ok(bytes) = response.to_vec() {
                let _ = socket.send_to(&bytes, peer).await;
            }
        }
    });
    (addr, task)
}

fn resolver_for(server: SocketAddr) -> HickoryResolver {
    let config = DnsConfig {
        servers: vec![server],
        timeout: HumanDuration::secs(1),
    };
    HickoryResolver::new(&ResolverSetup {
        attempts: 1,
        ..ResolverSetup::from(&config)
    })
    .unwrap()
}

fn ips(s: &[&str]) -> Vec<IpAddr> {
    s.iter().map(|a| a.parse().unwrap()).collect()
}

#[tokio::test]
async fn routes_through_the_configured_dns_server() {
    let (server, _task) = zone_server().await;
    let r = resolver_for(server);
    let local = Local {
        hostnames: vec!["mx.ours.example".into()],
        addrs: ips(&["192.0.2.99"]),
    };
    let mut random = std_random();
    let mut go = async |dest: &str| route(&r, dest, 25, &local, &mut random).await;

    let t = go("mx.example").await.unwrap();
    assert_eq!(
        t,
        vec![
            Target {
                host: "a.mx.example".into(),
                addrs: ips(&["192.0.2.1", "2001:db8::1"]),
                port: 25
            },
            Target {
                host: "b.mx.example".into(),
                addrs: ips(&["192.0.2.2"]),
                port: 25
            },
        ]
    );
    // Case and a final dot do not matter.
    assert_eq!(go("MX.Example.").await.unwrap(), t);

    let e = go("nullmx.example").await.unwrap_err();
    assert_eq!(e, RouteError::NullMx("nullmx.example".into()));
    assert_eq!(e.reply().code, 556);

    let e = go("nowhere.example").await.unwrap_err();
    assert_eq!(e, RouteError::NoSuchDomain("nowhere.example".into()));

    // The MX without addresses is skipped, the next one used.
    let t = go("broken.example").await.unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].host, "a.mx.example");
    let e = go("onlybroken.example").await.unwrap_err();
    assert_eq!(e, RouteError::NoAddress("onlybroken.example".into()));

    let t = go("equal.example").await.unwrap();
    let hosts: HashSet<&str> = t.iter().map(|t| t.host.as_str()).collect();
    assert_eq!(hosts.len(), 4);
    assert!(t.iter().all(|t| t.addrs.len() == 1));

    // No MX: the domain's own address.
    let t = go("implicit.example").await.unwrap();
    assert_eq!(
        t,
        vec![Target {
            host: "implicit.example".into(),
            addrs: ips(&["192.0.2.50"]),
            port: 25
        }]
    );
    let e = go("empty.example").await.unwrap_err();
    assert_eq!(e, RouteError::NoAddress("empty.example".into()));

    // An internationalized domain is looked up by its A-labels (RFC 5890).
    let t = go("Bücher.example").await.unwrap();
    assert_eq!(t[0].host, "a.mx.example");

    // Our own MX (by name) cuts the list; our own address as the only MX is a loop.
    let t = go("loop.example").await.unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].host, "a.mx.example");
    let e = go("selfaddr.example").await.unwrap_err();
    assert_eq!(e, RouteError::Loop("selfaddr.example".into()));
}

#[tokio::test]
async fn servfail_and_silence_are_temporary() {
    let (server, _task) = failing_server().await;
    let r = resolver_for(server);
    let mut random = std_random();
    for dest in ["servfail.example", "flaky-mx.example", "silent.example"] {
        let e = route(&r, dest, 25, &Local::default(), &mut random)
            .await
            .unwrap_err();
        assert!(matches!(e, RouteError::Temporary { .. }), "{dest}: {e}");
        assert!(!e.is_permanent());
        assert_eq!(e.reply().enhanced, Some(EnhancedCode(4, 4, 3)));
    }
    let e = route(&r, "other.example", 25, &Local::default(), &mut random)
        .await
        .unwrap_err();
    assert_eq!(e, RouteError::NoSuchDomain("other.example".into()));
}

#[tokio::test]
async fn the_port_is_the_callers() {
    let (server, _task) = zone_server().await;
    let r = resolver_for(server);
    let t = route(
        &r,
        "b.mx.example",
        2525,
        &Local::default(),
        &mut std_random(),
    )
    .await
    .unwrap();
    assert_eq!(t[0].port, 2525);
}
