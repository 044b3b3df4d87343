//! A TCP relay that puts a slow link in front of each benchmark host: every byte is held
//! DELAY milliseconds in each direction and each direction of a host's link carries at most
//! RATE megabits per second (shared by every connection to that host, as one network link
//! would be). The kernel here has no `netem`, so the delay is made here, in user space.
//!
//! Built by `benches/fleet-wan.sh` with plain `rustc -O` (standard library only), so it is
//! no part of the workspace build:
//!
//! ```text
//! relay DELAY_MS RATE_MBIT TARGET_PORT...
//! ```
//!
//! Listens on a new port of 127.0.0.1 (only) per TARGET_PORT and forwards to
//! 127.0.0.1:TARGET_PORT; prints `ready` and the listening ports, in the order of the
//! targets, once every one listens; runs until killed.
//!
//! The link model, per host and direction: a chunk read at time `t` leaves the link's
//! queue at `max(t, free) + len / rate` (`free`: when the link finished the previous
//! chunk) and is delivered DELAY later. At most [`QUEUE_BYTES`] per connection and
//! direction wait in the relay: beyond that the relay stops reading and TCP's flow control
//! pushes back on the sender, as a router's bounded queue would. A new connection waits one
//! round trip (2 x DELAY) before anything is relayed: the TCP handshake the kernel already
//! completed on loopback.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Bytes read at once.
const CHUNK: usize = 64 * 1024;
/// Chunks queued per connection and direction (with [`CHUNK`]: 1 MiB, above the
/// bandwidth-delay product of 100 Mbit/s over 50 ms, 625 KB).
const QUEUE_CHUNKS: usize = 16;
/// The same as bytes, for the module documentation.
#[allow(dead_code)]
const QUEUE_BYTES: usize = CHUNK * QUEUE_CHUNKS;

/// One direction of one host's link.
struct Link {
    /// When the link has sent everything queued so far.
    free: Mutex<Instant>,
    /// Nanoseconds per byte.
    nanos_per_byte: f64,
}

impl Link {
    fn new(rate_mbit: f64) -> Arc<Link> {
        Arc::new(Link { free: Mutex::new(Instant::now()), nanos_per_byte: 8_000.0 / rate_mbit })
    }

    /// When a chunk of `len` bytes read now has left the link.
    fn departure(&self, len: usize) -> Instant {
        let now = Instant::now();
        let mut free = self.free.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let start = if *free > now { *free } else { now };
        let done = start + Duration::from_nanos((len as f64 * self.nanos_per_byte) as u64);
        *free = done;
        done
    }
}

/// Reads `from` and queues each chunk with the time it is to be delivered.
fn read_side(mut from: TcpStream, link: Arc<Link>, delay: Duration, queue: SyncSender<Option<(Instant, Vec<u8>)>>) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let at = link.departure(n) + delay;
                if queue.send(Some((at, buf[..n].to_vec()))).is_err() {
                    return;
                }
            }
        }
    }
    let _ = queue.send(None);
}

/// Delivers the queued chunks to `to` at their times; passes the end of the stream on.
fn write_side(mut to: TcpStream, queue: Receiver<Option<(Instant, Vec<u8>)>>) {
    while let Ok(Some((at, bytes))) = queue.recv() {
        let now = Instant::now();
        if at > now {
            thread::sleep(at - now);
        }
        if to.write_all(&bytes).is_err() {
            let _ = to.shutdown(Shutdown::Both);
            return;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Relays one direction: `from` to `to` through `link`.
fn pipe(from: TcpStream, to: TcpStream, link: Arc<Link>, delay: Duration) {
    let (tx, rx) = sync_channel(QUEUE_CHUNKS);
    let writer = thread::spawn(move || write_side(to, rx));
    read_side(from, link, delay, tx);
    let _ = writer.join();
}

fn serve(listener: TcpListener, target: u16, up: Arc<Link>, down: Arc<Link>, delay: Duration) {
    for client in listener.incoming() {
        let Ok(client) = client else { continue };
        let (up, down) = (up.clone(), down.clone());
        thread::spawn(move || {
            // The kernel completed the client's handshake at once, on loopback: the round
            // trip a TCP handshake takes over the link is spent here, before anything moves.
            thread::sleep(2 * delay);
            let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else { return };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else { return };
            let upstream = thread::spawn(move || pipe(client, server, up, delay));
            pipe(server2, client2, down, delay);
            let _ = upstream.join();
        });
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: relay DELAY_MS RATE_MBIT TARGET_PORT...";
    let delay = Duration::from_millis(args.first().and_then(|a| a.parse().ok()).expect(usage));
    let rate: f64 = args.get(1).and_then(|a| a.parse().ok()).filter(|r: &f64| *r > 0.0).expect(usage);
    let mut servers = Vec::new();
    let mut ports = Vec::new();
    for target in &args[2..] {
        let target: u16 = target.parse().expect(usage);
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("listen on 127.0.0.1");
        ports.push(listener.local_addr().expect("bound").port().to_string());
        let (up, down) = (Link::new(rate), Link::new(rate));
        servers.push(thread::spawn(move || serve(listener, target, up, down, delay)));
    }
    println!("ready {}", ports.join(" "));
    let _ = std::io::stdout().flush();
    for server in servers {
        let _ = server.join();
    }
}
