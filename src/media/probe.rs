//! What a media file tells about itself, for the message that carries it: an image's size
//! and a small JPEG preview, a video's size and length, an audio file's length. WhatsApp
//! shows these before the file is downloaded (a blank bubble, a 0:00 voice note without
//! them). Reading them never fails a send: what cannot be read is left out.

use std::io::Cursor;

use crate::domain::MediaKind;

/// The longest side of a preview, in pixels (WhatsApp's own previews are about this big).
const THUMBNAIL_SIDE: u32 = 96;
const THUMBNAIL_QUALITY: u8 = 60;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probe {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub seconds: Option<u32>,
    /// A small JPEG of the picture.
    pub thumbnail: Option<Vec<u8>>,
}

/// Reads what a file of `kind` tells about itself. Decoding an image takes a moment on
/// large files: call it off the async threads.
pub fn probe(kind: MediaKind, data: &[u8]) -> Probe {
    match kind {
        MediaKind::Image => picture(data, true),
        MediaKind::Sticker => picture(data, false),
        MediaKind::Video => mp4(data).unwrap_or_default(),
        MediaKind::Audio => Probe {
            seconds: ogg_opus_seconds(data).or_else(|| mp4(data).and_then(|p| p.seconds)),
            ..Probe::default()
        },
        MediaKind::Document => Probe::default(),
    }
}

/// The largest picture read: beyond it the decoder stops (a small file can claim a huge
/// canvas), and the message goes without size or preview.
const MAX_SIDE: u32 = 8192;
const MAX_DECODE_BYTES: u64 = 96 * 1024 * 1024;

fn picture(data: &[u8], with_thumbnail: bool) -> Probe {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    let Ok(mut reader) = image::ImageReader::new(Cursor::new(data)).with_guessed_format() else {
        return Probe::default();
    };
    reader.limits(limits);
    if !with_thumbnail {
        // A size needs the header only.
        return match reader.into_dimensions() {
            Ok((width, height)) => Probe {
                width: Some(width),
                height: Some(height),
                ..Probe::default()
            },
            Err(_) => Probe::default(),
        };
    }
    let Ok(image) = reader.decode() else {
        return Probe::default();
    };
    let thumbnail = with_thumbnail
        .then(|| {
            let small = image.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE).into_rgb8();
            let mut jpeg = Cursor::new(Vec::new());
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, THUMBNAIL_QUALITY)
                .encode_image(&small)
                .ok()
                .map(|()| jpeg.into_inner())
        })
        .flatten();
    Probe {
        width: Some(image.width()),
        height: Some(image.height()),
        seconds: None,
        thumbnail,
    }
}

/// An ISO media (MP4, M4A, MOV) file's length from its movie header (`moov/mvhd`), and
/// the size of its first visual track (`moov/trak/tkhd`).
fn mp4(data: &[u8]) -> Option<Probe> {
    let moov = boxes(data).find(|(kind, _)| kind == b"moov")?.1;
    let mut probe = Probe::default();
    if let Some((_, mvhd)) = boxes(moov).find(|(kind, _)| kind == b"mvhd") {
        let (timescale, duration) = match *mvhd.first()? {
            1 => (be32(mvhd, 20)?, be64(mvhd, 24)?),
            _ => (be32(mvhd, 12)?, u64::from(be32(mvhd, 16)?)),
        };
        // No length (a fragmented file says 0) or an unknown one (all ones) is left out.
        let known = duration > 0 && duration != u64::from(u32::MAX) && duration != u64::MAX;
        if timescale > 0 && known {
            probe.seconds = u32::try_from(duration.div_ceil(u64::from(timescale))).ok();
        }
    }
    for (_, trak) in boxes(moov).filter(|(kind, _)| kind == b"trak") {
        let Some((_, tkhd)) = boxes(trak).find(|(kind, _)| kind == b"tkhd") else {
            continue;
        };
        // Width and height close the track header, as 16.16 fixed point.
        let end = tkhd.len();
        let (width, height) = (be32(tkhd, end.checked_sub(8)?)? >> 16, be32(tkhd, end - 4)? >> 16);
        if width > 0 && height > 0 {
            probe.width = Some(width);
            probe.height = Some(height);
            break;
        }
    }
    Some(probe)
}

/// The boxes (`size`, `type`, body) directly inside `data`.
fn boxes(data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut rest = data;
    std::iter::from_fn(move || {
        let size = be32(rest, 0)? as usize;
        let kind: [u8; 4] = rest.get(4..8)?.try_into().ok()?;
        let (header, size) = match size {
            1 => (16, usize::try_from(be64(rest, 8)?).ok()?),
            0 => (8, rest.len()),
            n => (8, n),
        };
        let body = rest.get(header..size)?;
        rest = &rest[size..];
        Some((kind, body))
    })
}

/// Whether the file is Opus audio in Ogg, the one kind WhatsApp plays as a voice note:
/// an Ogg page whose first packet is an `OpusHead`.
pub fn is_ogg_opus(data: &[u8]) -> bool {
    data.starts_with(b"OggS") && data.get(..128).unwrap_or(data).windows(8).any(|w| w == b"OpusHead")
}

/// An Ogg Opus file's length: the last page's granule position (48 kHz samples) less the
/// pre-skip its `OpusHead` declares.
fn ogg_opus_seconds(data: &[u8]) -> Option<u32> {
    if !data.starts_with(b"OggS") {
        return None;
    }
    let head = data.windows(8).position(|w| w == b"OpusHead")?;
    let pre_skip = u64::from(u16::from_le_bytes(data.get(head + 10..head + 12)?.try_into().ok()?));
    let last = data.windows(4).rposition(|w| w == b"OggS")?;
    let granule = u64::from_le_bytes(data.get(last + 6..last + 14)?.try_into().ok()?);
    if granule == u64::MAX {
        return None;
    }
    u32::try_from(granule.saturating_sub(pre_skip).div_ceil(48_000)).ok()
}

fn be32(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

fn be64(data: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(data.get(at..at + 8)?.try_into().ok()?))
}

/// Sample files built the way encoders write them, for tests here and in the test
/// suites (which build with the `emulator` feature); not in a production build. Building
/// them cannot fail, so they panic if it does.
#[cfg(any(test, feature = "emulator"))]
#[doc(hidden)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub mod samples {
    /// A `width`×`height` PNG of a gradient.
    pub fn png(width: u32, height: u32) -> Vec<u8> {
        let image = image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        });
        let mut png = std::io::Cursor::new(Vec::new());
        image.write_to(&mut png, image::ImageFormat::Png).expect("a PNG");
        png.into_inner()
    }

    /// A `width`×`height` lossless WebP, as stickers are.
    pub fn webp(width: u32, height: u32) -> Vec<u8> {
        let image = image::RgbaImage::from_fn(width, height, |x, y| {
            image::Rgba([(x % 256) as u8, (y % 256) as u8, 64, 255])
        });
        let mut webp = std::io::Cursor::new(Vec::new());
        image.write_to(&mut webp, image::ImageFormat::WebP).expect("a WebP");
        webp.into_inner()
    }

    /// An MP4's boxes: `ftyp`, and `moov` with a movie header of `seconds` and one video
    /// track of `width`×`height` (no media data: enough for what a probe reads).
    pub fn mp4(width: u32, height: u32, seconds: u32) -> Vec<u8> {
        fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
            let mut out = u32::try_from(body.len() + 8).unwrap().to_be_bytes().to_vec();
            out.extend_from_slice(kind);
            out.extend_from_slice(body);
            out
        }
        let mut mvhd = vec![0u8; 100];
        mvhd[12..16].copy_from_slice(&1000u32.to_be_bytes());
        mvhd[16..20].copy_from_slice(&(seconds * 1000).to_be_bytes());
        let mut tkhd = vec![0u8; 84];
        tkhd[76..80].copy_from_slice(&(width << 16).to_be_bytes());
        tkhd[80..84].copy_from_slice(&(height << 16).to_be_bytes());
        let trak = boxed(b"trak", &boxed(b"tkhd", &tkhd));
        let mut moov_body = boxed(b"mvhd", &mvhd);
        moov_body.extend(trak);
        let mut file = boxed(b"ftyp", b"isom\0\0\x02\0isomiso2mp41");
        file.extend(boxed(b"moov", &moov_body));
        file
    }

    /// An Ogg Opus stream's pages: `OpusHead` (pre-skip 312), `OpusTags`, and a last page
    /// ending `seconds` in (no audio packets: enough for what a probe reads).
    pub fn ogg_opus(seconds: u32) -> Vec<u8> {
        fn page(granule: u64, sequence: u32, flags: u8, packet: &[u8]) -> Vec<u8> {
            let mut out = b"OggS".to_vec();
            out.push(0);
            out.push(flags);
            out.extend_from_slice(&granule.to_le_bytes());
            out.extend_from_slice(&0x5741_4741u32.to_le_bytes());
            out.extend_from_slice(&sequence.to_le_bytes());
            out.extend_from_slice(&[0; 4]);
            out.push(1);
            out.push(u8::try_from(packet.len()).unwrap());
            out.extend_from_slice(packet);
            out
        }
        let mut head = b"OpusHead".to_vec();
        head.extend_from_slice(&[1, 1]);
        head.extend_from_slice(&312u16.to_le_bytes());
        head.extend_from_slice(&48_000u32.to_le_bytes());
        head.extend_from_slice(&[0, 0, 0]);
        let mut file = page(0, 0, 2, &head);
        file.extend(page(0, 1, 0, b"OpusTags\x05\0\0\0wagate\0\0\0\0"));
        file.extend(page(u64::from(seconds) * 48_000 + 312, 2, 4, &[0xF8, 0xFF, 0xFE]));
        file
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_gives_its_size_and_a_small_jpeg_preview() {
        let got = probe(MediaKind::Image, &samples::png(640, 480));
        assert_eq!((got.width, got.height), (Some(640), Some(480)));
        let thumbnail = got.thumbnail.expect("a preview");
        let preview = image::load_from_memory(&thumbnail).unwrap();
        assert_eq!(image::guess_format(&thumbnail).unwrap(), image::ImageFormat::Jpeg);
        assert_eq!(
            (preview.width(), preview.height()),
            (96, 72),
            "the aspect ratio is kept"
        );
        let sticker = probe(MediaKind::Sticker, &samples::webp(512, 512));
        assert_eq!(
            (sticker.width, sticker.height, sticker.thumbnail),
            (Some(512), Some(512), None)
        );
    }

    #[test]
    fn a_video_gives_its_size_and_length_and_audio_its_length() {
        let got = probe(MediaKind::Video, &samples::mp4(1280, 720, 12));
        assert_eq!((got.width, got.height, got.seconds), (Some(1280), Some(720), Some(12)));
        assert_eq!(probe(MediaKind::Audio, &samples::ogg_opus(7)).seconds, Some(7));
        assert!(is_ogg_opus(&samples::ogg_opus(7)));
        assert!(!is_ogg_opus(b"OggS\0\x02 a Vorbis stream's first page, no Opus head"));
    }

    #[test]
    fn a_picture_claiming_a_huge_canvas_is_not_decoded() {
        // A PNG header for 100,000 × 100,000 pixels (40 GB decoded): refused at once.
        let mut png = samples::png(1, 1);
        png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        assert_eq!(probe(MediaKind::Image, &png), Probe::default());
    }

    #[test]
    fn what_cannot_be_read_is_left_out() {
        for kind in [MediaKind::Image, MediaKind::Video, MediaKind::Audio, MediaKind::Sticker] {
            assert_eq!(probe(kind, b"not a media file at all"), Probe::default(), "{kind:?}");
            assert_eq!(probe(kind, &[]), Probe::default(), "{kind:?}");
        }
        // A box that claims more than there is.
        let mut broken = samples::mp4(640, 360, 3);
        broken.truncate(60);
        assert_eq!(probe(MediaKind::Video, &broken).width, None);
    }
}
