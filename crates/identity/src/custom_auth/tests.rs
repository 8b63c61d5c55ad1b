//! Custom authentication tests. Keys and signatures under `testdata/` were made once with
//! the openssl CLI (see `testdata/README.md`); they are test-only.

mod signature_tests {
    use crate::custom_auth::*;

    const TOKEN: &str = include_str!("testdata/token.txt");
    const SIG_A: &str = include_str!("testdata/token.sig-a.b64");
    const SIG_B: &str = include_str!("testdata/token.sig-b.b64");
    const SIG_1024: &str = include_str!("testdata/token.sig-1024.b64");
    const KEY_A: &str = include_str!("testdata/rsa2048-a.pub.pem");
    const KEY_B: &str = include_str!("testdata/rsa2048-b.pub.pem");
    const KEY_A_PKCS1: &str = include_str!("testdata/rsa2048-a.pkcs1.pem");
    const KEY_1024: &str = include_str!("testdata/rsa1024.pub.pem");
    const KEY_EC: &str = include_str!("testdata/ec-p256.pub.pem");

    fn key(pem: &str) -> ParsedKey {
        ParsedKey::from_pem(pem).unwrap()
    }

    #[test]
    fn rsa_2048_keys_parse() {
        assert_eq!(key(KEY_A).rsa_bits(), 2048);
        assert_eq!(key(KEY_B).rsa_bits(), 2048);
    }

    #[test]
    fn short_non_rsa_and_pkcs1_keys_are_refused_with_reasons() {
        assert_eq!(
            ParsedKey::from_pem(KEY_1024).unwrap_err(),
            KeyError::TooShort { bits: 1024 }
        );
        assert!(matches!(
            ParsedKey::from_pem(KEY_EC).unwrap_err(),
            KeyError::NotRsa(_)
        ));
        assert_eq!(
            ParsedKey::from_pem(KEY_A_PKCS1).unwrap_err(),
            KeyError::Pkcs1Pem
        );
        assert_eq!(ParsedKey::from_pem("").unwrap_err(), KeyError::NoPublicKey);
        assert_eq!(
            ParsedKey::from_pem(&format!("{KEY_A}{KEY_B}")).unwrap_err(),
            KeyError::SeveralSections
        );
        let long = format!("{KEY_A}{}", " ".repeat(MAX_PUBLIC_KEY_PEM_CHARS));
        assert!(matches!(
            ParsedKey::from_pem(&long).unwrap_err(),
            KeyError::TooLong { .. }
        ));
        let corrupted = KEY_A.replacen("MIIB", "MIIC", 1);
        assert!(ParsedKey::from_pem(&corrupted).is_err());
        let err = ParsedKey::from_pem(KEY_1024).unwrap_err().to_string();
        assert_eq!(err, "the RSA key has 1024 bits; at least 2048 are required");
    }

    #[test]
    fn an_openssl_signature_verifies() {
        assert_eq!(verify_token_signature(TOKEN, SIG_A, &[key(KEY_A)]), Ok(()));
        // Either of two keys (rotation), in any order.
        assert_eq!(
            verify_token_signature(TOKEN, SIG_A, &[key(KEY_B), key(KEY_A)]),
            Ok(())
        );
        assert_eq!(
            verify_token_signature(TOKEN, SIG_B, &[key(KEY_A), key(KEY_B)]),
            Ok(())
        );
        // Without its padding.
        let unpadded = SIG_A.trim_end_matches('=');
        assert_eq!(
            verify_token_signature(TOKEN, unpadded, &[key(KEY_A)]),
            Ok(())
        );
    }

    #[test]
    fn a_signature_by_the_other_key_fails() {
        assert_eq!(
            verify_token_signature(TOKEN, SIG_B, &[key(KEY_A)]),
            Err(SignatureError::Mismatch)
        );
        // By a 1024-bit key the authorizer could never hold.
        assert_eq!(
            verify_token_signature(TOKEN, SIG_1024, &[key(KEY_A), key(KEY_B)]),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_tampered_token_fails() {
        for tampered in ["allow-device-18", "allow-device-17 ", "", "Allow-device-17"] {
            assert_eq!(
                verify_token_signature(tampered, SIG_A, &[key(KEY_A)]),
                Err(SignatureError::Mismatch),
                "{tampered:?}"
            );
        }
    }

    #[test]
    fn bad_signatures_fail_with_reasons() {
        let keys = [key(KEY_A)];
        let flipped = format!("B{}", &SIG_A[1..]);
        assert_eq!(
            verify_token_signature(TOKEN, &flipped, &keys),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_token_signature(TOKEN, "", &keys),
            Err(SignatureError::Empty)
        );
        for not_base64 in ["abc%2B", "a b", "abc===", "====", "ab-_", "abc=d"] {
            assert_eq!(
                verify_token_signature(TOKEN, not_base64, &keys),
                Err(SignatureError::NotBase64),
                "{not_base64:?}"
            );
        }
        // Matches the pattern but is no base64 (length 1 mod 4).
        assert_eq!(
            verify_token_signature(TOKEN, "abcde", &keys),
            Err(SignatureError::NotBase64)
        );
        assert_eq!(
            verify_token_signature(TOKEN, &"A".repeat(MAX_SIGNATURE_CHARS + 4), &keys),
            Err(SignatureError::TooLong {
                length: MAX_SIGNATURE_CHARS + 4
            })
        );
        assert_eq!(
            verify_token_signature(TOKEN, SIG_A, &[]),
            Err(SignatureError::NoKeys)
        );
        // Truncated: decodes, wrong length for the key.
        assert_eq!(
            verify_token_signature(TOKEN, &SIG_A[..340], &keys),
            Err(SignatureError::Mismatch)
        );
    }
}
