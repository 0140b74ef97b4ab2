//! Socket options of an accepted connection.

use tokio::net::TcpStream;

/// Sets what every accepted socket needs. Failures are ignored: the
/// connection still works, only less well.
pub fn tune(stream: &TcpStream, send_buffer: usize) {
    // Chat frames are small and latency is the point: do not let Nagle
    // hold them back.
    let _ = stream.set_nodelay(true);
    // Bound what the kernel holds for a peer that does not read; the rest
    // of its send queue is in user space.
    if send_buffer > 0 {
        let _ = socket2::SockRef::from(stream).set_send_buffer_size(send_buffer);
    }
}
