//! Octodiff's two rolling checksums.
//!
//! `Adler32` is Octodiff's own variant of Adler-32: `a` starts at 1 and `b` at 0, for each
//! byte `a += byte` and `b += a`, both kept to 16 bits by wrapping; the checksum is
//! `b << 16 | a`. `Adler32V2` takes both modulo 65521 instead. Octodiff's rotation for V2
//! lets negative intermediates wrap (OctopusDeploy/Octodiff#32), so its rotated value can
//! differ from the checksum of the window: [`Algorithm::rotate`] reproduces Octodiff exactly
//! (for comparison with its test data), while the delta builder slides the window with
//! [`Roll::roll`], which is exact for both. Signatures are only ever written with `Adler32`.

/// A rolling checksum a signature names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Octodiff's 16-bit wrapping variant, its default and what we write.
    Adler32,
    /// The modulo-65521 variant; read, never written.
    Adler32V2,
}

const MODULUS: i64 = 65521;

impl Algorithm {
    /// The name in a signature's header.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Adler32 => "Adler32",
            Algorithm::Adler32V2 => "Adler32V2",
        }
    }

    /// The algorithm a signature names, if it is one of ours.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "Adler32" => Some(Algorithm::Adler32),
            "Adler32V2" => Some(Algorithm::Adler32V2),
            _ => None,
        }
    }

    /// The checksum of `block`.
    pub fn calculate(self, block: &[u8]) -> u32 {
        match self {
            Algorithm::Adler32 => Adler32::calculate(block),
            Algorithm::Adler32V2 => Adler32V2::calculate(block),
        }
    }

    /// Octodiff's `Rotate`, bug for bug: the checksum of the window after dropping `remove`
    /// and taking in `add`, for a window of `chunk_size` bytes.
    pub fn rotate(self, checksum: u32, remove: u8, add: u8, chunk_size: u32) -> u32 {
        match self {
            Algorithm::Adler32 => Adler32::roll(checksum, remove, add, chunk_size),
            Algorithm::Adler32V2 => {
                // .NET: ushort operands promoted to int, `%` truncating, cast back to ushort.
                let (b, a) = ((checksum >> 16) as i64, (checksum & 0xffff) as i64);
                let a = ((a - i64::from(remove) + i64::from(add)) % MODULUS) as u16;
                let b = ((b - i64::from(chunk_size) * i64::from(remove) + i64::from(a) - 1) % MODULUS) as u16;
                (u32::from(b) << 16) | u32::from(a)
            }
        }
    }
}

/// What the delta builder needs of a rolling checksum (monomorphised into its hot loop).
pub(crate) trait Roll {
    /// The checksum of `block`.
    fn calculate(block: &[u8]) -> u32;
    /// The checksum of the window moved by one byte: exactly `calculate` of the new window.
    fn roll(checksum: u32, remove: u8, add: u8, chunk_size: u32) -> u32;
}

/// `Adler32`.
pub(crate) struct Adler32;

impl Roll for Adler32 {
    #[inline]
    fn calculate(block: &[u8]) -> u32 {
        let (mut a, mut b) = (1u16, 0u16);
        for &z in block {
            a = a.wrapping_add(u16::from(z));
            b = b.wrapping_add(a);
        }
        (u32::from(b) << 16) | u32::from(a)
    }

    #[inline(always)]
    fn roll(checksum: u32, remove: u8, add: u8, chunk_size: u32) -> u32 {
        let (b, a) = ((checksum >> 16) as u16, checksum as u16);
        let a = a.wrapping_sub(u16::from(remove)).wrapping_add(u16::from(add));
        let b = b.wrapping_sub((chunk_size.wrapping_mul(u32::from(remove))) as u16).wrapping_add(a).wrapping_sub(1);
        (u32::from(b) << 16) | u32::from(a)
    }
}

/// `Adler32V2`, with an exact rotation.
pub(crate) struct Adler32V2;

impl Roll for Adler32V2 {
    #[inline]
    fn calculate(block: &[u8]) -> u32 {
        let (mut a, mut b) = (1i64, 0i64);
        for &z in block {
            a = (a + i64::from(z)) % MODULUS;
            b = (b + a) % MODULUS;
        }
        ((b as u32) << 16) | a as u32
    }

    #[inline(always)]
    fn roll(checksum: u32, remove: u8, add: u8, chunk_size: u32) -> u32 {
        let (b, a) = (i64::from(checksum >> 16), i64::from(checksum & 0xffff));
        let a = (a - i64::from(remove) + i64::from(add)).rem_euclid(MODULUS);
        let b = (b - i64::from(chunk_size) * i64::from(remove) + a - 1).rem_euclid(MODULUS);
        ((b as u32) << 16) | a as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Vec<u8> {
        (0..5000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect()
    }

    #[test]
    fn rolling_equals_calculating_the_window() {
        let d = data();
        for n in [1usize, 128, 2048] {
            let mut a = Adler32::calculate(&d[..n]);
            let mut v = Adler32V2::calculate(&d[..n]);
            for i in 1..d.len() - n {
                a = Adler32::roll(a, d[i - 1], d[i + n - 1], n as u32);
                v = Adler32V2::roll(v, d[i - 1], d[i + n - 1], n as u32);
                assert_eq!(a, Adler32::calculate(&d[i..i + n]), "Adler32 n={n} i={i}");
                assert_eq!(v, Adler32V2::calculate(&d[i..i + n]), "Adler32V2 n={n} i={i}");
            }
        }
        assert_eq!(Algorithm::Adler32.rotate(12345, 7, 9, 100), Adler32::roll(12345, 7, 9, 100));
    }

    #[test]
    fn names_round_trip() {
        for a in [Algorithm::Adler32, Algorithm::Adler32V2] {
            assert_eq!(Algorithm::from_name(a.name()), Some(a));
        }
        assert_eq!(Algorithm::from_name("Adler64"), None);
    }
}
