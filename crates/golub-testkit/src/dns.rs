//! A DNS server for tests, on 127.0.0.1 (UDP, port 0), answering from a fixed table: MX
//! and A records, a null MX, SERVFAIL for chosen names, NXDOMAIN for everything else.
//! Outbound delivery tests point `[dns] servers` at it so that real MX logic runs and
//! nothing leaves the machine.

use hickory_resolver::proto::op::{Message, OpCode, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, MX};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use std::net::{Ipv4Addr, SocketAddr};
use tokio::net::UdpSocket;

/// One record of the table; names without the final dot, any case.
#[derive(Debug, Clone)]
pub enum Entry {
    Mx {
        domain: String,
        preference: u16,
        exchange: String,
    },
    A {
        host: String,
        addr: Ipv4Addr,
    },
    /// Every query for this name fails with SERVFAIL.
    ServFail(String),
}

impl Entry {
    pub fn mx(domain: &str, preference: u16, exchange: &str) -> Entry {
        Entry::Mx {
            domain: domain.into(),
            preference,
            exchange: exchange.into(),
        }
    }

    pub fn a(host: &str, addr: &str) -> Entry {
        Entry::A {
            host: host.into(),
            addr: addr.parse().expect("IPv4 address"),
        }
    }
}

/// The running server; it stops when dropped.
pub struct DnsServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl DnsServer {
    pub async fn start(table: Vec<Entry>) -> DnsServer {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind DNS");
        let addr = socket.local_addr().expect("address");
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
                let response = answer(&table, &request, query);
                if let Ok(bytes) = response.to_vec() {
                    let _ = socket.send_to(&bytes, peer).await;
                }
            }
        });
        DnsServer { addr, task }
    }
}

fn answer(
    table: &[Entry],
    request: &Message,
    query: hickory_resolver::proto::op::Query,
) -> Message {
    let name = normalize(&query.name.to_ascii());
    let mut response = Message::response(request.metadata.id, OpCode::Query);
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.add_query(query.clone());
    let mut known = false;
    for e in table {
        match e {
            Entry::ServFail(n) if normalize(n) == name => {
                response.metadata.response_code = ResponseCode::ServFail;
                return response;
            }
            Entry::Mx {
                domain,
                preference,
                exchange,
            } if normalize(domain) == name => {
                known = true;
                if query.query_type == RecordType::MX {
                    let target = if exchange == "." {
                        Name::root()
                    } else {
                        Name::from_ascii(format!("{}.", normalize(exchange))).expect("name")
                    };
                    let mx = MX::new(*preference, target);
                    response.add_answer(Record::from_rdata(query.name.clone(), 60, RData::MX(mx)));
                }
            }
            Entry::A { host, addr } if normalize(host) == name => {
                known = true;
                if query.query_type == RecordType::A {
                    response.add_answer(Record::from_rdata(
                        query.name.clone(),
                        60,
                        RData::A(A(*addr)),
                    ));
                }
            }
            _ => {}
        }
    }
    if !known {
        response.metadata.response_code = ResponseCode::NXDomain;
    }
    response
}
