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
//! Where the kernel has UDP GSO (`UDP_SEGMENT`, Linux 4.18+), a viewer's consecutive
//! datagrams of one size (the packets of a video frame) go out as **one** message that the
//! kernel cuts into datagrams as late as it can — on loopback at the receiving socket, on a
//! NIC in hardware or just before the driver — so the IP path is walked once per run, not
//! once per packet (session 7 profile: that path was 30 % of the relay).
//!
//! Everything here goes through `nix`'s safe wrappers (the workspace forbids `unsafe`).

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::ops::Range;
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
/// Most datagrams in one GSO message (the kernel's `UDP_MAX_SEGMENTS` was 64 until 6.x).
const GSO_MAX_SEGMENTS: usize = 64;
/// Most bytes in one GSO message (an IPv4 datagram's 65,535, less headers and room).
const GSO_MAX_BYTES: usize = 65_000;

/// Whether the kernel offers UDP GSO on this socket (`UDP_SEGMENT` can be read).
pub fn gso_supported(socket: &impl AsRawFd) -> bool {
    nix::sys::socket::getsockopt(socket.as_raw_fd(), sockopt::UdpGsoSegment).is_ok()
}

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
    /// Messages that carried several datagrams as one GSO send.
    pub gso_sends: u64,
    /// Datagrams dropped because the socket's send buffer was full (`EAGAIN`).
    pub would_block: u64,
    /// Datagrams dropped for another error (per failed call, the call's first message —
    /// one datagram, or one GSO run to one destination — is the one the kernel refused).
    pub errors: u64,
}

/// Datagrams waiting to be sent, in order. The driver pushes every UDP `Transmit` of a loop
/// turn here (moving str0m's buffer, no copy) and flushes when the batch is full and at the
/// end of each turn, before it waits again.
#[derive(Debug)]
pub struct SendBatch {
    datagrams: Vec<(SocketAddr, Vec<u8>)>,
    /// Consecutive same-size datagrams to one destination go out as one GSO message. Off
    /// by default, and for good once the kernel refuses one (`EIO`: the route has no
    /// checksum offload).
    gso: bool,
}

impl SendBatch {
    /// A batch that sends runs with UDP GSO when `gso` (see [`gso_supported`]).
    pub fn new(gso: bool) -> SendBatch {
        SendBatch {
            datagrams: Vec::new(),
            gso,
        }
    }

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

    /// Sends everything queued with `sendmmsg` on a non-blocking socket. A full send buffer
    /// drops the rest of the chunk it hit (UDP semantics: the peers' NACKs and str0m's RTX
    /// repair video); an error on one message drops that one only.
    ///
    /// With GSO, the runs of one segment size (see [`gso_plan`]) and every datagram no
    /// larger go out in order with that size set on the call; a destination's first larger
    /// datagram and everything after it to that destination follow without it, in order.
    /// So every destination's datagrams keep their order.
    pub fn flush(&mut self, socket: &impl AsRawFd) -> Flushed {
        let mut done = Flushed::default();
        if self.datagrams.is_empty() {
            return done;
        }
        let fd = socket.as_raw_fd();
        let (segment, with_gso, plain) = if self.gso {
            gso_plan(&self.datagrams)
        } else {
            (
                None,
                Vec::new(),
                (0..self.datagrams.len()).map(|i| i..i + 1).collect(),
            )
        };
        if let Some(size) = segment
            && let Err(refused) = send(fd, &self.datagrams, &with_gso, Some(size), &mut done)
        {
            tracing::warn!(
                "relay: the kernel refused a UDP GSO send (no checksum offload on the route?); sending datagram by datagram from now on"
            );
            self.gso = false;
            let rest = with_gso[refused..]
                .iter()
                .flat_map(|run| run.clone())
                .map(|i| i..i + 1)
                .collect::<Vec<_>>();
            let _ = send(fd, &self.datagrams, &rest, None, &mut done);
        }
        let _ = send(fd, &self.datagrams, &plain, None, &mut done);
        self.datagrams.clear();
        done
    }
}

/// Splits a batch into runs for GSO: consecutive datagrams to one destination, each no
/// larger than the run's first and only the last smaller, at most [`GSO_MAX_SEGMENTS`] and
/// [`GSO_MAX_BYTES`]. The batch's segment size is the commonest first size among runs of
/// two or more (the larger on a tie); `None` when there is no such run. Returns it, the
/// messages sent with it (those runs, and every other datagram no larger, one by one, in
/// order), and the datagrams sent after them without it: from a destination's first
/// datagram larger than the segment size on, all of that destination's, so none of its
/// datagrams overtakes another.
fn gso_plan(
    datagrams: &[(SocketAddr, Vec<u8>)],
) -> (Option<u16>, Vec<Range<usize>>, Vec<Range<usize>>) {
    let mut runs: Vec<Range<usize>> = Vec::new();
    let mut start = 0;
    while start < datagrams.len() {
        let (to, first) = &datagrams[start];
        let (size, mut bytes, mut end) = (first.len(), first.len(), start + 1);
        while end < datagrams.len() && end - start < GSO_MAX_SEGMENTS {
            let (next_to, next) = &datagrams[end];
            if next_to != to || next.len() > size || bytes + next.len() > GSO_MAX_BYTES {
                break;
            }
            bytes += next.len();
            end += 1;
            if next.len() < size {
                break;
            }
        }
        runs.push(start..end);
        start = end;
    }
    // (first size, runs of two or more starting with it); a batch has a few sizes.
    let mut counts: Vec<(usize, usize)> = Vec::new();
    for run in runs.iter().filter(|r| r.len() > 1) {
        let size = datagrams[run.start].1.len();
        match counts.iter_mut().find(|(s, _)| *s == size) {
            Some((_, count)) => *count += 1,
            None => counts.push((size, 1)),
        }
    }
    let Some(size) = counts
        .into_iter()
        .max_by_key(|&(size, count)| (count, size))
        .and_then(|(size, _)| u16::try_from(size).ok())
    else {
        let singles = (0..datagrams.len()).map(|i| i..i + 1).collect();
        return (None, Vec::new(), singles);
    };
    let fits = |i: usize| datagrams[i].1.len() <= usize::from(size);
    let (mut with_gso, mut plain) = (Vec::new(), Vec::new());
    // Destinations that had a datagram larger than the segment size: the rest of theirs
    // goes without GSO too. A handful per batch at most.
    let mut demoted: Vec<SocketAddr> = Vec::new();
    for run in runs {
        let to = datagrams[run.start].0;
        if !demoted.contains(&to)
            && run.len() > 1
            && datagrams[run.start].1.len() == usize::from(size)
        {
            with_gso.push(run);
            continue;
        }
        for i in run {
            if !demoted.contains(&to) && fits(i) {
                with_gso.push(i..i + 1);
            } else {
                if !demoted.contains(&to) {
                    demoted.push(to);
                }
                plain.push(i..i + 1);
            }
        }
    }
    (Some(size), with_gso, plain)
}

/// Sends `messages` (ranges of `datagrams`, each to its first datagram's destination) in
/// chunks of [`SEND_BATCH`], with `segment` as the GSO size of every message when given.
/// A message the route refuses with the segment size set goes out datagram by datagram
/// without it (each such message costs the failed call again: GSO stays on). `Err(i)`:
/// the kernel refused GSO itself (`EIO`) at message `i`, which and whose followers were not
/// sent.
fn send(
    fd: std::os::fd::RawFd,
    datagrams: &[(SocketAddr, Vec<u8>)],
    messages: &[Range<usize>],
    segment: Option<u16>,
    done: &mut Flushed,
) -> Result<(), usize> {
    let count = |ms: &[Range<usize>]| ms.iter().map(|m| m.len() as u64).sum::<u64>();
    let mut start = 0;
    while start < messages.len() {
        let end = (start + SEND_BATCH).min(messages.len());
        let chunk = &messages[start..end];
        // One flat list of buffers; each message takes its run's part of it.
        let buffers: Vec<IoSlice<'_>> = chunk
            .iter()
            .flat_map(|m| &datagrams[m.clone()])
            .map(|(_, d)| IoSlice::new(d))
            .collect();
        let mut offset = 0;
        let slices: Vec<&[IoSlice<'_>]> = chunk
            .iter()
            .map(|m| {
                offset += m.len();
                &buffers[offset - m.len()..offset]
            })
            .collect();
        let addrs: Vec<Option<SockaddrStorage>> = chunk
            .iter()
            .map(|m| Some(SockaddrStorage::from(datagrams[m.start].0)))
            .collect();
        let cmsg_space = segment.map(|_| nix::cmsg_space!(u16));
        let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(chunk.len(), cmsg_space);
        let cmsgs: Vec<ControlMessage<'_>> = segment
            .as_ref()
            .map(ControlMessage::UdpGsoSegments)
            .into_iter()
            .collect();
        done.calls += 1;
        let sent = nix::sys::socket::sendmmsg(
            fd,
            &mut headers,
            &slices,
            &addrs,
            &cmsgs,
            MsgFlags::MSG_DONTWAIT,
        )
        .map(|results| results.count());
        match sent {
            Ok(n) if n > 0 => {
                let sent = &chunk[..n];
                done.datagrams += count(sent);
                done.bytes += sent
                    .iter()
                    .flat_map(|m| &datagrams[m.clone()])
                    .map(|(_, d)| d.len() as u64)
                    .sum::<u64>();
                done.gso_sends += sent.iter().filter(|m| m.len() > 1).count() as u64;
                start += n;
            }
            // Nothing sent and no error: should not happen; do not spin.
            Ok(_) => {
                done.errors += chunk[0].len() as u64;
                start += 1;
            }
            Err(Errno::EAGAIN) => {
                done.would_block += count(chunk);
                start = end;
            }
            Err(Errno::EINTR) => {}
            Err(Errno::EIO) if segment.is_some() => return Err(start),
            // Refused with the segment size set (a run too large for the route's MTU as one
            // GSO message, or a route whose MTU is below the segment size): the message's
            // datagrams one by one, without it.
            Err(Errno::EINVAL | Errno::EMSGSIZE) if segment.is_some() => {
                let singles: Vec<Range<usize>> = chunk[0].clone().map(|i| i..i + 1).collect();
                let _ = send(fd, datagrams, &singles, None, done);
                start += 1;
            }
            Err(e) => {
                tracing::trace!(error = %e, to = %datagrams[chunk[0].start].0, "relay: send dropped");
                done.errors += chunk[0].len() as u64;
                start += 1;
            }
        }
    }
    Ok(())
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
        let mut batch = SendBatch::new(false);
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
        for gso in [false, true] {
            let (sender, _) = bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            a.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            let mut batch = SendBatch::new(gso);
            batch.push(a.local_addr().unwrap(), vec![1; 10]);
            batch.push(a.local_addr().unwrap(), vec![1; 10]);
            // An IPv6 destination on an IPv4 socket: refused by the kernel
            // (EAFNOSUPPORT/EINVAL).
            batch.push("[::1]:9".parse().unwrap(), vec![2; 10]);
            batch.push(a.local_addr().unwrap(), vec![3; 10]);
            let done = batch.flush(&sender);
            assert_eq!((done.datagrams, done.errors), (3, 1), "gso {gso}");
            let mut buf = [0u8; 64];
            for tag in [1, 1, 3] {
                assert_eq!(a.recv_from(&mut buf).unwrap().0, 10);
                assert_eq!(buf[0], tag, "gso {gso}");
            }
        }
    }

    fn batch_of(parts: &[(SocketAddr, usize)]) -> Vec<(SocketAddr, Vec<u8>)> {
        parts.iter().map(|&(to, len)| (to, vec![0; len])).collect()
    }

    #[test]
    fn gso_runs_are_one_destination_one_size_and_keep_the_order() {
        let a: SocketAddr = "127.0.0.1:1000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2000".parse().unwrap();
        let datagrams = batch_of(&[
            (a, 1100), // 0: a's frame: three full packets and a shorter last one
            (a, 1100),
            (a, 1100),
            (a, 700),
            (a, 1100), // 4: a run ends after a shorter datagram
            (b, 1100), // 5: b: a run of two
            (b, 1100),
            (b, 150), // 7: audio, smaller: the last of b's run
            (b, 150),
            (a, 1300), // 9: larger than the segment size: sent without it
            (a, 1300),
        ]);
        let (segment, with_gso, plain) = gso_plan(&datagrams);
        // Runs of two or more: 0..4 (1100), 5..8 (1100), 8..9 is single, 9..11 (1300).
        // 1100 is the commonest first size of such runs.
        assert_eq!(segment, Some(1100));
        assert_eq!(with_gso, vec![0..4, 4..5, 5..8, 8..9]);
        assert_eq!(plain, vec![9..10, 10..11]);

        // A larger datagram to a: it and everything after it to a go without GSO, in
        // order (the 700 would otherwise overtake the 1300).
        let larger_then_smaller = batch_of(&[(b, 1100), (b, 1100), (a, 1300), (b, 90), (a, 700)]);
        let (segment, with_gso, plain) = gso_plan(&larger_then_smaller);
        assert_eq!(segment, Some(1100));
        assert_eq!(with_gso, vec![0..2, 3..4]);
        assert_eq!(plain, vec![2..3, 4..5]);

        // No run of two: nothing with GSO.
        let alternating = batch_of(&[(a, 100), (b, 100), (a, 100)]);
        let (segment, with_gso, plain) = gso_plan(&alternating);
        assert_eq!((segment, with_gso.len()), (None, 0));
        assert_eq!(plain, vec![0..1, 1..2, 2..3]);

        // A run stops at GSO_MAX_SEGMENTS.
        let long = batch_of(&vec![(a, 1000); GSO_MAX_SEGMENTS + 3]);
        let (_, with_gso, _) = gso_plan(&long);
        assert_eq!(
            with_gso,
            vec![0..GSO_MAX_SEGMENTS, GSO_MAX_SEGMENTS..GSO_MAX_SEGMENTS + 3]
        );
    }

    #[tokio::test]
    async fn gso_runs_arrive_as_the_datagrams_they_were() {
        let (sender, _) = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        assert!(
            gso_supported(&sender),
            "this kernel has UDP GSO (Linux 4.18+)"
        );
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for s in [&a, &b] {
            s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
        }
        let (to_a, to_b) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        // (destination, length, tag): two frames to a, one to b, audio and a larger one.
        let plan = [
            (to_a, 1100, 1),
            (to_a, 1100, 2),
            (to_a, 1100, 3),
            (to_a, 640, 4),
            (to_b, 1100, 5),
            (to_b, 1100, 6),
            (to_b, 120, 7),
            (to_a, 1100, 8),
            (to_a, 1100, 9),
            (to_b, 1200, 10),
        ];
        let mut batch = SendBatch::new(true);
        for &(to, len, tag) in &plan {
            batch.push(to, vec![tag; len]);
        }
        let done = batch.flush(&sender);
        assert_eq!(done.datagrams, plan.len() as u64);
        assert_eq!(
            done.bytes,
            plan.iter().map(|&(_, len, _)| len as u64).sum::<u64>()
        );
        assert_eq!(done.gso_sends, 3, "a's two runs and b's");
        assert_eq!(done.would_block + done.errors, 0);
        let mut buf = [0u8; 2048];
        for (socket, to) in [(&a, to_a), (&b, to_b)] {
            for &(_, len, tag) in plan.iter().filter(|p| p.0 == to) {
                let (got, from) = socket.recv_from(&mut buf).unwrap();
                assert_eq!(from, sender.local_addr().unwrap());
                assert_eq!((got, buf[0]), (len, tag), "datagram {tag}, in order");
                assert!(buf[..got].iter().all(|&x| x == tag));
            }
        }
    }

    #[tokio::test]
    async fn a_gso_message_the_kernel_refuses_goes_out_datagram_by_datagram() {
        let (sender, _) = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        grow_buffers(&receiver, 1 << 20);
        let to = receiver.local_addr().unwrap();
        // 130 segments: more than the kernel's UDP_MAX_SEGMENTS (64, or 128 since 6.x), so
        // the GSO message is refused (EINVAL) whatever the kernel.
        let datagrams: Vec<(SocketAddr, Vec<u8>)> =
            (0..130).map(|i| (to, vec![i as u8; 500])).collect();
        let mut done = Flushed::default();
        let one_message = 0..datagrams.len();
        let sent = send(
            sender.as_raw_fd(),
            &datagrams,
            std::slice::from_ref(&one_message),
            Some(500),
            &mut done,
        );
        assert_eq!(sent, Ok(()));
        assert_eq!((done.datagrams, done.gso_sends, done.errors), (130, 0, 0));
        let mut buf = [0u8; 1024];
        for i in 0..130 {
            let (len, _) = receiver.recv_from(&mut buf).unwrap();
            assert_eq!((len, buf[0]), (500, i as u8), "datagram {i}, in order");
        }
    }
}
