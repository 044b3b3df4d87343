//! The variables-file encryption the agent uses (the reference's `AesEncryption.cs`; `docs/behaviour.md`, "Variables").
//!
//! Layout: `"IV__"` (4 bytes, not checked when reading) ‖ IV (16 bytes) ‖ AES-CBC/PKCS7
//! ciphertext. Key: PBKDF2-HMAC-SHA1(password as UTF-8, salt `"Octopuss"`, 1000 iterations),
//! 32 bytes (AES-256). Some notes on the reference describe a 16-byte (AES-128) key; when
//! the AES-256 key does not unpad, the 16-byte key is tried too, so files from either
//! writer decrypt. There is no MAC: a wrong password shows up as a padding error or, rarely,
//! as garbage that the caller's JSON parser rejects.

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use rand::RngExt as _;

/// The salt the reference uses for every key derivation.
pub(crate) const SALT: &[u8] = b"Octopuss";
/// PBKDF2 iteration count.
pub(crate) const ITERATIONS: u32 = 1000;
/// The 4-byte prefix before the IV.
pub(crate) const IV_PREFIX: &[u8] = b"IV__";
const IV_LEN: usize = 16;
const BLOCK: usize = 16;

/// Why a ciphertext could not be decrypted. Never carries the password or plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DecryptError {
    /// Shorter than the prefix and IV.
    #[error("the file is {0} bytes long, too short to hold the IV__ prefix, an IV and any ciphertext (truncated?)")]
    TooShort(usize),
    /// The ciphertext is not whole AES blocks.
    #[error("the ciphertext is {0} bytes long, not a multiple of the 16-byte AES block (truncated?)")]
    NotBlockAligned(usize),
    /// The padding did not check out: wrong password or corrupt data.
    #[error("the padding is invalid after decryption (wrong password or corrupt file)")]
    BadPadding,
}

/// Derives the AES key of `len` bytes (32 for AES-256, 16 for AES-128) from a password.
pub(crate) fn derive_key(password: &str, len: usize) -> Vec<u8> {
    let mut key = vec![0u8; len];
    pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password.as_bytes(), SALT, ITERATIONS, &mut key);
    key
}

/// Encrypts as the reference does (AES-256, fresh random IV, `IV__` prefix).
pub fn encrypt(plaintext: &[u8], password: &str) -> Vec<u8> {
    let key = derive_key(password, 32);
    let mut iv = [0u8; IV_LEN];
    rand::rng().fill(&mut iv);
    encrypt_with(plaintext, &key, &iv)
}

/// Encrypts with an explicit AES-256 key and IV, with the `IV__` prefix.
pub(crate) fn encrypt_with(plaintext: &[u8], key: &[u8], iv: &[u8; IV_LEN]) -> Vec<u8> {
    let ct = cbc::Encryptor::<aes::Aes256>::new_from_slices(key, iv)
        .expect("AES-256 key is 32 bytes and the IV 16")
        .encrypt_padded_vec_mut::<Pkcs7>(plaintext);
    let mut out = Vec::with_capacity(IV_PREFIX.len() + IV_LEN + ct.len());
    out.extend_from_slice(IV_PREFIX);
    out.extend_from_slice(iv);
    out.extend_from_slice(&ct);
    out
}

/// Decrypts a file's bytes with a password.
///
/// # Errors
/// [`DecryptError`] for a truncated file or a wrong password.
pub(crate) fn decrypt(data: &[u8], password: &str) -> Result<Vec<u8>, DecryptError> {
    if data.len() < IV_PREFIX.len() + IV_LEN + BLOCK {
        return Err(DecryptError::TooShort(data.len()));
    }
    // The reference skips the first four bytes without checking them.
    let iv = &data[IV_PREFIX.len()..IV_PREFIX.len() + IV_LEN];
    let ct = &data[IV_PREFIX.len() + IV_LEN..];
    if !ct.len().is_multiple_of(BLOCK) {
        return Err(DecryptError::NotBlockAligned(ct.len()));
    }
    let key256 = derive_key(password, 32);
    if let Ok(plain) = cbc::Decryptor::<aes::Aes256>::new_from_slices(&key256, iv)
        .expect("AES-256 key is 32 bytes and the IV 16")
        .decrypt_padded_vec_mut::<Pkcs7>(ct)
    {
        return Ok(plain);
    }
    let key128 = derive_key(password, 16);
    cbc::Decryptor::<aes::Aes128>::new_from_slices(&key128, iv)
        .expect("AES-128 key is 16 bytes and the IV 16")
        .decrypt_padded_vec_mut::<Pkcs7>(ct)
        .map_err(|_| DecryptError::BadPadding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_wrong_password() {
        let plain = b"[{\"k\":\"a\",\"v\":\"b\",\"s\":false}]";
        let data = encrypt_with(plain, &derive_key("pw", 32), &[7u8; 16]);
        assert_eq!(&data[..4], b"IV__");
        assert_eq!(decrypt(&data, "pw").unwrap(), plain);
        assert_eq!(decrypt(&data, "wrong"), Err(DecryptError::BadPadding));
        assert_eq!(decrypt(&data[..30 + 16], "pw"), Err(DecryptError::NotBlockAligned(26)));
        assert_eq!(decrypt(&data[..10], "pw"), Err(DecryptError::TooShort(10)));
        let random_iv = encrypt(plain, "pw");
        assert_eq!(decrypt(&random_iv, "pw").unwrap(), plain);
    }

    #[test]
    fn key_derivation_matches_python_hashlib() {
        // python3 -c "import hashlib;print(hashlib.pbkdf2_hmac('sha1',b'password',b'Octopuss',1000,32).hex())"
        assert_eq!(
            hex::encode(derive_key("password", 32)),
            "8574be1b3014aa6bc9b82bc0a8f11e0e604fe33c4cde70684ab2c35e191dca53"
        );
    }
}
