;; An authorizer module for Ferrocore's `wasm` kind (the ABI: crates/authorizers/src/wasm.rs
;; and the README). It admits any device whose MQTT password is "secret" as principal
;; "wasmdevice", allowed to connect and to publish, subscribe and receive under wasm/*, and
;; denies everyone else. The answers are fixed texts in data segments, NUL-terminated so that
;; their lengths need not be counted by hand.
(module
  (memory (export "memory") 1)

  ;; What the request holds when the password is "secret": AWS sends passwords in base64,
  ;; and the request JSON is compact.
  (data (i32.const 16) "\"password\":\"c2VjcmV0\"\00")
  (data (i32.const 64)
    "{\"isAuthenticated\":true,\"principalId\":\"wasmdevice\",\"policyDocuments\":[{"
    "\"Version\":\"2012-10-17\",\"Statement\":["
    "{\"Effect\":\"Allow\",\"Action\":\"iot:Connect\",\"Resource\":\"*\"},"
    "{\"Effect\":\"Allow\",\"Action\":[\"iot:Publish\",\"iot:Receive\"],"
    "\"Resource\":\"arn:aws:iot:*:*:topic/wasm/*\"},"
    "{\"Effect\":\"Allow\",\"Action\":\"iot:Subscribe\","
    "\"Resource\":\"arn:aws:iot:*:*:topicfilter/wasm/*\"}]}]}\00")
  (data (i32.const 2048) "{\"isAuthenticated\":false,\"principalId\":\"nobody\"}\00")

  ;; A bump allocator above the fixed texts; each call runs in a fresh instance, so nothing
  ;; is ever freed.
  (global $next (mut i32) (i32.const 4096))
  (func (export "alloc") (param $len i32) (result i32)
    (local $ptr i32)
    (local $pages i32)
    (local.set $ptr (global.get $next))
    (global.set $next (i32.add (local.get $ptr) (local.get $len)))
    (local.set $pages
      (i32.shr_u (i32.add (global.get $next) (i32.const 65535)) (i32.const 16)))
    (if (i32.gt_u (local.get $pages) (memory.size))
      (then
        (if (i32.eq (memory.grow (i32.sub (local.get $pages) (memory.size))) (i32.const -1))
          (then unreachable))))
    (local.get $ptr))

  ;; The length of the NUL-terminated text at $p.
  (func $strlen (param $p i32) (result i32)
    (local $q i32)
    (local.set $q (local.get $p))
    (block $end
      (loop $next
        (br_if $end (i32.eqz (i32.load8_u (local.get $q))))
        (local.set $q (i32.add (local.get $q) (i32.const 1)))
        (br $next)))
    (i32.sub (local.get $q) (local.get $p)))

  ;; 1 if the $len bytes at $hay contain the NUL-terminated text at $needle, else 0.
  (func $contains (param $hay i32) (param $len i32) (param $needle i32) (result i32)
    (local $needle_len i32)
    (local $i i32)
    (local $j i32)
    (local.set $needle_len (call $strlen (local.get $needle)))
    (block $absent
      (loop $at
        (br_if $absent
          (i32.gt_u (i32.add (local.get $i) (local.get $needle_len)) (local.get $len)))
        (local.set $j (i32.const 0))
        (block $mismatch
          (loop $byte
            (if (i32.eq (local.get $j) (local.get $needle_len))
              (then (return (i32.const 1))))
            (br_if $mismatch
              (i32.ne
                (i32.load8_u (i32.add (local.get $hay) (i32.add (local.get $i) (local.get $j))))
                (i32.load8_u (i32.add (local.get $needle) (local.get $j)))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $byte)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $at)))
    (i32.const 0))

  ;; The ABI's answer: (address << 32) | length.
  (func $answer (param $p i32) (result i64)
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $p)) (i64.const 32))
      (i64.extend_i32_u (call $strlen (local.get $p)))))

  (func (export "authorize") (param $ptr i32) (param $len i32) (result i64)
    (call $answer
      (select (i32.const 64) (i32.const 2048)
        (call $contains (local.get $ptr) (local.get $len) (i32.const 16))))))
