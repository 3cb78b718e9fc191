//! Reads a PNG screenshot back into pixels (8-bit RGB or RGBA, not
//! interlaced: what Chromium writes), to check that it shows something.

/// A decoded image: size, and each pixel's luminance (0 to 255).
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub luminance: Vec<u8>,
    /// How many different colours it has (a blank page has one).
    pub colours: usize,
}

pub fn decode(png: &[u8]) -> Result<Image, String> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if !png.starts_with(SIGNATURE) {
        return Err(format!("not a PNG ({} bytes)", png.len()));
    }
    let (mut width, mut height, mut channels) = (0u32, 0u32, 0usize);
    let mut compressed = Vec::new();
    let mut rest = &png[SIGNATURE.len()..];
    while rest.len() >= 12 {
        let length = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let kind = &rest[4..8];
        let data = rest.get(8..8 + length).ok_or("a chunk runs past the end")?;
        match kind {
            b"IHDR" => {
                width = u32::from_be_bytes(data[..4].try_into().expect("4 bytes"));
                height = u32::from_be_bytes(data[4..8].try_into().expect("4 bytes"));
                let (depth, colour, interlace) = (data[8], data[9], data[12]);
                channels = match colour {
                    2 => 3,
                    6 => 4,
                    _ => return Err(format!("colour type {colour} not read here")),
                };
                if depth != 8 || interlace != 0 {
                    return Err(format!("bit depth {depth}, interlace {interlace}"));
                }
            }
            b"IDAT" => compressed.extend_from_slice(data),
            b"IEND" => break,
            _ => {}
        }
        rest = &rest[12 + length..];
    }
    let filtered = miniz_oxide::inflate::decompress_to_vec_zlib(&compressed)
        .map_err(|e| format!("inflate: {e:?}"))?;
    let stride = width as usize * channels;
    if filtered.len() != (stride + 1) * height as usize {
        return Err(format!(
            "{} bytes of pixels for {width}x{height}",
            filtered.len()
        ));
    }
    let mut pixels = vec![0u8; stride * height as usize];
    for y in 0..height as usize {
        let filter = filtered[y * (stride + 1)];
        let line = &filtered[y * (stride + 1) + 1..(y + 1) * (stride + 1)];
        for x in 0..stride {
            let left = if x >= channels {
                pixels[y * stride + x - channels]
            } else {
                0
            };
            let up = if y > 0 {
                pixels[(y - 1) * stride + x]
            } else {
                0
            };
            let up_left = if y > 0 && x >= channels {
                pixels[(y - 1) * stride + x - channels]
            } else {
                0
            };
            let predicted = match filter {
                0 => 0,
                1 => left,
                2 => up,
                3 => ((u16::from(left) + u16::from(up)) / 2) as u8,
                4 => paeth(left, up, up_left),
                other => return Err(format!("filter {other}")),
            };
            pixels[y * stride + x] = line[x].wrapping_add(predicted);
        }
    }
    let mut colours = std::collections::HashSet::new();
    let luminance = pixels
        .chunks(channels)
        .map(|p| {
            colours.insert([p[0], p[1], p[2]]);
            ((u32::from(p[0]) * 299 + u32::from(p[1]) * 587 + u32::from(p[2]) * 114) / 1000) as u8
        })
        .collect();
    Ok(Image {
        width,
        height,
        luminance,
        colours: colours.len(),
    })
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = i16::from(a) + i16::from(b) - i16::from(c);
    let (pa, pb, pc) = (
        (p - i16::from(a)).abs(),
        (p - i16::from(b)).abs(),
        (p - i16::from(c)).abs(),
    );
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

impl Image {
    /// The variance of the luminance: 0 for a page of one colour.
    pub fn variance(&self) -> f64 {
        let n = self.luminance.len().max(1) as f64;
        let mean = self.luminance.iter().map(|&l| f64::from(l)).sum::<f64>() / n;
        self.luminance
            .iter()
            .map(|&l| (f64::from(l) - mean).powi(2))
            .sum::<f64>()
            / n
    }
}
