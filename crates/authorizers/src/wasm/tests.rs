#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ferrocore_identity::custom_auth::{
    AuthorizerAnswer, AuthorizerFunction, AuthorizerRequest, InvokeError, MAX_ANSWER_BYTES,
    MqttContext, TlsContext,
};
use tempfile::TempDir;

use super::{LoadError, WasmFunction, WasmLimits, WasmOptions};

const LIMITS: WasmLimits = WasmLimits {
    fuel: 1_000_000,
    max_memory_bytes: 1 << 20,
};

/// The test authorizer of `testdata/allow.wat`: password "secret" is admitted.
fn allow_wat() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/allow.wat")
}

/// A module with one page of memory, an `alloc` answering address 1024, and `authorize`
/// (with params `$ptr`, `$len`, result i64) made of `body`; `extra` goes at module level.
fn module(extra: &str, body: &str) -> String {
    format!(
        r#"(module
             {extra}
             (memory (export "memory") 1)
             (func (export "alloc") (param i32) (result i32) (i32.const 1024))
             (func (export "authorize") (param $ptr i32) (param $len i32) (result i64) {body}))"#
    )
}

/// Writes `text` as a module file in `dir`.
fn write(dir: &TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("authorizer.wat");
    std::fs::write(&path, text).unwrap();
    path
}

fn load(text: &str) -> Result<WasmFunction, LoadError> {
    let dir = TempDir::new().unwrap();
    WasmFunction::load(&write(&dir, text), LIMITS, 1)
}

fn call(text: &str) -> Result<Vec<u8>, InvokeError> {
    load(text).unwrap().runner.call(b"{}")
}

fn failure(result: Result<Vec<u8>, InvokeError>) -> String {
    match result {
        Err(InvokeError::Failed(message)) => message,
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// AWS's request for an MQTT client over TLS with `password`.
fn request(password: &[u8]) -> serde_json::Value {
    AuthorizerRequest {
        token: None,
        signature_verified: false,
        tls: Some(TlsContext { server_name: None }),
        http: None,
        mqtt: Some(MqttContext {
            username: Some("alice?x-amz-customauthorizer-name=wasm".into()),
            password: Some(password.to_vec()),
            client_id: Some("device-1".into()),
        }),
        connection_id: Some("c1".into()),
    }
    .to_json()
}

#[tokio::test]
async fn admits_the_password_with_policies_and_denies_others() {
    let function = WasmFunction::load(&allow_wat(), LIMITS, 2).unwrap();
    assert!(function.is_built_in());

    let body = function.invoke(&request(b"secret")).await.unwrap();
    let answer = AuthorizerAnswer::from_json(&body).unwrap();
    assert!(answer.authenticated);
    assert_eq!(answer.principal_id, "wasmdevice");
    assert_eq!(answer.policies.len(), 1);
    assert!(answer.policies[0].text.contains("topic/wasm/*"));

    let body = function.invoke(&request(b"wrong")).await.unwrap();
    let answer = AuthorizerAnswer::from_json(&body).unwrap();
    assert!(!answer.authenticated);
    assert_eq!(answer.principal_id, "nobody");
}

#[test]
fn binary_modules_load_as_text_ones_do() {
    let dir = TempDir::new().unwrap();
    let binary = dir.path().join("allow.wasm");
    std::fs::write(&binary, wat::parse_file(allow_wat()).unwrap()).unwrap();
    let function = WasmFunction::load(&binary, LIMITS, 1).unwrap();
    let request = serde_json::to_vec(&request(b"secret")).unwrap();
    let answer = AuthorizerAnswer::from_json(&function.runner.call(&request).unwrap()).unwrap();
    assert!(answer.authenticated);
}

#[test]
fn fresh_instance_per_call_and_fuel_per_call() {
    // A global counting calls would reach 2 if instances were reused.
    let counting = module(
        "(global $calls (mut i32) (i32.const 0))",
        "(global.set $calls (i32.add (global.get $calls) (i32.const 1)))
         (i32.store8 (i32.const 0) (i32.add (i32.const 48) (global.get $calls)))
         (i64.const 1)",
    );
    let function = load(&counting).unwrap();
    for _ in 0..3 {
        assert_eq!(function.runner.call(b"{}").unwrap(), b"1");
    }
}

#[test]
fn a_module_looping_forever_runs_out_of_fuel() {
    let message = failure(call(&module(
        "",
        "(loop $forever (br $forever)) (i64.const 0)",
    )));
    assert!(
        message.contains("ran out of fuel (1000000 per call"),
        "{message}"
    );
}

#[test]
fn memory_growth_beyond_the_limit_fails() {
    // Grows one page at a time and never looks at memory.grow's result.
    let message = failure(call(&module(
        "",
        "(loop $more (drop (memory.grow (i32.const 1))) (br $more)) (i64.const 0)",
    )));
    assert!(
        message.contains("grow its memory beyond 1 MiB"),
        "{message}"
    );

    // A module whose initial memory exceeds the limit never loads.
    let error = load(&module("", "(i64.const 0)").replace(
        "(memory (export \"memory\") 1)",
        "(memory (export \"memory\") 17)",
    ))
    .err()
    .unwrap();
    assert!(
        error.to_string().contains("cannot be instantiated"),
        "{error}"
    );
}

#[test]
fn out_of_bounds_pointers_are_errors() {
    // The answer: 16 bytes at 0xffff0000, beyond the one page.
    let message = failure(call(&module("", "(i64.const 0xffff000000000010)")));
    assert!(message.contains("not inside the memory"), "{message}");
    // An answer that ends one byte past the memory.
    let message = failure(call(&module("", "(i64.const 0x0000fff000000011)")));
    assert!(message.contains("not inside the memory"), "{message}");
    // The request buffer outside the memory.
    let bad_alloc = module("", "(i64.const 0)").replace("(i32.const 1024)", "(i32.const 65535)");
    let message = failure(call(&bad_alloc));
    assert!(message.contains("alloc(2) returned 0xffff"), "{message}");
    // An answer longer than an answer may be.
    let too_long = format!("(i64.const {})", MAX_ANSWER_BYTES + 1);
    assert_eq!(call(&module("", &too_long)), Err(InvokeError::TooLarge));
}

#[test]
fn a_module_that_imports_anything_is_refused() {
    let error = load(&module(
        r#"(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))"#,
        "(i64.const 0)",
    ))
    .err()
    .unwrap();
    assert!(
        error.to_string().contains(
            "it imports wasi_snapshot_preview1.fd_write; an authorizer module may import nothing"
        ),
        "{error}"
    );
}

#[test]
fn traps_are_failures() {
    let message = failure(call(&module("", "unreachable")));
    assert!(message.contains("it trapped"), "{message}");
    let message = failure(call(&module(
        "",
        "(drop (i32.div_u (i32.const 1) (i32.const 0))) (i64.const 0)",
    )));
    assert!(message.contains("it trapped"), "{message}");
    // Unbounded recursion ends in a trap, not in the host's stack.
    let message = failure(call(&module(
        "(func $deeper (call $deeper))",
        "(call $deeper) (i64.const 0)",
    )));
    assert!(message.contains("it trapped"), "{message}");
}

#[test]
fn the_interface_is_checked_at_load() {
    let cases = [
        (
            "(module (memory (export \"mem\") 1))",
            "does not export its memory as `memory`",
        ),
        (
            "(module (memory (export \"memory\") 1))",
            "does not export the function alloc",
        ),
        (
            &module("", "(i64.const 0)")
                .replace("(result i64) (i64.const 0)", "(result i32) (i32.const 0)"),
            "export `authorize` has the wrong type",
        ),
        ("not wasm", "not a valid WebAssembly module"),
        // A start function that never ends: every call would fail.
        (
            &module(
                "(func $start (loop $l (br $l))) (start $start)",
                "(i64.const 0)",
            ),
            "ran out of fuel",
        ),
    ];
    for (text, expected) in cases {
        let error = load(text).err().unwrap();
        assert!(error.to_string().contains(expected), "{text}: {error}");
    }
}

#[test]
fn options_are_checked() {
    let base = Path::new("/etc/ferrocore");
    let parse = |text: &str| WasmOptions::parse(&text.parse::<toml::Table>().unwrap(), base);
    assert_eq!(
        parse("module = \"a.wasm\"\nfuel = 5000\nmax_memory_mib = 2\nmax_instances = 3"),
        Ok(WasmOptions {
            module: base.join("a.wasm"),
            limits: WasmLimits {
                fuel: 5000,
                max_memory_bytes: 2 << 20
            },
            max_instances: 3,
        })
    );
    let defaults = parse("module = \"/srv/a.wat\"").unwrap();
    assert_eq!(defaults.module, Path::new("/srv/a.wat"));
    assert_eq!(defaults.limits.fuel, super::DEFAULT_FUEL);
    assert_eq!(defaults.limits.max_memory_bytes, 16 << 20);
    assert!(defaults.max_instances >= 1);
    for (text, expected) in [
        ("", "`module` is required"),
        ("module = 1", "`module` must be a path"),
        (
            "module = \"a.wasm\"\nfuel = 0",
            "`fuel` must be a whole number of at least 1",
        ),
        ("module = \"a.wasm\"\nmax_memory_mib = 5000", "at most 4096"),
        ("module = \"a.wasm\"\nmemory = 1", "unknown option `memory`"),
    ] {
        let error = parse(text).unwrap_err();
        assert!(error.contains(expected), "{text}: {error}");
    }
}

#[test]
fn a_changed_file_is_reloaded_and_a_broken_one_keeps_the_previous() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, &module("(data (i32.const 0) \"A\")", "(i64.const 1)"));
    let function = WasmFunction::load(&path, LIMITS, 1).unwrap();
    assert_eq!(function.runner.call(b"{}").unwrap(), b"A");

    // Let the next call look at the file (checks are at most once a second).
    let rewind = |function: &WasmFunction| {
        function.runner.loaded.lock().checked_at = Instant::now() - Duration::from_secs(2);
    };
    std::fs::write(
        &path,
        module("(data (i32.const 0) \"BB\")", "(i64.const 2)"),
    )
    .unwrap();
    assert_eq!(function.generation(), 0, "not looked at yet");
    rewind(&function);
    assert_eq!(
        function.generation(),
        1,
        "another module: no answer of the old one is used"
    );
    assert_eq!(function.runner.call(b"{}").unwrap(), b"BB");

    std::fs::write(&path, "broken").unwrap();
    rewind(&function);
    assert_eq!(function.runner.call(b"{}").unwrap(), b"BB");
    assert_eq!(
        function.generation(),
        1,
        "the previous module stays, and its answers"
    );
}
