// Finding and loading a native BLAS (OpenBLAS, BLIS, MKL, Apple Accelerate, or any library that
// exports the CBLAS `cblas_sgemm`) through the runtime's FFI: `bun:ffi` dlopen on Bun,
// `Deno.dlopen` on Deno. The wasm backend runs its matrix products through it on pointers into its
// shared memory (./blas_matmul.ts), so nothing is copied. Each thread that calls sgemm loads the
// library itself (a worker cannot share another thread's FFI handles) and sets the library's own
// threading to 1: kiln splits a product over its worker pool instead, because a BLAS's own threads
// stall for a scheduler slice whenever kiln's pool wants the core.
// Not a BLAS binding in general: only sgemm, and the calls that name and tune the library.

import { EnvError, env } from "../../util/env.ts";

/** A loaded BLAS: row-major sgemm on raw addresses, and what it is called for backend.device. */
export interface BlasLibrary {
  /** "OpenBLAS 0.3.21", "BLIS 0.9.0", "MKL", "Accelerate", or the file name of another CBLAS */
  readonly name: string;
  /** what was passed to dlopen (a path or a name the system loader searches for) */
  readonly path: string;
  /**
   * C = alpha·op(A)·op(B) + beta·C, row-major (CblasRowMajor); a, b, c are native addresses, op(A)
   * is M×K, op(B) K×N, C M×N; beta = 0 overwrites C (a NaN there does not survive).
   */
  sgemm(
    transA: number, transB: number, M: number, N: number, K: number, alpha: number,
    a: number, lda: number, b: number, ldb: number, beta: number, c: number, ldc: number,
  ): void;
  /** the native address of byte 0 of `buffer` (a wasm memory's SharedArrayBuffer) */
  address(buffer: ArrayBufferLike): number;
}

/** What KILN_BLAS (or a backend option) asks for: search, no BLAS, or one library. */
export type BlasSetting = { kind: "auto" } | { kind: "off" } | { kind: "path"; path: string };

export function parseBlasSetting(value: string | undefined): BlasSetting {
  const v = (value ?? "").trim();
  if (v === "" || v === "auto") return { kind: "auto" };
  if (v === "off" || v === "0" || v === "none") return { kind: "off" };
  return { kind: "path", path: v };
}

/** The setting in effect: the backend option if given, else KILN_BLAS. */
export function blasSetting(option?: string): BlasSetting {
  return parseBlasSetting(option ?? env("KILN_BLAS"));
}

/** Libraries tried in order when nothing was named, per platform (the loader's own search path). */
export function blasCandidates(platform: string): string[] {
  if (platform === "darwin") {
    return [
      "/System/Library/Frameworks/Accelerate.framework/Accelerate",
      "libopenblas.dylib", "/opt/homebrew/opt/openblas/lib/libopenblas.dylib", "/usr/local/opt/openblas/lib/libopenblas.dylib",
    ];
  }
  if (platform === "win32") return ["libopenblas.dll", "openblas.dll", "mkl_rt.2.dll", "mkl_rt.dll"];
  return [
    "libopenblas.so.0", "libopenblas.so", "libopenblasp.so.0", "libblis.so.4", "libblis.so.3", "libblis.so",
    "libmkl_rt.so.2", "libmkl_rt.so", "libblas.so.3", "libcblas.so.3",
  ];
}

function currentPlatform(): string {
  const g = globalThis as { Deno?: { build: { os: string } }; process?: { platform: string } };
  if (g.Deno) return g.Deno.build.os === "windows" ? "win32" : g.Deno.build.os;
  return g.process?.platform ?? "linux";
}

const CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112;

/** Raw FFI symbols of one loaded library (the runtime-specific part). */
interface RawBlas {
  sgemm(...args: number[]): void;
  address(buffer: ArrayBufferLike): number;
  /** calls a `void f(int)` or `void f(int64)` export if the library has it; false if not */
  callInt(symbol: string, value: number, wide?: boolean): boolean;
  /** calls a `const char *f(void)` export if the library has it */
  callString(symbol: string): string | null;
}

const loaded = new Map<string, BlasLibrary>();

/**
 * Loads `path` (a file or a name for the system loader) in this thread, sets its threading to 1 and
 * names it. Throws if it cannot be loaded or has no cblas_sgemm. Cached per thread.
 */
export async function loadBlas(path: string): Promise<BlasLibrary> {
  const cached = loaded.get(path);
  if (cached) return cached;
  const raw = (globalThis as { Deno?: unknown }).Deno ? openDeno(path) : await openBun(path);
  // One thread per call: OpenBLAS (pthread builds: global; OpenMP builds: per calling thread), BLIS,
  // MKL; Accelerate (macOS 13.3+) takes BLAS_THREADING_SINGLE_THREADED = 1.
  raw.callInt("openblas_set_num_threads", 1);
  raw.callInt("bli_thread_set_num_threads", 1, true);
  raw.callInt("MKL_Set_Num_Threads", 1);
  raw.callInt("BLASSetThreading", 1);
  const lib: BlasLibrary = {
    name: libraryName(path, raw),
    path,
    sgemm: (transA, transB, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc) =>
      raw.sgemm(CBLAS_ROW_MAJOR, transA ? CBLAS_TRANS : CBLAS_NO_TRANS, transB ? CBLAS_TRANS : CBLAS_NO_TRANS, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc),
    address: raw.address,
  };
  loaded.set(path, lib);
  return lib;
}

function libraryName(path: string, raw: RawBlas): string {
  const config = raw.callString("openblas_get_config"); // "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY SkylakeX MAX_THREADS=64"
  if (config) return config.split(" ").slice(0, 2).join(" ");
  const blis = raw.callString("bli_info_get_version_str");
  if (blis) return `BLIS ${blis}`;
  if (/mkl/i.test(path)) return "MKL";
  if (/Accelerate/.test(path)) return "Accelerate";
  return path.split(/[\\/]/).pop() ?? path;
}

/**
 * The BLAS the setting asks for: null for "off"; the named library (an error naming KILN_BLAS if it
 * cannot be loaded); or the first candidate of this platform that loads (null if none does).
 */
export async function findBlas(setting: BlasSetting): Promise<BlasLibrary | null> {
  if (setting.kind === "off") return null;
  if (setting.kind === "path") {
    try {
      return await loadBlas(setting.path);
    } catch (e) {
      throw new EnvError(`KILN_BLAS=${setting.path}: cannot load a CBLAS library with cblas_sgemm from it (${firstLine(e)}); use KILN_BLAS=off for none`);
    }
  }
  if (!ffiAllowed()) return null;
  for (const candidate of blasCandidates(currentPlatform())) {
    try {
      return await loadBlas(candidate);
    } catch {
      // not installed here, or no cblas_sgemm (a reference libblas without CBLAS): try the next
    }
  }
  return null;
}

/** Deno without --allow-ffi: searching would fail (or prompt on a terminal), so it does not search. */
function ffiAllowed(): boolean {
  const Deno = (globalThis as { Deno?: { permissions: { querySync?(d: { name: string }): { state: string } } } }).Deno;
  return !Deno?.permissions.querySync || Deno.permissions.querySync({ name: "ffi" }).state === "granted";
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split("\n")[0];
}

// ---- Bun ----

async function openBun(path: string): Promise<RawBlas> {
  const ffi = await import("bun:ffi");
  const { FFIType: T } = ffi;
  const i32 = T.i32, f32 = T.f32, p = T.ptr;
  const lib = ffi.dlopen(path, {
    cblas_sgemm: { args: [i32, i32, i32, i32, i32, i32, f32, p, i32, p, i32, f32, p, i32], returns: T.void },
  });
  const sgemm = lib.symbols.cblas_sgemm as unknown as (...args: number[]) => void;
  const optional = <F>(symbol: string, args: number[], returns: number): F | null => {
    try {
      return ffi.dlopen(path, { [symbol]: { args, returns } }).symbols[symbol] as unknown as F;
    } catch {
      return null;
    }
  };
  return {
    sgemm,
    address: (buffer) => ffi.ptr(new Uint8Array(buffer as ArrayBuffer, 0, 1)),
    callInt(symbol, value, wide = false) {
      const f = optional<(v: number | bigint) => void>(symbol, [wide ? T.i64 : T.i32], T.void);
      if (!f) return false;
      f(wide ? BigInt(value) : value);
      return true;
    },
    callString(symbol) {
      const f = optional<() => unknown>(symbol, [], T.cstring);
      return f ? String(f()) : null;
    },
  };
}

// ---- Deno ----

interface DenoFfi {
  dlopen(path: string, symbols: Record<string, { parameters: string[]; result: string }>): { symbols: Record<string, (...args: unknown[]) => unknown> };
  UnsafePointer: { of(view: ArrayBufferView): unknown; value(p: unknown): number | bigint };
  UnsafePointerView: { getCString(p: unknown): string };
}

function openDeno(path: string): RawBlas {
  const Deno = (globalThis as unknown as { Deno: DenoFfi }).Deno;
  const lib = Deno.dlopen(path, {
    cblas_sgemm: {
      parameters: ["i32", "i32", "i32", "i32", "i32", "i32", "f32", "usize", "i32", "usize", "i32", "f32", "usize", "i32"],
      result: "void",
    },
  });
  const sgemm = lib.symbols.cblas_sgemm as (...args: number[]) => void;
  const optional = (symbol: string, parameters: string[], result: string) => {
    try {
      return Deno.dlopen(path, { [symbol]: { parameters, result } }).symbols[symbol];
    } catch {
      return null;
    }
  };
  return {
    sgemm,
    address: (buffer) => Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(new Uint8Array(buffer as ArrayBuffer, 0, 1)))),
    callInt(symbol, value, wide = false) {
      const f = optional(symbol, [wide ? "i64" : "i32"], "void");
      if (!f) return false;
      f(wide ? BigInt(value) : value);
      return true;
    },
    callString(symbol) {
      const f = optional(symbol, [], "pointer");
      if (!f) return null;
      const p = f();
      return p === null ? null : Deno.UnsafePointerView.getCString(p);
    },
  };
}
