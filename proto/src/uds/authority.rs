//! Any client's `:authority` on a Unix socket.
//!
//! gRPC clients do not agree on what a Unix-socket request's `:authority` is: tonic
//! and grpc-go send `localhost`, but grpc-core (Python's grpcio, C++, Ruby) since 1.57,
//! grpc-java and grpc-swift send the socket path, percent-encoded. h2 (under tonic)
//! refuses the request with `RST_STREAM(PROTOCOL_ERROR)` before any of our code sees
//! it, because such an authority is not `host[:port]` (hyperium/h2#487, unmerged).
//! A socket has no host to check, so the server-side read path rewrites it: the
//! client's HTTP/2 byte stream is split into frames, every header block is decoded
//! (HPACK, mirroring the client's encoder), an authority h2 would refuse becomes
//! `localhost`, and the block is encoded again for h2 (our encoder, h2's decoder).
//! Every other frame passes through untouched; replies are not touched at all.
//!
//! A connection whose first request carries an authority h2 accepts (tonic, grpc-go)
//! is passed through byte for byte from then on: h2's decoder saw the client's own
//! first block, so the two HPACK tables agree and nothing needs decoding again.

use std::io;

use bytes::{Buf as _, BufMut as _, BytesMut};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER: usize = 9;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The largest frame h2 accepts unless it says otherwise (SETTINGS_MAX_FRAME_SIZE's
/// default, which tonic keeps).
const MAX_FRAME: usize = 16_384;
/// The authority given to requests whose own h2 refuses.
const STAND_IN: &[u8] = b"localhost";

/// A header block waiting for its CONTINUATION frames.
struct Pending {
    stream: u32,
    flags: u8,
    priority: Option<[u8; 5]>,
    block: Vec<u8>,
}

/// Whether a connection's header blocks are rewritten.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Before the first header block.
    Undecided,
    /// Every header block is decoded and encoded again.
    Rewrite,
    /// Bytes pass unchanged.
    Passthrough,
}

/// The client-to-server byte stream of one connection, rewritten as the module docs
/// say.
pub(crate) struct Rewriter {
    mode: Mode,
    /// The first header block's frames as received (forwarded as they are when its
    /// authority needs no rewrite).
    first_block: Vec<u8>,
    preface_left: usize,
    input: BytesMut,
    pending: Option<Pending>,
    decoder: fluke_hpack::Decoder<'static>,
    encoder: fluke_hpack::Encoder<'static>,
}

impl Default for Rewriter {
    fn default() -> Self {
        Self {
            mode: Mode::Undecided,
            first_block: Vec::new(),
            preface_left: PREFACE.len(),
            input: BytesMut::new(),
            pending: None,
            decoder: fluke_hpack::Decoder::new(),
            encoder: fluke_hpack::Encoder::new(),
        }
    }
}

impl Rewriter {
    /// Whether everything from now on passes unchanged (read straight through).
    pub(crate) fn passes_through(&self) -> bool {
        self.mode == Mode::Passthrough
    }

    /// Takes bytes the client sent; appends what h2 should read to `output`.
    ///
    /// # Errors
    /// A header block that does not decode (h2 would end the connection too).
    pub(crate) fn feed(&mut self, bytes: &[u8], output: &mut BytesMut) -> io::Result<()> {
        if self.mode == Mode::Passthrough {
            output.extend_from_slice(bytes);
            return Ok(());
        }
        self.input.extend_from_slice(bytes);
        if self.preface_left > 0 {
            let take = self.preface_left.min(self.input.len());
            output.extend_from_slice(&self.input.split_to(take));
            self.preface_left -= take;
        }
        while self.preface_left == 0 && self.input.len() >= FRAME_HEADER {
            let length = usize::from(self.input[0]) << 16
                | usize::from(self.input[1]) << 8
                | usize::from(self.input[2]);
            // h2 refuses a frame over its maximum anyway (FRAME_SIZE_ERROR): end the
            // connection now instead of buffering up to 16 MiB of it.
            if length > MAX_FRAME {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("HTTP/2 frame of {length} bytes exceeds {MAX_FRAME}"),
                ));
            }
            if self.input.len() < FRAME_HEADER + length {
                break;
            }
            let kind = self.input[3];
            if kind != HEADERS && kind != CONTINUATION && self.pending.is_none() {
                output.extend_from_slice(&self.input.split_to(FRAME_HEADER + length));
                continue;
            }
            let mut frame = self.input.split_to(FRAME_HEADER + length);
            if self.mode == Mode::Undecided {
                self.first_block.extend_from_slice(&frame);
            }
            let mut header = frame.split_to(FRAME_HEADER);
            header.advance(3);
            let (kind, flags, stream) = (header.get_u8(), header.get_u8(), header.get_u32());
            self.frame(kind, flags, stream, &frame, output)?;
            if self.mode == Mode::Passthrough {
                output.extend_from_slice(&self.input.split());
                break;
            }
        }
        Ok(())
    }

    fn frame(
        &mut self,
        kind: u8,
        flags: u8,
        stream: u32,
        payload: &[u8],
        output: &mut BytesMut,
    ) -> io::Result<()> {
        let malformed = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
        match kind {
            HEADERS => {
                let mut body = payload;
                let mut pad = 0;
                if flags & PADDED != 0 {
                    pad = usize::from(*body.first().ok_or_else(|| malformed("HEADERS padding"))?);
                    body = &body[1..];
                }
                let priority = if flags & PRIORITY != 0 {
                    let bytes: [u8; 5] = body
                        .get(..5)
                        .and_then(|b| b.try_into().ok())
                        .ok_or_else(|| malformed("HEADERS priority"))?;
                    body = &body[5..];
                    Some(bytes)
                } else {
                    None
                };
                let fragment = body
                    .get(
                        ..body
                            .len()
                            .checked_sub(pad)
                            .ok_or_else(|| malformed("HEADERS padding"))?,
                    )
                    .ok_or_else(|| malformed("HEADERS padding"))?;
                self.pending = Some(Pending {
                    stream,
                    flags,
                    priority,
                    block: fragment.to_vec(),
                });
            }
            CONTINUATION => {
                let pending = self
                    .pending
                    .as_mut()
                    .ok_or_else(|| malformed("CONTINUATION without HEADERS"))?;
                pending.block.extend_from_slice(payload);
            }
            _ => return Err(malformed("a frame inside a header block")),
        }
        if flags & END_HEADERS != 0
            && let Some(pending) = self.pending.take()
        {
            self.rewrite(pending, output)?;
        }
        Ok(())
    }

    fn rewrite(&mut self, pending: Pending, output: &mut BytesMut) -> io::Result<()> {
        let fields = self.decoder.decode(&pending.block).map_err(|error| {
            io::Error::new(io::ErrorKind::InvalidData, format!("HPACK: {error:?}"))
        })?;
        if self.mode == Mode::Undecided {
            let acceptable = fields.iter().all(|(name, value)| {
                name != b":authority" || http::uri::Authority::try_from(&value[..]).is_ok()
            });
            let first = std::mem::take(&mut self.first_block);
            if acceptable {
                output.extend_from_slice(&first);
                self.mode = Mode::Passthrough;
                return Ok(());
            }
            self.mode = Mode::Rewrite;
        }
        let fields: Vec<(Vec<u8>, Vec<u8>)> = fields
            .into_iter()
            .map(|(name, value)| {
                if name == b":authority" && http::uri::Authority::try_from(&value[..]).is_err() {
                    (name, STAND_IN.to_vec())
                } else {
                    (name, value)
                }
            })
            .collect();
        let block = self
            .encoder
            .encode(fields.iter().map(|(n, v)| (&n[..], &v[..])));
        let keep = pending.flags & !(PADDED | END_HEADERS);
        let first_room = MAX_FRAME - if pending.priority.is_some() { 5 } else { 0 };
        let (first, mut rest) = block.split_at(block.len().min(first_room));
        let mut first_payload = Vec::with_capacity(first.len() + 5);
        if let Some(priority) = pending.priority {
            first_payload.extend_from_slice(&priority);
        }
        first_payload.extend_from_slice(first);
        let end = if rest.is_empty() { END_HEADERS } else { 0 };
        write_frame(output, HEADERS, keep | end, pending.stream, &first_payload);
        while !rest.is_empty() {
            let (chunk, after) = rest.split_at(rest.len().min(MAX_FRAME));
            rest = after;
            let end = if rest.is_empty() { END_HEADERS } else { 0 };
            write_frame(output, CONTINUATION, end, pending.stream, chunk);
        }
        Ok(())
    }
}

fn write_frame(output: &mut BytesMut, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let length = payload.len();
    output.put_u8((length >> 16) as u8);
    output.put_u8((length >> 8) as u8);
    output.put_u8(length as u8);
    output.put_u8(kind);
    output.put_u8(flags);
    output.put_u32(stream);
    output.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers_frame(
        encoder: &mut fluke_hpack::Encoder<'_>,
        authority: &[u8],
        flags: u8,
    ) -> Vec<u8> {
        let block = encoder.encode(vec![
            (&b":method"[..], &b"POST"[..]),
            (&b":authority"[..], authority),
            (&b":path"[..], &b"/grpc.health.v1.Health/Check"[..]),
        ]);
        let mut out = BytesMut::new();
        write_frame(&mut out, HEADERS, flags | END_HEADERS, 1, &block);
        out.to_vec()
    }

    fn decode_all(bytes: &[u8]) -> Vec<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut decoder = fluke_hpack::Decoder::new();
        let mut rest = &bytes[PREFACE.len()..];
        let mut blocks = Vec::new();
        while rest.len() >= FRAME_HEADER {
            let length =
                usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
            let (frame, after) = rest.split_at(FRAME_HEADER + length);
            if frame[3] == HEADERS {
                blocks.push(decoder.decode(&frame[FRAME_HEADER..]).unwrap());
            }
            rest = after;
        }
        blocks
    }

    #[test]
    fn a_path_authority_becomes_localhost_and_the_rest_is_kept_byte_for_byte() {
        let mut client = fluke_hpack::Encoder::new();
        let mut input = PREFACE.to_vec();
        // A SETTINGS frame (passes untouched), then two requests.
        input.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        input.extend(headers_frame(&mut client, b"%2Ftmp%2Fsd%2Fc.sock", 0));
        input.extend(headers_frame(&mut client, b"%2Ftmp%2Fsd%2Fc.sock", 0));
        let mut rewriter = Rewriter::default();
        let mut output = BytesMut::new();
        // Fed a byte at a time: frames split anywhere still come out whole.
        for byte in &input {
            rewriter
                .feed(std::slice::from_ref(byte), &mut output)
                .unwrap();
        }
        assert_eq!(&output[..PREFACE.len() + 9], &input[..PREFACE.len() + 9]);
        let blocks = decode_all(&output);
        assert_eq!(blocks.len(), 2);
        for block in blocks {
            let authority = block.iter().find(|(n, _)| n == b":authority").unwrap();
            assert_eq!(authority.1, b"localhost");
            assert!(
                block
                    .iter()
                    .any(|(n, v)| n == b":path" && v == b"/grpc.health.v1.Health/Check")
            );
        }
    }

    #[test]
    fn an_oversized_frame_ends_the_connection_before_it_is_buffered() {
        let mut input = PREFACE.to_vec();
        input.extend_from_slice(&[0x10, 0, 0, 0, 0, 0, 0, 0, 1]);
        let error = Rewriter::default()
            .feed(&input, &mut BytesMut::new())
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_valid_authority_is_kept_and_the_connection_passes_byte_for_byte() {
        let mut client = fluke_hpack::Encoder::new();
        let mut input = PREFACE.to_vec();
        input.extend(headers_frame(&mut client, b"localhost:50051", 0));
        input.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        input.extend(headers_frame(&mut client, b"%2Flater", 0));
        let mut rewriter = Rewriter::default();
        let mut output = BytesMut::new();
        for byte in &input {
            rewriter
                .feed(std::slice::from_ref(byte), &mut output)
                .unwrap();
        }
        assert_eq!(&output[..], &input[..], "passed through unchanged");
        let blocks = decode_all(&output);
        assert!(
            blocks[0]
                .iter()
                .any(|(n, v)| n == b":authority" && v == b"localhost:50051")
        );
    }

    #[test]
    fn padding_and_priority_are_handled() {
        let mut client = fluke_hpack::Encoder::new();
        let block = client.encode(vec![(&b":authority"[..], &b"%2Fx"[..])]);
        let mut payload = vec![3u8];
        payload.extend_from_slice(&[0, 0, 0, 0, 16]);
        payload.extend_from_slice(&block);
        payload.extend_from_slice(&[0, 0, 0]);
        let mut input = PREFACE.to_vec();
        let mut frame = BytesMut::new();
        write_frame(
            &mut frame,
            HEADERS,
            PADDED | PRIORITY | END_HEADERS,
            3,
            &payload,
        );
        input.extend_from_slice(&frame);
        let mut output = BytesMut::new();
        Rewriter::default().feed(&input, &mut output).unwrap();
        let out = &output[PREFACE.len()..];
        assert_eq!(
            out[4],
            PRIORITY | END_HEADERS,
            "padding dropped, priority kept"
        );
        let mut decoder = fluke_hpack::Decoder::new();
        let fields = decoder.decode(&out[FRAME_HEADER + 5..]).unwrap();
        assert_eq!(fields[0].1, b"localhost");
    }
}
