//! The client side, for tests only: masked frames built on purpose, well
//! formed or not.

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
