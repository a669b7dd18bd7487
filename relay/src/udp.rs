//! The relay's UDP socket: buffer sizes, batched sends (`sendmmsg`), and the kernel's count
//! of datagrams it dropped because the socket's receive queue was full.
//!
//! Why each part is here (`docs/benchmarks.md` R1): at 150–200 viewers the relay's socket,
//! with the kernel's default 208 KiB receive buffer (≈ 100–250 small datagrams), overflowed
//! whenever the driver was held up for some tens of milliseconds — publisher media, RTCP and
//! the viewers' consent checks were lost and the stream broke down. So the socket asks for
//! [`SOCKET_BUFFER`] each way and says (log and [`BufferSizes`]) what the kernel granted.
//! A loopback `sendto` costs ≈ 4 µs; the fan-out sends many datagrams per loop turn, so they
//! are queued in a [`SendBatch`] and go out with one `sendmmsg` per [`SEND_BATCH`].
//!
//! Everything here goes through `nix`'s safe wrappers (the workspace forbids `unsafe`).

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, setsockopt, sockopt,
};

/// Receive and send buffer asked for (the kernel reports and charges twice this). 4 MiB of
/// receive buffer hold about a second of the RTCP of 500 viewers plus the publisher's media.
pub const SOCKET_BUFFER: usize = 4 * 1024 * 1024;
/// Most datagrams in one `sendmmsg` call (the kernel's limit is 1024, `UIO_MAXIOV`).
pub const SEND_BATCH: usize = 256;

/// What the kernel granted for the socket's buffers (as `getsockopt` reports them: twice
/// the usable size, bookkeeping included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BufferSizes {
    /// `SO_RCVBUF` after the request.
    pub receive: usize,
    /// `SO_SNDBUF` after the request.
    pub send: usize,
}

/// Binds a non-blocking UDP socket with [`SOCKET_BUFFER`]-sized buffers. When the kernel
/// caps a buffer at `net.core.rmem_max` / `wmem_max`, the forced variant is tried (it needs
/// `CAP_NET_ADMIN`); a buffer still below the request is logged as a warning.
pub fn bind(addr: SocketAddr) -> io::Result<(tokio::net::UdpSocket, BufferSizes)> {
    let socket = std::net::UdpSocket::bind(addr)?;
    socket.set_nonblocking(true)?;
    let sizes = grow_buffers(&socket, SOCKET_BUFFER);
    Ok((tokio::net::UdpSocket::from_std(socket)?, sizes))
}

/// Asks for `size` bytes of receive and send buffer; returns what was granted.
pub fn grow_buffers(socket: &impl AsRawFd, size: usize) -> BufferSizes {
    let fd = socket.as_raw_fd();
    // The kernel doubles the value asked for (room for its bookkeeping) and reports that.
    let wanted = size.saturating_mul(2);
    let receive = grow(
        size,
        wanted,
        |v| setsockopt(fd, sockopt::RcvBuf, v),
        |v| setsockopt(fd, sockopt::RcvBufForce, v),
        || nix::sys::socket::getsockopt(fd, sockopt::RcvBuf),
    );
    let send = grow(
        size,
        wanted,
        |v| setsockopt(fd, sockopt::SndBuf, v),
        |v| setsockopt(fd, sockopt::SndBufForce, v),
        || nix::sys::socket::getsockopt(fd, sockopt::SndBuf),
    );
    let sizes = BufferSizes { receive, send };
    if receive < wanted || send < wanted {
        tracing::warn!(
            asked = size,
            receive,
            send,
            "relay: the UDP socket's buffers are smaller than asked for (capped by \
             net.core.rmem_max / net.core.wmem_max; raise them with sysctl, or run with \
             CAP_NET_ADMIN); bursts may overflow the receive queue"
        );
    } else {
        tracing::debug!(receive, send, "relay: UDP socket buffers");
    }
    sizes
}

fn grow(
    size: usize,
    wanted: usize,
    set: impl Fn(&usize) -> nix::Result<()>,
    force: impl Fn(&usize) -> nix::Result<()>,
    get: impl Fn() -> nix::Result<usize>,
) -> usize {
    let _ = set(&size);
    let granted = get().unwrap_or(0);
    if granted >= wanted {
        return granted;
    }
    // Over the sysctl cap: allowed with CAP_NET_ADMIN (EPERM otherwise, ignored).
    let _ = force(&size);
    get().unwrap_or(granted)
}

/// What a flush did, for the driver's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flushed {
    /// Datagrams the kernel took.
    pub datagrams: u64,
    /// Their bytes.
    pub bytes: u64,
    /// `sendmmsg` calls.
    pub calls: u64,
    /// Datagrams dropped because the socket's send buffer was full (`EAGAIN`).
    pub would_block: u64,
    /// Datagrams dropped for another error (one per failed call: the first datagram of the
    /// call is the one the kernel refused).
    pub errors: u64,
}

impl Flushed {
    /// Adds another flush's figures.
    pub fn add(&mut self, other: Flushed) {
        self.datagrams += other.datagrams;
        self.bytes += other.bytes;
        self.calls += other.calls;
        self.would_block += other.would_block;
        self.errors += other.errors;
    }
}

/// Datagrams waiting to be sent, in order. The driver pushes every UDP `Transmit` of a loop
/// turn here (moving str0m's buffer, no copy) and flushes when the batch is full and at the
/// end of each turn, before it waits again.
#[derive(Debug, Default)]
pub struct SendBatch {
    datagrams: Vec<(SocketAddr, Vec<u8>)>,
}

impl SendBatch {
    /// Queues one datagram.
    pub fn push(&mut self, to: SocketAddr, datagram: Vec<u8>) {
        self.datagrams.push((to, datagram));
    }

    /// Datagrams queued.
    pub fn len(&self) -> usize {
        self.datagrams.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.datagrams.is_empty()
    }

    /// Whether the batch reached [`SEND_BATCH`] (time to flush).
    pub fn is_full(&self) -> bool {
        self.datagrams.len() >= SEND_BATCH
    }

    /// Sends everything queued with `sendmmsg` on a non-blocking socket, in order. A full
    /// send buffer drops the rest of the chunk it hit (UDP semantics: the peers' NACKs and
    /// str0m's RTX repair video); an error on one datagram drops that one only.
    pub fn flush(&mut self, socket: &impl AsRawFd) -> Flushed {
        let mut done = Flushed::default();
        if self.datagrams.is_empty() {
            return done;
        }
        let fd = socket.as_raw_fd();
        let mut start = 0;
        while start < self.datagrams.len() {
            let end = (start + SEND_BATCH).min(self.datagrams.len());
            let chunk = &self.datagrams[start..end];
            let slices: Vec<[IoSlice<'_>; 1]> =
                chunk.iter().map(|(_, d)| [IoSlice::new(d)]).collect();
            let addrs: Vec<Option<SockaddrStorage>> = chunk
                .iter()
                .map(|(a, _)| Some(SockaddrStorage::from(*a)))
                .collect();
            let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(chunk.len(), None);
            let no_cmsgs: [ControlMessage<'_>; 0] = [];
            done.calls += 1;
            let sent = nix::sys::socket::sendmmsg(
                fd,
                &mut headers,
                &slices,
                &addrs,
                no_cmsgs,
                MsgFlags::MSG_DONTWAIT,
            )
            .map(|results| results.count());
            match sent {
                Ok(n) if n > 0 => {
                    done.datagrams += n as u64;
                    done.bytes += chunk[..n].iter().map(|(_, d)| d.len() as u64).sum::<u64>();
                    start += n;
                }
                // Nothing sent and no error: should not happen; do not spin.
                Ok(_) => {
                    done.errors += 1;
                    start += 1;
                }
                Err(Errno::EAGAIN) => {
                    done.would_block += chunk.len() as u64;
                    start = end;
                }
                Err(Errno::EINTR) => {}
                Err(e) => {
                    tracing::trace!(error = %e, to = %chunk[0].0, "relay: send dropped");
                    done.errors += 1;
                    start += 1;
                }
            }
        }
        self.datagrams.clear();
        done
    }
}

/// The kernel's count of datagrams dropped by the UDP socket bound to `local` (its receive
/// queue was full, or its memory accounting refused them): the `drops` column of
/// `/proc/net/udp` (IPv4) or `/proc/net/udp6`. `None` when the file or the socket's line
/// cannot be found (not Linux, or another network namespace).
pub fn receive_drops(local: SocketAddr) -> Option<u64> {
    let path = if local.is_ipv4() {
        "/proc/net/udp"
    } else {
        "/proc/net/udp6"
    };
    // The kernel prints the table in chunks while sockets come and go, so a line can be
    // missed in one read: try again before giving up.
    (0..3).find_map(|_| drops_in_table(&std::fs::read_to_string(path).ok()?, local))
}

/// Parses a `/proc/net/udp{,6}` table: the `drops` (last) column of the line whose local
/// address is `local`. A socket bound to a wildcard address is listed with the wildcard.
pub fn drops_in_table(table: &str, local: SocketAddr) -> Option<u64> {
    let wanted_port = format!("{:04X}", local.port());
    let wanted_ip = proc_ip(local);
    table.lines().skip(1).find_map(|line| {
        let mut fields = line.split_whitespace();
        let local_field = fields.nth(1)?;
        let (ip, port) = local_field.split_once(':')?;
        if port != wanted_port || !ip.eq_ignore_ascii_case(&wanted_ip) {
            return None;
        }
        line.split_whitespace().last()?.parse().ok()
    })
}

/// An address as `/proc/net/udp` prints it: the raw 32-bit words in host byte order, hex.
fn proc_ip(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("{:08X}", u32::from_ne_bytes(a.ip().octets())),
        SocketAddr::V6(a) => a
            .ip()
            .octets()
            .chunks(4)
            .map(|w| format!("{:08X}", u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drops_column_of_the_socket_line() {
        // From this machine's /proc/net/udp (127.0.0.1:40000 and 0.0.0.0:5353).
        let table = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
          1: 0100007F:9C40 00000000:0000 07 00000000:00034000 00:00000000 00000000     0        0 123 2 0000000000000000 9123\n\
          2: 00000000:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 456 2 0000000000000000 0\n";
        let local: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        if cfg!(target_endian = "little") {
            assert_eq!(drops_in_table(table, local), Some(9123));
            assert_eq!(
                drops_in_table(table, "0.0.0.0:5353".parse().unwrap()),
                Some(0)
            );
        }
        assert_eq!(
            drops_in_table(table, "127.0.0.1:40001".parse().unwrap()),
            None
        );
        assert_eq!(drops_in_table("", local), None);
    }

    #[tokio::test]
    async fn buffers_are_granted_and_the_kernel_counts_receive_drops() {
        let (rx, sizes) = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        assert!(sizes.receive > 0 && sizes.send > 0, "{sizes:?}");
        let local = rx.local_addr().unwrap();
        assert_eq!(receive_drops(local), Some(0));
        // A tiny receive buffer overflows: every datagram past it is a counted drop.
        setsockopt(rx.as_raw_fd(), sockopt::RcvBuf, &1024).unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..200 {
            tx.send_to(&[0u8; 1000], local).unwrap();
        }
        let drops = receive_drops(local).unwrap();
        assert!(drops > 100, "drops {drops}");
    }

    #[tokio::test]
    async fn a_batch_goes_out_in_order_with_one_call_per_chunk() {
        let (sender, _) = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        a.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        b.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut batch = SendBatch::default();
        let n = SEND_BATCH + 10;
        for i in 0..n {
            let to = if i % 2 == 0 { &a } else { &b };
            batch.push(to.local_addr().unwrap(), vec![(i % 251) as u8; 100 + i % 7]);
        }
        assert!(batch.is_full());
        let done = batch.flush(&sender);
        assert!(batch.is_empty());
        assert_eq!(done.datagrams, n as u64);
        assert_eq!(done.calls, 2);
        assert_eq!(done.would_block + done.errors, 0);
        let bytes: u64 = (0..n).map(|i| (100 + i % 7) as u64).sum();
        assert_eq!(done.bytes, bytes);
        let mut buf = [0u8; 2048];
        for i in (0..n).step_by(2) {
            let (len, from) = a.recv_from(&mut buf).unwrap();
            assert_eq!(from, sender.local_addr().unwrap());
            assert_eq!(len, 100 + i % 7);
            assert!(buf[..len].iter().all(|&x| x == (i % 251) as u8));
        }
        for i in (1..n).step_by(2) {
            let (len, _) = b.recv_from(&mut buf).unwrap();
            assert_eq!(len, 100 + i % 7, "datagram {i}");
        }
    }

    #[tokio::test]
    async fn a_refused_datagram_drops_only_itself() {
        let (sender, _) = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        a.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut batch = SendBatch::default();
        batch.push(a.local_addr().unwrap(), vec![1; 10]);
        // An IPv6 destination on an IPv4 socket: refused by the kernel (EAFNOSUPPORT/EINVAL).
        batch.push("[::1]:9".parse().unwrap(), vec![2; 10]);
        batch.push(a.local_addr().unwrap(), vec![3; 10]);
        let done = batch.flush(&sender);
        assert_eq!(done.datagrams, 2);
        assert_eq!(done.errors, 1);
        let mut buf = [0u8; 64];
        assert_eq!(a.recv_from(&mut buf).unwrap().0, 10);
        assert_eq!(buf[0], 1);
        assert_eq!(a.recv_from(&mut buf).unwrap().0, 10);
        assert_eq!(buf[0], 3);
    }
}
