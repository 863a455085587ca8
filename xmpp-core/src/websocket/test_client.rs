//! The client side, for tests only: masked frames built on purpose, well
//! formed or not, and a small seeded generator for the randomized tests.

/// A client frame with every field chosen by the test.
#[derive(Debug, Clone)]
pub struct RawFrame {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: u8,
    pub mask: Option<[u8; 4]>,
    /// Length form: `None` is the minimal one, `Some(2)` or `Some(8)`
    /// forces the 16- or 64-bit field.
    pub len_bytes: Option<u8>,
    /// Announced length, when not the payload's.
    pub len: Option<u64>,
    pub payload: Vec<u8>,
}

impl RawFrame {
    /// A final, masked frame with the minimal length form.
    pub fn new(opcode: u8, payload: &[u8]) -> RawFrame {
        RawFrame {
            fin: true,
            rsv: 0,
            opcode,
            mask: Some([0x37, 0xfa, 0x21, 0x3d]),
            len_bytes: None,
            len: None,
            payload: payload.to_vec(),
        }
    }

    pub fn fin(mut self, fin: bool) -> RawFrame {
        self.fin = fin;
        self
    }

    pub fn mask(mut self, mask: Option<[u8; 4]>) -> RawFrame {
        self.mask = mask;
        self
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![(u8::from(self.fin) << 7) | (self.rsv << 4) | self.opcode];
        let len = self.len.unwrap_or(self.payload.len() as u64);
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let form = self.len_bytes.unwrap_or(match len {
            0..=125 => 0,
            126..=0xffff => 2,
            _ => 8,
        });
        match form {
            0 => out.push(mask_bit | len as u8),
            2 => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&len.to_be_bytes());
            }
        }
        match self.mask {
            Some(mask) => {
                out.extend_from_slice(&mask);
                out.extend(
                    self.payload
                        .iter()
                        .enumerate()
                        .map(|(i, b)| b ^ mask[i % 4]),
                );
            }
            None => out.extend_from_slice(&self.payload),
        }
        out
    }
}

/// A masked frame, final or not.
pub fn frame(fin: bool, opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    RawFrame::new(opcode, payload)
        .fin(fin)
        .mask(Some(mask))
        .encode()
}

/// splitmix64: deterministic, so a failing case is replayed by its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    /// Fewer than `n` random bytes.
    pub fn bytes_below(&mut self, n: usize) -> Vec<u8> {
        let len = self.below(n);
        self.bytes(len)
    }

    /// Fewer than `n` random characters.
    pub fn text_below(&mut self, n: usize) -> String {
        let len = self.below(n);
        self.text(len)
    }

    pub fn mask(&mut self) -> [u8; 4] {
        (self.next_u64() as u32).to_be_bytes()
    }

    /// Text mixing 1- to 4-byte characters, so fragment boundaries fall
    /// inside characters.
    pub fn text(&mut self, chars: usize) -> String {
        const POOL: [char; 8] = ['a', '<', ' ', 'é', 'ß', '€', '中', '😀'];
        (0..chars).map(|_| POOL[self.below(POOL.len())]).collect()
    }

    /// Cut `bytes` into random chunks, often single bytes.
    pub fn chunks(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = match self.below(4) {
                0 => 1,
                1 => 1 + self.below(16),
                2 => 1 + self.below(512),
                _ => 1 + self.below(rest.len()),
            }
            .min(rest.len());
            out.push(rest[..n].to_vec());
            rest = &rest[n..];
        }
        out
    }
}
