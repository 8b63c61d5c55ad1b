//! The `wasm` built-in authorizer function: a WebAssembly module run in process by the
//! [wasmi](https://docs.rs/wasmi) interpreter, with a fuel (CPU) and a memory limit per call.
//!
//! ```toml
//! [[authorizer_function]]
//! name = "legacy"              # authorizerFunctionArn = "ferrocore:function/legacy"
//! kind = "wasm"
//! module = "authorizer.wasm"   # binary (.wasm) or text (.wat); relative to the config file
//! fuel = 10000000              # per call (default); about one unit per instruction
//! max_memory_mib = 16          # the module's linear memory may not grow beyond (default 16)
//! max_instances = 1            # calls running at once (default: half the CPUs, at least 1)
//! ```
//!
//! **The ABI** (language-neutral, no imports). The module imports nothing (a module that
//! imports anything is refused when loaded) and exports:
//!
//! - `memory`: its linear memory (32-bit);
//! - `alloc(len: i32) -> i32`: returns the address of `len` writable bytes;
//! - `authorize(ptr: i32, len: i32) -> i64`: given the address and length of the request,
//!   returns `(answer_ptr << 32) | answer_len` of the answer in `memory` (both unsigned).
//!
//! A call instantiates the module afresh (its start function, if any, runs), calls `alloc`
//! with the request's length, writes the request there, calls `authorize` and copies the
//! answer out; the instance is then dropped, so nothing persists between calls or devices.
//! The request is AWS's authorizer request JSON (as a webhook receives it: `token`,
//! `signatureVerified`, `protocols`, `protocolData` with the MQTT `username`, the
//! base64-encoded `password` and `clientId`, `connectionMetadata`), UTF-8, serialized
//! compactly (no whitespace between tokens). The answer is AWS's authorizer response JSON, of
//! at most [`MAX_ANSWER_BYTES`], validated like any function's answer (with the built-in
//! rules: lifetimes from 1 s, a wider `principalId`).
//!
//! **Failures** (each an [`InvokeError`]; the device is denied as when a webhook is down):
//! fuel exhausted ([`InvokeError::Failed`]), memory grown beyond `max_memory_mib` (a trap,
//! rather than `memory.grow` answering -1, so the failure is named), any other trap, an
//! `alloc` or answer range outside the memory, an answer longer than [`MAX_ANSWER_BYTES`]
//! ([`InvokeError::TooLarge`]).
//!
//! Calls run on Tokio's blocking threads, at most `max_instances` at once (others wait for
//! their turn within the invoker's timeout), so a runaway module holds neither the async
//! workers nor more than `max_instances` CPUs, and for no longer than its fuel lasts.
//!
//! **Reloading**: the file's modification time and length are checked at most once a
//! second, on a call; a changed file is loaded and used from then on. A file that no longer
//! loads is reported (once per change) and the previous module stays in use.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ferrocore_identity::custom_auth::{
    AuthorizerFunction, InvokeError, InvokeFuture, MAX_ANSWER_BYTES,
};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::Semaphore;
use wasmi::{
    Config, Engine, ExternType, Instance, Linker, Memory, Module, Store, StoreLimits,
    StoreLimitsBuilder, TrapCode, TypedFunc, ValType,
};

use crate::FunctionContext;

/// The default fuel of one call.
pub const DEFAULT_FUEL: u64 = 10_000_000;
/// The default limit of a module's linear memory, in MiB.
pub const DEFAULT_MAX_MEMORY_MIB: u64 = 16;
/// The most elements a module's table may hold (function pointers of the module's own
/// functions; compilers emit one entry per indirectly called function).
const MAX_TABLE_ELEMENTS: usize = 100_000;
/// How often the module file is checked for a change, at most.
const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// The options [`build`] takes.
const OPTIONS: &[&str] = &["module", "fuel", "max_memory_mib", "max_instances"];

/// The limits of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WasmLimits {
    /// Fuel for the whole call (instantiation, `alloc`, `authorize`).
    pub fuel: u64,
    /// The most bytes the linear memory may grow to.
    pub max_memory_bytes: usize,
}

/// The `wasm` function: a loaded module, reloaded when its file changes.
pub struct WasmFunction {
    runner: Arc<Runner>,
    /// Calls running at once.
    slots: Arc<Semaphore>,
}

/// What a blocking thread needs to run a call.
struct Runner {
    engine: Engine,
    path: PathBuf,
    limits: WasmLimits,
    loaded: Mutex<Loaded>,
}

/// The module in use and what its file looked like when it was (or failed to be) loaded.
struct Loaded {
    module: Module,
    stamp: Option<FileStamp>,
    checked_at: Instant,
    /// Raised whenever another module is loaded ([`AuthorizerFunction::generation`]).
    generation: u64,
}

/// A file's identity for change detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
}

impl FileStamp {
    fn of(path: &Path) -> Option<FileStamp> {
        let metadata = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            modified: metadata.modified().ok(),
            len: metadata.len(),
        })
    }
}

/// Why a module cannot be used; the message says what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError(String);

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LoadError {}

/// Builds a `wasm` function from its options.
pub fn build(
    options: &toml::Table,
    context: &FunctionContext,
) -> Result<Arc<dyn AuthorizerFunction>, String> {
    let options = WasmOptions::parse(options, &context.base_dir)?;
    let function = WasmFunction::load(&options.module, options.limits, options.max_instances)
        .map_err(|error| format!("module {}: {error}", options.module.display()))?;
    Ok(Arc::new(function))
}

/// The options of a `wasm` function.
#[derive(Debug, Clone, PartialEq, Eq)]
struct WasmOptions {
    module: PathBuf,
    limits: WasmLimits,
    max_instances: usize,
}

impl WasmOptions {
    /// Reads the options; relative paths are relative to `base_dir`.
    fn parse(options: &toml::Table, base_dir: &Path) -> Result<WasmOptions, String> {
        if let Some(unknown) = options.keys().find(|key| !OPTIONS.contains(&key.as_str())) {
            return Err(format!(
                "unknown option `{unknown}`; the wasm kind takes {}",
                OPTIONS.join(", ")
            ));
        }
        let module = match options.get("module") {
            Some(toml::Value::String(path)) => base_dir.join(path),
            Some(_) => return Err("`module` must be a path (a string)".into()),
            None => {
                return Err("`module` is required: the path of the .wasm (or .wat) module".into());
            }
        };
        let fuel = positive_integer(options, "fuel")?.unwrap_or(DEFAULT_FUEL);
        let max_memory_mib =
            positive_integer(options, "max_memory_mib")?.unwrap_or(DEFAULT_MAX_MEMORY_MIB);
        // 4 GiB is all a 32-bit memory can address.
        if max_memory_mib > 4096 {
            return Err(format!(
                "`max_memory_mib` is {max_memory_mib}; a 32-bit WebAssembly memory holds at most \
                 4096"
            ));
        }
        let max_instances = match positive_integer(options, "max_instances")? {
            Some(n) => {
                usize::try_from(n).map_err(|_| "`max_instances` is too large".to_string())?
            }
            None => default_max_instances(),
        };
        let max_memory_bytes = usize::try_from(max_memory_mib << 20)
            .map_err(|_| "`max_memory_mib` is too large for this machine".to_string())?;
        Ok(WasmOptions {
            module,
            limits: WasmLimits {
                fuel,
                max_memory_bytes,
            },
            max_instances,
        })
    }
}

/// An optional integer option of at least 1.
fn positive_integer(options: &toml::Table, name: &str) -> Result<Option<u64>, String> {
    match options.get(name) {
        None => Ok(None),
        Some(toml::Value::Integer(n)) if *n >= 1 => Ok(Some(n.unsigned_abs())),
        Some(_) => Err(format!("`{name}` must be a whole number of at least 1")),
    }
}

/// Half the CPUs (at least one), so a runaway module leaves the rest to the broker.
fn default_max_instances() -> usize {
    std::thread::available_parallelism()
        .map(|cpus| cpus.get().div_ceil(2))
        .unwrap_or(1)
}

impl WasmFunction {
    /// Loads the module at `path` (binary or text), checks its imports and exports and that
    /// it instantiates within `limits`.
    pub fn load(
        path: &Path,
        limits: WasmLimits,
        max_instances: usize,
    ) -> Result<WasmFunction, LoadError> {
        let mut config = Config::default();
        config.consume_fuel(true);
        let engine = Engine::new(&config);
        let stamp = FileStamp::of(path);
        let module = load_module(&engine, path, limits)?;
        Ok(WasmFunction {
            runner: Arc::new(Runner {
                engine,
                path: path.to_owned(),
                limits,
                loaded: Mutex::new(Loaded {
                    module,
                    stamp,
                    checked_at: Instant::now(),
                    generation: 0,
                }),
            }),
            slots: Arc::new(Semaphore::new(max_instances.max(1))),
        })
    }
}

impl AuthorizerFunction for WasmFunction {
    fn invoke<'a>(&'a self, request: &'a Value) -> InvokeFuture<'a> {
        Box::pin(async move {
            let request = serde_json::to_vec(request)
                .map_err(|error| InvokeError::Failed(format!("the request: {error}")))?;
            let slot = Arc::clone(&self.slots)
                .acquire_owned()
                .await
                .map_err(|_| InvokeError::Failed("the function is shut down".into()))?;
            let runner = Arc::clone(&self.runner);
            // The slot goes with the call: a call the invoker gave up on (timeout) keeps its
            // slot until its fuel runs out.
            tokio::task::spawn_blocking(move || {
                let answer = runner.call(&request);
                drop(slot);
                answer
            })
            .await
            .map_err(|error| InvokeError::Failed(format!("the call was lost: {error}")))?
        })
    }

    fn is_built_in(&self) -> bool {
        true
    }

    /// Changes when another module is loaded, so that no answer of the previous one is taken
    /// from the cache. Looks at the file at most every [`RELOAD_CHECK_INTERVAL`].
    fn generation(&self) -> u64 {
        self.runner.checked().generation
    }
}

impl Runner {
    fn call(&self, request: &[u8]) -> Result<Vec<u8>, InvokeError> {
        let module = self.checked().module.clone();
        run(&self.engine, &module, self.limits, request)
    }

    /// The module in use, reloaded first if its file changed.
    fn checked(&self) -> parking_lot::MutexGuard<'_, Loaded> {
        let mut loaded = self.loaded.lock();
        if loaded.checked_at.elapsed() >= RELOAD_CHECK_INTERVAL {
            loaded.checked_at = Instant::now();
            let stamp = FileStamp::of(&self.path);
            if stamp != loaded.stamp {
                loaded.stamp = stamp;
                match load_module(&self.engine, &self.path, self.limits) {
                    Ok(module) => {
                        tracing::info!(module = %self.path.display(), "wasm authorizer module reloaded");
                        loaded.module = module;
                        loaded.generation += 1;
                    }
                    Err(error) => tracing::warn!(
                        module = %self.path.display(),
                        %error,
                        "wasm authorizer module changed but cannot be loaded; the previous one stays in use"
                    ),
                }
            }
        }
        loaded
    }
}

/// Reads, compiles and checks a module.
fn load_module(engine: &Engine, path: &Path, limits: WasmLimits) -> Result<Module, LoadError> {
    let bytes = std::fs::read(path).map_err(|error| LoadError(format!("cannot read: {error}")))?;
    let module = Module::new(engine, &bytes)
        .map_err(|error| LoadError(format!("not a valid WebAssembly module: {error}")))?;
    check_interface(&module)?;
    // Instantiating once finds what would fail on every call: memory or tables beyond the
    // limits, a start function that traps or runs out of fuel.
    instantiate(engine, &module, limits).map_err(|error| {
        LoadError(format!(
            "cannot be instantiated within the limits (one memory of at most {} MiB, \
             `max_memory_mib`; one table of at most {MAX_TABLE_ELEMENTS} elements): {}",
            limits.max_memory_bytes >> 20,
            describe(&error, limits)
        ))
    })?;
    Ok(module)
}

/// Refuses imports and checks the three exports and their types.
fn check_interface(module: &Module) -> Result<(), LoadError> {
    let imports: Vec<String> = module
        .imports()
        .map(|import| format!("{}.{}", import.module(), import.name()))
        .collect();
    if !imports.is_empty() {
        return Err(LoadError(format!(
            "it imports {}; an authorizer module may import nothing (build it without WASI or \
             host functions)",
            imports.join(", ")
        )));
    }
    if !matches!(module.get_export("memory"), Some(ExternType::Memory(_))) {
        return Err(LoadError(
            "it does not export its memory as `memory`".into(),
        ));
    }
    check_function(module, "alloc", &[ValType::I32], &[ValType::I32])?;
    check_function(
        module,
        "authorize",
        &[ValType::I32, ValType::I32],
        &[ValType::I64],
    )
}

fn check_function(
    module: &Module,
    name: &str,
    params: &[ValType],
    results: &[ValType],
) -> Result<(), LoadError> {
    let types = |types: &[ValType]| {
        let names: Vec<String> = types
            .iter()
            .map(|ty| format!("{ty:?}").to_lowercase())
            .collect();
        names.join(", ")
    };
    let signature = format!("{name}({}) -> {}", types(params), types(results));
    match module.get_export(name) {
        Some(ExternType::Func(ty)) if ty.params() == params && ty.results() == results => Ok(()),
        Some(ExternType::Func(_)) => Err(LoadError(format!(
            "its export `{name}` has the wrong type; it must be {signature}"
        ))),
        _ => Err(LoadError(format!(
            "it does not export the function {signature}"
        ))),
    }
}

/// A fresh instance of `module` in a store of its own, with `limits`.
fn instantiate(
    engine: &Engine,
    module: &Module,
    limits: WasmLimits,
) -> Result<(Store<StoreLimits>, Instance), wasmi::Error> {
    let store_limits = StoreLimitsBuilder::new()
        .memory_size(limits.max_memory_bytes)
        .memories(1)
        .tables(1)
        .table_elements(MAX_TABLE_ELEMENTS)
        .instances(1)
        .trap_on_grow_failure(true)
        .build();
    let mut store = Store::new(engine, store_limits);
    store.limiter(|limits| limits);
    store.set_fuel(limits.fuel)?;
    let instance = Linker::new(engine).instantiate_and_start(&mut store, module)?;
    Ok((store, instance))
}

/// One call in a fresh instance.
fn run(
    engine: &Engine,
    module: &Module,
    limits: WasmLimits,
    request: &[u8],
) -> Result<Vec<u8>, InvokeError> {
    let failed = |error: wasmi::Error| InvokeError::Failed(describe(&error, limits));
    let (mut store, instance) = instantiate(engine, module, limits).map_err(failed)?;
    let memory = instance
        .get_memory(&store, "memory")
        .ok_or_else(|| InvokeError::Failed("the module exports no `memory`".into()))?;
    let alloc: TypedFunc<i32, i32> = instance.get_typed_func(&store, "alloc").map_err(failed)?;
    let authorize: TypedFunc<(i32, i32), i64> = instance
        .get_typed_func(&store, "authorize")
        .map_err(failed)?;

    let request_len = i32::try_from(request.len())
        .map_err(|_| InvokeError::Failed("the request is larger than 2 GiB".into()))?;
    let request_ptr = alloc.call(&mut store, request_len).map_err(failed)?;
    let start =
        range_in_memory(&store, memory, request_ptr as u32, request.len()).ok_or_else(|| {
            InvokeError::Failed(format!(
                "alloc({request_len}) returned {request_ptr:#x}, not inside the memory"
            ))
        })?;
    memory.data_mut(&mut store)[start..start + request.len()].copy_from_slice(request);

    let packed = authorize
        .call(&mut store, (request_ptr, request_len))
        .map_err(failed)?;
    // The two halves of the packed answer, as the ABI defines them.
    let answer_ptr = (packed as u64 >> 32) as u32;
    let answer_len = packed as u64 as u32 as usize;
    if answer_len > MAX_ANSWER_BYTES {
        return Err(InvokeError::TooLarge);
    }
    let start = range_in_memory(&store, memory, answer_ptr, answer_len).ok_or_else(|| {
        InvokeError::Failed(format!(
            "authorize returned an answer of {answer_len} bytes at {answer_ptr:#x}, not \
                 inside the memory"
        ))
    })?;
    Ok(memory.data(&store)[start..start + answer_len].to_vec())
}

/// The start of `len` bytes at `ptr` if they lie inside `memory`.
fn range_in_memory(
    store: &Store<StoreLimits>,
    memory: Memory,
    ptr: u32,
    len: usize,
) -> Option<usize> {
    let start = usize::try_from(ptr).ok()?;
    let end = start.checked_add(len)?;
    (end <= memory.data(store).len()).then_some(start)
}

/// A wasmi error in the terms of the options.
fn describe(error: &wasmi::Error, limits: WasmLimits) -> String {
    match error.as_trap_code() {
        Some(TrapCode::OutOfFuel) => format!(
            "it ran out of fuel ({} per call; raise `fuel` if it needs more)",
            limits.fuel
        ),
        Some(TrapCode::GrowthOperationLimited) => format!(
            "it tried to grow its memory beyond {} MiB (`max_memory_mib`)",
            limits.max_memory_bytes >> 20
        ),
        Some(code) => format!("it trapped: {code}"),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests;
