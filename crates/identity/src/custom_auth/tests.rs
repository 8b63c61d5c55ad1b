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

mod credential_tests {
    use crate::custom_auth::*;

    /// What every `awsiot.mqtt5_client_builder` client appends (awsiotsdk 1.31.0).
    const SDK_METRICS: &str = "SDK=IoTDeviceSDK/Python&Platform=Unix&Metadata=(CRTVersion=0.36.1;IoTSDKVersion=1.31.0;IoTSDKFeature=F/5,G/A,I/A;IoTSDKMetricsVersion=1)";
    const SIG_A: &str = include_str!("testdata/token.sig-a.b64");

    /// `urllib.parse.quote`, as the SDK applies it to the signature: `/` stays raw.
    fn python_quote(s: &str) -> String {
        s.replace('+', "%2B").replace('=', "%3D")
    }

    #[test]
    fn metrics_only_username_of_the_sdk() {
        let parsed = MqttUsername::parse(&format!("?{SDK_METRICS}")).unwrap();
        assert_eq!(parsed.user, "");
        assert_eq!(parsed.params.authorizer_name(), None);
        assert_eq!(parsed.params.signature(), None);
        assert_eq!(parsed.params.token("tok"), Ok(None));
        // `;`, `,`, `(` and `/` do not split: Metadata is one parameter.
        assert_eq!(
            parsed.params.get("Metadata").unwrap(),
            "(CRTVersion=0.36.1;IoTSDKVersion=1.31.0;IoTSDKFeature=F/5,G/A,I/A;IoTSDKMetricsVersion=1)"
        );
        assert_eq!(parsed.params.get("SDK").unwrap(), "IoTDeviceSDK/Python");
    }

    #[test]
    fn unsigned_username_of_the_sdk() {
        let raw = format!("alice?x-amz-customauthorizer-name=MyAuth&{SDK_METRICS}");
        let parsed = MqttUsername::parse(&raw).unwrap();
        assert_eq!(parsed.user, "alice");
        assert_eq!(parsed.params.authorizer_name(), Some("MyAuth"));
        assert_eq!(parsed.params.signature(), None);
        assert_eq!(parsed.params.token("tok"), Ok(None));
    }

    #[test]
    fn signed_username_of_the_sdk() {
        let quoted = python_quote(SIG_A);
        assert!(quoted.contains('/') && quoted.contains("%2B") && quoted.ends_with("%3D%3D"));
        let raw = format!(
            "?x-amz-customauthorizer-name=MyAuth&x-amz-customauthorizer-signature={quoted}&tok=allow-device-17&{SDK_METRICS}"
        );
        let parsed = MqttUsername::parse(&raw).unwrap();
        assert_eq!(parsed.user, "");
        assert_eq!(parsed.params.authorizer_name(), Some("MyAuth"));
        assert_eq!(parsed.params.signature(), Some(SIG_A));
        let token = parsed.params.token("tok").unwrap().unwrap();
        assert_eq!(token, "allow-device-17");
        let key = ParsedKey::from_pem(include_str!("testdata/rsa2048-a.pub.pem")).unwrap();
        assert_eq!(
            verify_token_signature(token, parsed.params.signature().unwrap(), &[key]),
            Ok(())
        );
        // The example of real-clients.md: `abc%2B/%3D` is `abc+/=`.
        let parsed = MqttUsername::parse(&format!(
            "?x-amz-customauthorizer-name=MyAuth&x-amz-customauthorizer-signature=abc%2B/%3D&tok=tokval&{SDK_METRICS}"
        ))
        .unwrap();
        assert_eq!(parsed.params.signature(), Some("abc+/="));
        assert_eq!(parsed.params.token("tok"), Ok(Some("tokval")));
    }

    #[test]
    fn raw_plus_is_plus_and_escapes_decode() {
        // Unquoted, as a hand-written client might send it.
        let raw = format!("u?x-amz-customauthorizer-signature={SIG_A}&tok=a+b%20c%2b");
        let parsed = MqttUsername::parse(&raw).unwrap();
        assert_eq!(parsed.params.signature(), Some(SIG_A));
        assert_eq!(parsed.params.token("tok"), Ok(Some("a+b c+")));
        // Fully encoded, `/` as %2F too; and lowercase hex.
        let encoded = SIG_A
            .replace('/', "%2f")
            .replace('+', "%2b")
            .replace('=', "%3d");
        let parsed =
            MqttUsername::parse(&format!("u?x-amz-customauthorizer-signature={encoded}")).unwrap();
        assert_eq!(parsed.params.signature(), Some(SIG_A));
        // A malformed escape stays as it is.
        let parsed = MqttUsername::parse("u?tok=100%&x=%zz%4").unwrap();
        assert_eq!(parsed.params.token("tok"), Ok(Some("100%")));
        assert_eq!(parsed.params.get("x").unwrap(), "%zz%4");
    }

    #[test]
    fn usernames_without_query_or_with_odd_pieces() {
        let parsed = MqttUsername::parse("plain-user").unwrap();
        assert_eq!(parsed.user, "plain-user");
        assert_eq!(parsed.params, CustomAuthParams::default());
        let parsed = MqttUsername::parse("").unwrap();
        assert_eq!(parsed.user, "");
        // Only the first `?` splits; empty pieces and pieces without `=` are tolerated.
        let parsed = MqttUsername::parse("a?&&flag&tok=x?y=z&").unwrap();
        assert_eq!(parsed.user, "a");
        assert_eq!(parsed.params.get("flag").unwrap(), "");
        assert_eq!(parsed.params.token("tok"), Ok(Some("x?y=z")));
        // The user part is kept as sent, not decoded.
        let parsed = MqttUsername::parse("a%20b+c?tok=1").unwrap();
        assert_eq!(parsed.user, "a%20b+c");
        // Names are case-sensitive in a query.
        let parsed = MqttUsername::parse("?X-Amz-CustomAuthorizer-Name=Nope&TOK=1").unwrap();
        assert_eq!(parsed.params.authorizer_name(), None);
        assert_eq!(parsed.params.token("tok"), Ok(None));
        // Same value twice is no conflict.
        let parsed = MqttUsername::parse("?tok=1&tok=%31").unwrap();
        assert_eq!(parsed.params.token("tok"), Ok(Some("1")));
    }

    #[test]
    fn username_limit() {
        let at_limit = format!("?tok=1&pad={}", "x".repeat(MAX_USERNAME_BYTES - 11));
        assert_eq!(at_limit.len(), MAX_USERNAME_BYTES);
        assert!(MqttUsername::parse(&at_limit).is_ok());
        assert_eq!(
            MqttUsername::parse(&format!("{at_limit}x")).unwrap_err(),
            CredentialError::UsernameTooLong {
                length: MAX_USERNAME_BYTES + 1
            }
        );
    }

    #[test]
    fn authorizer_name_rules() {
        for good in ["MyAuth", "a", "A_b=c,d@e-f", "0", &"n".repeat(128)] {
            assert_eq!(check_authorizer_name(good), Ok(()), "{good}");
            let parsed =
                MqttUsername::parse(&format!("?x-amz-customauthorizer-name={good}")).unwrap();
            assert_eq!(parsed.params.authorizer_name(), Some(good));
        }
        let cases = [
            ("", NameProblem::Empty),
            (&*"n".repeat(129), NameProblem::TooLong(129)),
            ("my auth", NameProblem::BadCharacter(' ')),
            ("a/b", NameProblem::BadCharacter('/')),
            ("é", NameProblem::BadCharacter('é')),
            ("a.b", NameProblem::BadCharacter('.')),
        ];
        for (bad, problem) in cases {
            assert_eq!(check_authorizer_name(bad), Err(problem), "{bad}");
            let encoded = bad.replace(' ', "%20").replace('/', "%2F");
            assert_eq!(
                MqttUsername::parse(&format!("?x-amz-customauthorizer-name={encoded}"))
                    .unwrap_err(),
                CredentialError::InvalidAuthorizerName(problem),
                "{bad}"
            );
        }
        assert_eq!(
            CredentialError::InvalidAuthorizerName(NameProblem::BadCharacter(' ')).to_string(),
            "the authorizer name contains ' '; only letters, digits and `_=,@-` are allowed"
        );
    }

    #[test]
    fn signature_form_rules() {
        let cases = [
            ("", SignatureError::Empty),
            ("abc===", SignatureError::NotBase64),
            ("ab-_", SignatureError::NotBase64),
            ("a%20b", SignatureError::NotBase64),
            (
                &*"A".repeat(MAX_SIGNATURE_CHARS + 1),
                SignatureError::TooLong {
                    length: MAX_SIGNATURE_CHARS + 1,
                },
            ),
        ];
        for (bad, problem) in cases {
            assert_eq!(
                MqttUsername::parse(&format!("?x-amz-customauthorizer-signature={bad}"))
                    .unwrap_err(),
                CredentialError::InvalidSignature(problem),
                "{bad}"
            );
        }
        let at_limit = "A".repeat(MAX_SIGNATURE_CHARS);
        assert!(
            MqttUsername::parse(&format!("?x-amz-customauthorizer-signature={at_limit}")).is_ok()
        );
    }

    #[test]
    fn token_rules() {
        let at_limit = "t".repeat(MAX_TOKEN_CHARS);
        let parsed = MqttUsername::parse(&format!("?tok={at_limit}")).unwrap();
        assert_eq!(parsed.params.token("tok"), Ok(Some(at_limit.as_str())));
        // Characters, not bytes: 6144 two-byte characters are fine.
        let wide = "é".repeat(MAX_TOKEN_CHARS);
        let parsed = CustomAuthParams::from_http(&[("tok", &wide)], "").unwrap();
        assert_eq!(parsed.token("tok"), Ok(Some(wide.as_str())));
        let parsed = MqttUsername::parse(&format!("?tok={at_limit}t")).unwrap();
        assert_eq!(
            parsed.params.token("tok"),
            Err(CredentialError::TokenTooLong {
                length: MAX_TOKEN_CHARS + 1
            })
        );
        let parsed = MqttUsername::parse("?tok=").unwrap();
        assert_eq!(parsed.params.token("tok"), Err(CredentialError::EmptyToken));
        let parsed = MqttUsername::parse("?tok=%FF%FE").unwrap();
        assert_eq!(
            parsed.params.token("tok"),
            Err(CredentialError::NotUtf8 {
                parameter: "tok".into()
            })
        );
        let parsed = MqttUsername::parse("?tok=1&tok=2").unwrap();
        assert_eq!(
            parsed.params.token("tok"),
            Err(CredentialError::Conflicting {
                parameter: "tok".into()
            })
        );
        // The SDK's parameters never count as a token, whatever the key name.
        let parsed = MqttUsername::parse(&format!("?{SDK_METRICS}")).unwrap();
        assert_eq!(parsed.params.token("tok"), Ok(None));
    }

    #[test]
    fn conflicting_names_and_signatures() {
        assert_eq!(
            MqttUsername::parse("?x-amz-customauthorizer-name=A&x-amz-customauthorizer-name=B")
                .unwrap_err(),
            CredentialError::Conflicting {
                parameter: AUTHORIZER_NAME_PARAM.into()
            }
        );
        assert_eq!(
            MqttUsername::parse(
                "?x-amz-customauthorizer-signature=AAAA&x-amz-customauthorizer-signature=BBBB"
            )
            .unwrap_err(),
            CredentialError::Conflicting {
                parameter: SIGNATURE_PARAM.into()
            }
        );
    }

    #[test]
    fn http_headers_and_query() {
        // Headers, any case; the token key too.
        let headers = [
            ("Host", "example.com"),
            ("X-Amz-CustomAuthorizer-Name", "MyAuth"),
            ("x-amz-customauthorizer-signature", SIG_A),
            ("MyToken", "allow-device-17"),
        ];
        let params = CustomAuthParams::from_http(&headers, "qos=1").unwrap();
        assert_eq!(params.authorizer_name(), Some("MyAuth"));
        assert_eq!(params.signature(), Some(SIG_A));
        assert_eq!(params.token("mytoken"), Ok(Some("allow-device-17")));
        assert_eq!(params.get("qos").unwrap(), "1");
        // Header values are not percent-decoded.
        let params = CustomAuthParams::from_http(&[("tok", "a%20b")], "").unwrap();
        assert_eq!(params.token("tok"), Ok(Some("a%20b")));

        // The query (a WebSocket upgrade `/mqtt?...`), percent-encoded signature.
        let query = format!(
            "x-amz-customauthorizer-name=MyAuth&MyToken=allow-device-17&x-amz-customauthorizer-signature={}",
            SIG_A
                .replace('+', "%2B")
                .replace('/', "%2F")
                .replace('=', "%3D")
        );
        let params =
            CustomAuthParams::from_http(&[("Sec-WebSocket-Protocol", "mqtt")], &query).unwrap();
        assert_eq!(params.authorizer_name(), Some("MyAuth"));
        assert_eq!(params.signature(), Some(SIG_A));
        assert_eq!(params.token("MyToken"), Ok(Some("allow-device-17")));
        // Query names are case-sensitive.
        assert_eq!(params.token("mytoken"), Ok(None));

        // Split between header and query; the same value in both is fine, different is not.
        let params =
            CustomAuthParams::from_http(&[("x-amz-customauthorizer-name", "MyAuth")], &query)
                .unwrap();
        assert_eq!(params.authorizer_name(), Some("MyAuth"));
        assert_eq!(
            CustomAuthParams::from_http(&[("x-amz-customauthorizer-name", "Other")], &query)
                .unwrap_err(),
            CredentialError::Conflicting {
                parameter: AUTHORIZER_NAME_PARAM.into()
            }
        );
        assert!(
            CustomAuthParams::from_http(&[], "")
                .unwrap()
                .authorizer_name()
                .is_none()
        );
    }
}

mod request_tests {
    use serde_json::json;

    use crate::custom_auth::*;

    fn mqtt_over_tls() -> AuthorizerRequest {
        AuthorizerRequest {
            token: Some("allow-device-17".into()),
            signature_verified: true,
            tls: Some(TlsContext {
                server_name: Some("iot.example.com".into()),
            }),
            http: None,
            mqtt: Some(MqttContext {
                username: Some("alice?x-amz-customauthorizer-name=MyAuth".into()),
                password: Some(b"s3cr\xffet".to_vec()),
                client_id: Some("device-17".into()),
            }),
            connection_id: Some("2d6a0c43-8a44-4bd1-a3d4-8a2c2a3e4b5f".into()),
        }
    }

    #[test]
    fn mqtt_over_tls_event() {
        assert_eq!(
            mqtt_over_tls().to_json(),
            json!({
                "token": "allow-device-17",
                "signatureVerified": true,
                "protocols": ["tls", "mqtt"],
                "protocolData": {
                    "tls": {"serverName": "iot.example.com"},
                    "mqtt": {
                        "username": "alice?x-amz-customauthorizer-name=MyAuth",
                        "password": "czNjcv9ldA==",
                        "clientId": "device-17"
                    }
                },
                "connectionMetadata": {"id": "2d6a0c43-8a44-4bd1-a3d4-8a2c2a3e4b5f"}
            })
        );
    }

    #[test]
    fn only_fields_present() {
        let bare = AuthorizerRequest::default();
        assert_eq!(
            bare.to_json(),
            json!({"signatureVerified": false, "protocols": []})
        );
        // TLS without SNI: the protocol, no data; MQTT without a password.
        let request = AuthorizerRequest {
            tls: Some(TlsContext::default()),
            mqtt: Some(MqttContext {
                client_id: Some("c".into()),
                ..MqttContext::default()
            }),
            ..AuthorizerRequest::default()
        };
        assert_eq!(
            request.to_json(),
            json!({
                "signatureVerified": false,
                "protocols": ["tls", "mqtt"],
                "protocolData": {"mqtt": {"clientId": "c"}}
            })
        );
        // An empty password is present (base64 of nothing).
        let request = AuthorizerRequest {
            mqtt: Some(MqttContext {
                password: Some(Vec::new()),
                ..MqttContext::default()
            }),
            ..AuthorizerRequest::default()
        };
        assert_eq!(request.to_json()["protocolData"]["mqtt"]["password"], "");
    }

    #[test]
    fn mqtt_over_wss_event_has_all_three() {
        let request = AuthorizerRequest {
            http: Some(HttpContext {
                headers: vec![
                    ("host".into(), "iot.example.com".into()),
                    ("sec-websocket-protocol".into(), "mqtt".into()),
                    ("x-amz-customauthorizer-name".into(), "MyAuth".into()),
                ],
                query: "x=1".into(),
            }),
            ..mqtt_over_tls()
        };
        let event = request.to_json();
        assert_eq!(event["protocols"], json!(["tls", "http", "mqtt"]));
        assert_eq!(
            event["protocolData"]["http"],
            json!({
                "headers": {
                    "host": "iot.example.com",
                    "sec-websocket-protocol": "mqtt",
                    "x-amz-customauthorizer-name": "MyAuth"
                },
                "queryString": "?x=1"
            })
        );
    }

    #[test]
    fn repeated_headers_join() {
        let request = AuthorizerRequest {
            http: Some(HttpContext {
                headers: vec![
                    ("Accept".into(), "a".into()),
                    ("x".into(), "1".into()),
                    ("accept".into(), "b".into()),
                ],
                query: String::new(),
            }),
            ..AuthorizerRequest::default()
        };
        assert_eq!(
            request.to_json()["protocolData"]["http"],
            json!({"headers": {"Accept": "a,b", "x": "1"}})
        );
    }

    #[test]
    fn http_context_is_capped_at_8_kb() {
        let query = "q=".to_owned() + &"x".repeat(1000); // 1003 bytes with `?`
        let big = "v".repeat(7200);
        let request = AuthorizerRequest {
            http: Some(HttpContext {
                headers: vec![
                    ("a".into(), "1".into()),
                    ("big".into(), big.clone()), // 7203: does not fit after a and the query
                    ("b".into(), "2".into()),    // later small ones still do
                    ("cookie".into(), "c".repeat(6000)),
                ],
                query: query.clone(),
            }),
            ..AuthorizerRequest::default()
        };
        let http = &request.to_json()["protocolData"]["http"];
        assert_eq!(http["queryString"], format!("?{query}"));
        assert_eq!(
            http["headers"],
            json!({"a": "1", "b": "2", "cookie": "c".repeat(6000)})
        );
        // Exactly at the limit.
        let request = AuthorizerRequest {
            http: Some(HttpContext {
                headers: vec![("h".into(), "v".repeat(MAX_HTTP_CONTEXT_BYTES - 1 - 3))],
                query: "ab".into(),
            }),
            ..AuthorizerRequest::default()
        };
        let http = &request.to_json()["protocolData"]["http"];
        assert_eq!(http["headers"]["h"].as_str().unwrap().len(), 8188);
        // A query over the limit is left out, the headers still there.
        let request = AuthorizerRequest {
            http: Some(HttpContext {
                headers: vec![("h".into(), "v".into())],
                query: "x".repeat(MAX_HTTP_CONTEXT_BYTES),
            }),
            ..AuthorizerRequest::default()
        };
        assert_eq!(
            request.to_json()["protocolData"]["http"],
            json!({"headers": {"h": "v"}})
        );
    }

    #[test]
    fn cache_key_covers_request_name_and_generation_not_connection_id() {
        let base = mqtt_over_tls();
        let key = base.cache_key("MyAuth", 3);
        assert_eq!(key, mqtt_over_tls().cache_key("MyAuth", 3));
        let other_connection = AuthorizerRequest {
            connection_id: Some("another".into()),
            ..mqtt_over_tls()
        };
        assert_eq!(key, other_connection.cache_key("MyAuth", 3));
        assert_ne!(key, base.cache_key("MyAuth", 4));
        assert_ne!(key, base.cache_key("OtherAuth", 3));
        let changes: [fn(&mut AuthorizerRequest); 6] = [
            |r| r.token = Some("allow-device-18".into()),
            |r| r.signature_verified = false,
            |r| r.tls = None,
            |r| r.mqtt.as_mut().unwrap().password = Some(b"other".to_vec()),
            |r| r.mqtt.as_mut().unwrap().client_id = Some("device-18".into()),
            |r| {
                r.http = Some(HttpContext::default());
            },
        ];
        for change in changes {
            let mut changed = mqtt_over_tls();
            change(&mut changed);
            assert_ne!(key, changed.cache_key("MyAuth", 3), "{changed:?}");
        }
        assert_eq!(format!("{key:?}").len(), "CacheKey()".len() + 64);
    }
}

mod answer_tests {
    use std::time::Duration;

    use ferrocore_policy::{Action, Arns, ErrorKind, Request};
    use serde_json::json;

    use crate::custom_auth::*;

    fn policy() -> serde_json::Value {
        json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "iot:Connect",
                 "Resource": "arn:aws:iot:us-east-1:123456789012:client/${iot:ClientId}"},
                {"Effect": "Allow", "Action": "iot:Publish",
                 "Resource": "arn:aws:iot:us-east-1:123456789012:topic/d/${iot:ClientId}/*"}
            ]
        })
    }

    fn answer(value: serde_json::Value) -> Result<AuthorizerAnswer, AnswerError> {
        AuthorizerAnswer::from_json(value.to_string().as_bytes())
    }

    #[test]
    fn aws_example_answer() {
        let valid = answer(json!({
            "isAuthenticated": true,
            "principalId": "device17",
            "disconnectAfterInSeconds": 86400,
            "refreshAfterInSeconds": 300,
            "policyDocuments": [policy()]
        }))
        .unwrap();
        assert!(valid.authenticated);
        assert_eq!(valid.principal_id, "device17");
        assert_eq!(valid.disconnect_after, Some(Duration::from_secs(86400)));
        assert_eq!(valid.refresh_after, Some(Duration::from_secs(300)));
        assert_eq!(valid.policies.len(), 1);
        assert_eq!(valid.policies[0].compiled.name(), "policyDocuments[0]");
        let set = valid.policy_set();
        let arns = Arns::new("us-east-1", "123456789012");
        let req = Request::new().with_client_id("s-17");
        assert!(
            set.evaluate(Action::Publish, &arns.topic("d/s-17/t"), &req)
                .is_allowed()
        );
        assert!(
            !set.evaluate(Action::Publish, &arns.topic("d/s-18/t"), &req)
                .is_allowed()
        );
    }

    #[test]
    fn policies_as_objects_or_strings() {
        let text = policy().to_string();
        let valid = answer(json!({
            "isAuthenticated": true,
            "principalId": "p",
            "policyDocuments": [policy(), text]
        }))
        .unwrap();
        assert_eq!(valid.policies.len(), 2);
        assert_eq!(valid.policies[0].text, text);
        assert_eq!(valid.policies[1].text, text);
        // Whitespace inside an object form is kept as sent.
        let body = format!(
            r#"{{"isAuthenticated":true,"principalId":"p","policyDocuments":[ {} ]}}"#,
            serde_json::to_string_pretty(&policy()).unwrap()
        );
        let valid = AuthorizerAnswer::from_json(body.as_bytes()).unwrap();
        assert!(valid.policies[0].text.starts_with("{\n"));
    }

    #[test]
    fn denials_and_optional_members() {
        let denial = answer(json!({"isAuthenticated": false, "principalId": "nobody"})).unwrap();
        assert!(!denial.authenticated);
        assert!(denial.policies.is_empty());
        assert_eq!(denial.disconnect_after, None);
        assert_eq!(denial.refresh_after, None);
        let nulls = answer(json!({
            "isAuthenticated": true, "principalId": "p", "policyDocuments": null,
            "disconnectAfterInSeconds": null, "refreshAfterInSeconds": null,
            "context": {"unknown": "ignored"}
        }))
        .unwrap();
        assert!(nulls.policies.is_empty() && nulls.refresh_after.is_none());
    }

    #[test]
    fn required_members_and_types() {
        let cases = [
            (
                json!({"principalId": "p"}),
                AnswerError::Missing("isAuthenticated"),
            ),
            (
                json!({"isAuthenticated": null, "principalId": "p"}),
                AnswerError::Missing("isAuthenticated"),
            ),
            (
                json!({"isAuthenticated": true}),
                AnswerError::Missing("principalId"),
            ),
            (
                json!({"isAuthenticated": false}),
                AnswerError::Missing("principalId"),
            ),
            (
                json!({"isAuthenticated": "true", "principalId": "p"}),
                AnswerError::WrongType {
                    field: "isAuthenticated".into(),
                    expected: "a boolean",
                },
            ),
            (
                json!({"isAuthenticated": 1, "principalId": "p"}),
                AnswerError::WrongType {
                    field: "isAuthenticated".into(),
                    expected: "a boolean",
                },
            ),
            (
                json!({"isAuthenticated": true, "principalId": 17}),
                AnswerError::WrongType {
                    field: "principalId".into(),
                    expected: "a string",
                },
            ),
            (
                json!({"isAuthenticated": true, "principalId": "p", "policyDocuments": {}}),
                AnswerError::WrongType {
                    field: "policyDocuments".into(),
                    expected: "an array",
                },
            ),
            (
                json!({"isAuthenticated": true, "principalId": "p", "policyDocuments": [5]}),
                AnswerError::WrongType {
                    field: "policyDocuments[0]".into(),
                    expected: "a JSON object or a JSON-encoded string",
                },
            ),
            (
                json!({"isAuthenticated": true, "principalId": "p", "policyDocuments": [[]]}),
                AnswerError::WrongType {
                    field: "policyDocuments[0]".into(),
                    expected: "a JSON object or a JSON-encoded string",
                },
            ),
            (
                json!({"isAuthenticated": true, "principalId": "p", "refreshAfterInSeconds": "300"}),
                AnswerError::WrongType {
                    field: "refreshAfterInSeconds".into(),
                    expected: "an integer",
                },
            ),
            (
                json!({"isAuthenticated": true, "principalId": "p", "refreshAfterInSeconds": 300.5}),
                AnswerError::WrongType {
                    field: "refreshAfterInSeconds".into(),
                    expected: "an integer",
                },
            ),
        ];
        for (value, error) in cases {
            assert_eq!(answer(value.clone()).unwrap_err(), error, "{value}");
        }
    }

    #[test]
    fn principal_id_rule() {
        for good in ["a", "Device17", &"x".repeat(128)] {
            assert!(answer(json!({"isAuthenticated": true, "principalId": good})).is_ok());
        }
        for bad in [
            "",
            &"x".repeat(129),
            "dev-17",
            "dev 17",
            "dév",
            "a_b",
            "a:b",
        ] {
            assert_eq!(
                answer(json!({"isAuthenticated": true, "principalId": bad})).unwrap_err(),
                AnswerError::InvalidPrincipalId,
                "{bad}"
            );
        }
    }

    fn built_in(value: serde_json::Value) -> Result<AuthorizerAnswer, AnswerError> {
        AuthorizerAnswer::from_json_with(value.to_string().as_bytes(), AnswerRules::BuiltIn)
    }

    #[test]
    fn built_in_principal_ids_are_wider_but_never_wildcards_or_levels() {
        for good in [
            "client-1",
            "alice@example.com",
            "auth0|5f2b",
            "0b7c3c5e-4d2f-4c1e-9a53-1f0e7b9c2d11",
            "a_b:c.d~e",
            &"x".repeat(128),
        ] {
            assert_eq!(
                built_in(json!({"isAuthenticated": true, "principalId": good}))
                    .unwrap()
                    .principal_id,
                good
            );
            assert!(is_built_in_principal_id(good));
        }
        for bad in [
            "",
            "a b",
            "a/b",
            "a+b",
            "a#b",
            "a*",
            "a?",
            "$aws",
            "tab\t",
            "dév",
            "nl\n",
            &"x".repeat(129),
        ] {
            assert_eq!(
                built_in(json!({"isAuthenticated": true, "principalId": bad})).unwrap_err(),
                AnswerError::InvalidBuiltInPrincipalId,
                "{bad:?}"
            );
        }
        // Webhooks keep AWS's rule.
        assert_eq!(
            answer(json!({"isAuthenticated": true, "principalId": "client-1"})).unwrap_err(),
            AnswerError::InvalidPrincipalId
        );
    }

    #[test]
    fn built_in_lifetimes_start_at_one_second() {
        for field in ["disconnectAfterInSeconds", "refreshAfterInSeconds"] {
            let valid =
                built_in(json!({"isAuthenticated": true, "principalId": "p", field: 1})).unwrap();
            assert!(
                valid.disconnect_after == Some(Duration::from_secs(1))
                    || valid.refresh_after == Some(Duration::from_secs(1))
            );
            for bad in [0, 86401] {
                let error =
                    built_in(json!({"isAuthenticated": true, "principalId": "p", field: bad}))
                        .unwrap_err();
                assert!(
                    matches!(error, AnswerError::OutOfBuiltInRange { .. }),
                    "{field} {bad}: {error}"
                );
                assert!(error.to_string().contains("1-86400"), "{error}");
            }
            // Webhooks: 300 at least.
            assert!(matches!(
                answer(json!({"isAuthenticated": true, "principalId": "p", field: 1})).unwrap_err(),
                AnswerError::OutOfRange { .. }
            ));
        }
    }

    #[test]
    fn context_and_claims_extensions() {
        let valid = answer(json!({
            "isAuthenticated": true, "principalId": "p",
            "context": {"site": "lyon", "tokenAgeSeconds": 12, "admin": false, "gone": null},
            "claims": {"sub": "client-1", "scope": ["read", "write"], "level": 3,
                       "mixed": ["a", 1, true], "none": []}
        }))
        .unwrap();
        let context: Vec<(&str, &str)> = valid
            .context
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            context,
            [
                ("admin", "false"),
                ("site", "lyon"),
                ("tokenAgeSeconds", "12")
            ]
        );
        assert_eq!(valid.claims["sub"], ["client-1"]);
        assert_eq!(valid.claims["scope"], ["read", "write"]);
        assert_eq!(valid.claims["level"], ["3"]);
        assert_eq!(valid.claims["mixed"], ["a", "1", "true"]);
        assert!(valid.claims["none"].is_empty());
        // Absent or null members: empty.
        let plain =
            answer(json!({"isAuthenticated": true, "principalId": "p", "claims": null})).unwrap();
        assert!(plain.context.is_empty() && plain.claims.is_empty());
    }

    #[test]
    fn extension_limits_and_types() {
        let many: serde_json::Map<String, serde_json::Value> = (0..=MAX_EXTENSION_ENTRIES)
            .map(|i| (format!("k{i}"), json!("v")))
            .collect();
        let long_name = "n".repeat(MAX_EXTENSION_NAME_CHARS + 1);
        let long_value = "v".repeat(MAX_EXTENSION_VALUE_CHARS + 1);
        let values: Vec<String> = (0..=MAX_CLAIM_VALUES).map(|i| i.to_string()).collect();
        let cases = [
            (json!({"context": []}), "context must be an object"),
            (json!({"claims": "x"}), "claims must be an object"),
            (json!({"context": many}), "context has 65 names"),
            (
                json!({"claims": {long_name.as_str(): "v"}}),
                "claims has a name of 129",
            ),
            (json!({"context": {"": "v"}}), "context has a name of 0"),
            (json!({"context": {"a\u{1}": "v"}}), "control characters"),
            (
                json!({"context": {"a": long_value.as_str()}}),
                "context.a is 1025 characters",
            ),
            (
                json!({"claims": {"a": [long_value.as_str()]}}),
                "claims.a is 1025 characters",
            ),
            (json!({"claims": {"a": values}}), "claims.a has 65 values"),
            (
                json!({"context": {"a": ["x"]}}),
                "context.a must be a string",
            ),
            (json!({"context": {"a": {}}}), "context.a must be a string"),
            (json!({"claims": {"a": {}}}), "claims.a must be a string"),
            (
                json!({"claims": {"a": [["x"]]}}),
                "claims.a must be a string",
            ),
            (
                json!({"claims": {"a": [null]}}),
                "claims.a must be a string",
            ),
        ];
        for (extension, expected) in cases {
            let mut body = json!({"isAuthenticated": true, "principalId": "p"});
            for (name, value) in extension.as_object().unwrap() {
                body[name] = value.clone();
            }
            let error = answer(body).unwrap_err();
            assert!(error.to_string().contains(expected), "{expected}: {error}");
        }
        // A name given twice is refused (a map would silently keep one).
        let twice = br#"{"isAuthenticated": true, "principalId": "p",
            "claims": {"role": "user", "role": "admin"}}"#;
        assert_eq!(
            AuthorizerAnswer::from_json(twice).unwrap_err(),
            AnswerError::DuplicateName {
                member: "claims",
                name: "role".into()
            }
        );
        // At the limits: accepted.
        let names: serde_json::Map<String, serde_json::Value> = (0..MAX_EXTENSION_ENTRIES)
            .map(|i| (format!("k{i}"), json!("v")))
            .collect();
        let values = vec!["v"; MAX_CLAIM_VALUES];
        let longest = "v".repeat(MAX_EXTENSION_VALUE_CHARS);
        let name = "n".repeat(MAX_EXTENSION_NAME_CHARS);
        let valid = answer(
            json!({"isAuthenticated": true, "principalId": "p", "context": names,
            "claims": {"many": values, name.as_str(): longest}}),
        )
        .unwrap();
        assert_eq!(valid.context.len(), MAX_EXTENSION_ENTRIES);
        assert_eq!(valid.claims["many"].len(), MAX_CLAIM_VALUES);
        assert_eq!(valid.claims[&name], [longest]);
    }

    #[test]
    fn durations_must_be_within_300_to_86400() {
        for field in ["disconnectAfterInSeconds", "refreshAfterInSeconds"] {
            for good in [300, 3600, 86400] {
                let valid =
                    answer(json!({"isAuthenticated": true, "principalId": "p", field: good}))
                        .unwrap();
                let got = if field.starts_with("disconnect") {
                    valid.disconnect_after
                } else {
                    valid.refresh_after
                };
                assert_eq!(got, Some(Duration::from_secs(good)));
            }
            for bad in [
                json!(0),
                json!(299),
                json!(86401),
                json!(-300),
                json!(u64::MAX),
            ] {
                let error =
                    answer(json!({"isAuthenticated": true, "principalId": "p", field: bad}))
                        .unwrap_err();
                assert_eq!(
                    error,
                    AnswerError::OutOfRange {
                        field: if field.starts_with("disconnect") {
                            "disconnectAfterInSeconds"
                        } else {
                            "refreshAfterInSeconds"
                        },
                        value: bad.to_string(),
                    }
                );
            }
        }
    }

    #[test]
    fn policy_count_and_size_limits() {
        let ten = vec![policy(); 10];
        assert_eq!(
            answer(json!({"isAuthenticated": true, "principalId": "p", "policyDocuments": ten}))
                .unwrap()
                .policies
                .len(),
            10
        );
        let eleven = vec![policy(); 11];
        assert_eq!(
            answer(json!({"isAuthenticated": true, "principalId": "p", "policyDocuments": eleven}))
                .unwrap_err(),
            AnswerError::TooManyPolicies { count: 11 }
        );
        // 2048 characters not counting whitespace.
        let doc_with = |resource_len: usize| {
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Publish",
                "Resource": format!("arn:aws:iot:us-east-1:123456789012:topic/{}", "t".repeat(resource_len))}]})
        };
        let base = doc_with(0).to_string().len();
        let fits = doc_with(2048 - base);
        assert_eq!(fits.to_string().len(), 2048);
        assert!(
            answer(json!({"isAuthenticated": true, "principalId": "p", "policyDocuments": [fits]}))
                .is_ok()
        );
        let too_long = doc_with(2049 - base).to_string();
        let error = answer(json!({"isAuthenticated": true, "principalId": "p", "policyDocuments": [policy(), too_long]}))
            .unwrap_err();
        assert!(
            matches!(&error, AnswerError::InvalidPolicy { index: 1, error } if matches!(error.kind, ErrorKind::TooLong { length: 2049, max: 2048 })),
            "{error:?}"
        );
    }

    #[test]
    fn invalid_policies_are_refused() {
        let bad_effect = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Maybe", "Action": "iot:Connect", "Resource": "*"}]});
        let error = answer(
            json!({"isAuthenticated": true, "principalId": "p", "policyDocuments": [bad_effect]}),
        )
        .unwrap_err();
        assert!(
            matches!(error, AnswerError::InvalidPolicy { index: 0, .. }),
            "{error:?}"
        );
        for not_policy in [json!("not json"), json!("{}"), json!({}), json!("[1]")] {
            let error = answer(json!({"isAuthenticated": true, "principalId": "p", "policyDocuments": [not_policy]}))
                .unwrap_err();
            assert!(
                matches!(error, AnswerError::InvalidPolicy { index: 0, .. }),
                "{error:?}"
            );
        }
        // A member twice inside a policy object: the policy parser sees the text as sent.
        let body = r#"{"isAuthenticated":true,"principalId":"p","policyDocuments":[{"Version":"2012-10-17","Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}]}"#;
        assert!(matches!(
            AuthorizerAnswer::from_json(body.as_bytes()).unwrap_err(),
            AnswerError::InvalidPolicy { index: 0, .. }
        ));
    }

    #[test]
    fn malformed_bodies() {
        for body in [
            &b""[..],
            b"null",
            b"[]",
            b"\"x\"",
            b"{",
            b"\xff{}",
            br#"{"isAuthenticated":true,"isAuthenticated":false,"principalId":"p"}"#,
            br#"{"isAuthenticated":true,"principalId":"p"} trailing"#,
        ] {
            assert!(
                matches!(
                    AuthorizerAnswer::from_json(body),
                    Err(AnswerError::NotJsonObject(_))
                ),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let huge = vec![b' '; MAX_ANSWER_BYTES + 1];
        assert_eq!(
            AuthorizerAnswer::from_json(&huge).unwrap_err(),
            AnswerError::TooLarge {
                length: MAX_ANSWER_BYTES + 1
            }
        );
    }
}

mod properties {
    use proptest::prelude::*;
    use serde_json::Value;

    use crate::custom_auth::*;

    /// Usernames built from pieces real clients and attackers use.
    fn username() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("x-amz-customauthorizer-name".to_owned()),
            Just("x-amz-customauthorizer-signature".to_owned()),
            Just("tok".to_owned()),
            Just("SDK".to_owned()),
            "[A-Za-z0-9+/=%?&;,() _.-]{0,12}",
            "\\PC{0,6}",
            "%[0-9a-fA-FzZ]{0,2}".prop_map(|s| s),
        ];
        proptest::collection::vec(piece, 0..16).prop_map(|pieces| pieces.concat())
    }

    /// Arbitrary JSON, biased towards answer members.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            (250u64..90_000).prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "\\PC{0,8}".prop_map(Value::String),
            Just(Value::String(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}"#.into()
            )),
        ];
        leaf.prop_recursive(4, 48, 8, |inner| {
            let key = prop_oneof![
                Just("isAuthenticated".to_owned()),
                Just("principalId".to_owned()),
                Just("policyDocuments".to_owned()),
                Just("refreshAfterInSeconds".to_owned()),
                Just("disconnectAfterInSeconds".to_owned()),
                Just("Version".to_owned()),
                Just("Statement".to_owned()),
                "[a-z]{1,4}",
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..12).prop_map(Value::Array),
                proptest::collection::btree_map(key, inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn username_parsing_never_panics(raw in username()) {
            if let Ok(parsed) = MqttUsername::parse(&raw) {
                prop_assert_eq!(&parsed.user, raw.split('?').next().unwrap_or(&raw));
                if let Some(name) = parsed.params.authorizer_name() {
                    prop_assert!(check_authorizer_name(name).is_ok());
                }
                if let Some(signature) = parsed.params.signature() {
                    prop_assert!(check_signature_format(signature).is_ok());
                }
                let _ = parsed.params.token("tok");
            }
        }

        #[test]
        fn http_parsing_never_panics(
            headers in proptest::collection::vec((username(), username()), 0..6),
            query in username(),
        ) {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            if let Ok(params) = CustomAuthParams::from_http(&headers, &query) {
                let _ = (params.authorizer_name(), params.signature(), params.token("TOK"));
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = MqttUsername::parse(&text);
            let _ = CustomAuthParams::from_http(&[("tok", &text)], &text);
            let _ = AuthorizerAnswer::from_json(&bytes);
            let _ = ParsedKey::from_pem(&text);
        }

        #[test]
        fn request_json_is_always_valid_json(
            token in proptest::option::of("\\PC{0,20}"),
            verified in any::<bool>(),
            server_name in proptest::option::of(proptest::option::of("\\PC{0,10}")),
            headers in proptest::option::of(proptest::collection::vec(("\\PC{0,8}", "\\PC{0,3000}"), 0..6)),
            query in "\\PC{0,3000}",
            username in proptest::option::of(username()),
            password in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
            client_id in proptest::option::of("\\PC{0,10}"),
            connection_id in proptest::option::of("[a-f0-9-]{0,36}"),
        ) {
            let request = AuthorizerRequest {
                token,
                signature_verified: verified,
                tls: server_name.map(|server_name| TlsContext { server_name }),
                http: headers.map(|headers| HttpContext { headers, query }),
                mqtt: Some(MqttContext { username, password, client_id }),
                connection_id,
            };
            let event = request.to_json();
            let text = serde_json::to_string(&event).unwrap();
            let back: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(&back, &event);
            prop_assert!(event.is_object());
            if let Some(http) = event["protocolData"].get("http") {
                let size: usize = http["headers"].as_object().unwrap().iter()
                    .map(|(n, v)| n.len() + v.as_str().unwrap().len()).sum::<usize>()
                    + http.get("queryString").and_then(Value::as_str).map_or(0, str::len);
                prop_assert!(size <= MAX_HTTP_CONTEXT_BYTES);
            }
            prop_assert_eq!(request.cache_key("A", 1), request.cache_key("A", 1));
        }

        #[test]
        fn answer_validation_never_panics(value in json_value()) {
            if let Ok(answer) = AuthorizerAnswer::from_json(value.to_string().as_bytes()) {
                prop_assert!(!answer.principal_id.is_empty());
                prop_assert!(answer.policies.len() <= MAX_ANSWER_POLICIES);
            }
        }

        #[test]
        fn answers_with_the_right_shape_never_panic(
            authenticated in any::<bool>(),
            principal in "[A-Za-z0-9]{0,130}",
            refresh in any::<i64>(),
            documents in proptest::collection::vec(json_value(), 0..12),
        ) {
            let body = serde_json::json!({
                "isAuthenticated": authenticated, "principalId": principal,
                "refreshAfterInSeconds": refresh, "policyDocuments": documents,
            });
            if let Ok(answer) = AuthorizerAnswer::from_json(body.to_string().as_bytes()) {
                let seconds = answer.refresh_after.unwrap().as_secs();
                prop_assert!((MIN_ANSWER_SECONDS..=MAX_ANSWER_SECONDS).contains(&seconds));
            }
        }
    }
}

mod redaction_tests {
    use crate::custom_auth::*;

    #[test]
    fn debug_never_shows_tokens_signatures_or_passwords() {
        let params = MqttUsername::parse(
            "u?x-amz-customauthorizer-name=A&x-amz-customauthorizer-signature=U2VjcmV0&tok=SECRETTOKEN",
        )
        .unwrap();
        let shown = format!("{params:?}");
        assert!(
            !shown.contains("SECRETTOKEN") && !shown.contains("U2VjcmV0"),
            "{shown}"
        );
        let request = AuthorizerRequest {
            token: Some("SECRETTOKEN".into()),
            http: Some(HttpContext {
                headers: vec![("authorization".into(), "Bearer SECRETTOKEN".into())],
                query: "tok=SECRETTOKEN".into(),
            }),
            mqtt: Some(MqttContext {
                password: Some(b"SECRETPASSWORD".to_vec()),
                ..MqttContext::default()
            }),
            ..AuthorizerRequest::default()
        };
        let shown = format!("{request:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
    }
}
