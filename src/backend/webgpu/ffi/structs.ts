// webgpu.h struct layouts (64-bit targets) written into typed arrays for bun:ffi, and the enum
// values kiln uses, per library flavor. Verified against the Dawn in bun-webgpu-linux-x64 0.1.7
// (mid-2025 header); the wgpu-native column follows upstream webgpu.h 1.0 (wgpu-native >= PR #572)
// and is unverified here (no wgpu-native build was available). Sizes: StringView 16, CallbackInfo 40,
// BufferDescriptor 48, ComputePipelineDescriptor 80, ConstantEntry 32, BindGroupEntry 56,
// DeviceDescriptor 144, AdapterInfo 96, Limits <= 256 (only the common prefix is read).
import { CString, ptr, toArrayBuffer, type Pointer } from "bun:ffi";
import type { LibraryFlavor } from "./library.ts";

export const U64_MAX = 0xffffffffffffffffn;
const STRLEN = U64_MAX; // WGPU_STRLEN: "no label" is {NULL, WGPU_STRLEN}

export const CALLBACK_MODE = { waitAnyOnly: 1, allowProcessEvents: 2 } as const;
export const STATUS_SUCCESS = 1;
export const WAIT_SUCCESS = 1;
export const BUFFER_USAGE = { mapRead: 0x1, copySrc: 0x4, copyDst: 0x8, uniform: 0x40, storage: 0x80 } as const;
export const MAP_MODE_READ = 1n;
export const ERROR_TYPES: Record<number, string> = { 2: "validation", 3: "out-of-memory", 4: "internal", 5: "unknown" };
export const LOST_REASON_DESTROYED = 2;
export const BACKEND_TYPES: Record<number, string> = {
  1: "null", 2: "webgpu", 3: "d3d11", 4: "d3d12", 5: "metal", 6: "vulkan", 7: "opengl", 8: "opengles",
};
export const ADAPTER_TYPES = { 1: "discrete", 2: "integrated", 3: "cpu", 4: "unknown" } as const;
const STYPE_SHADER_SOURCE_WGSL = 2;

/** Feature enum values: the header renumbered them between Dawn mid-2025 and webgpu.h 1.0. */
export const FEATURES: Record<LibraryFlavor, { shaderF16: number; subgroups: number }> = {
  dawn: { shaderF16: 10, subgroups: 17 },
  "wgpu-native": { shaderF16: 11, subgroups: 18 },
};

const utf8 = new TextEncoder();

/** Keeps the JS memory a descriptor points into alive until the native call returns. */
export class Arena {
  readonly held: unknown[] = [];
  bytes(s: string): Uint8Array {
    const b = utf8.encode(s);
    this.held.push(b);
    return b;
  }
  words(n: number): BigUint64Array {
    const w = new BigUint64Array(n);
    this.held.push(w);
    return w;
  }
}

const addr = (p: Pointer | ArrayBufferView | null): bigint => (p === null ? 0n : BigInt(ArrayBuffer.isView(p) ? ptr(p as Uint8Array) : p));

function setU32(words: BigUint64Array, byteOffset: number, value: number): void {
  new DataView(words.buffer).setUint32(byteOffset, value, true);
}

/** WGPUInstanceDescriptor: Dawn takes {next, capabilities{next, timedWaitAnyEnable, timedWaitAnyMaxCount}}. */
export function instanceDescriptor(flavor: LibraryFlavor, a: Arena): BigUint64Array | null {
  if (flavor === "wgpu-native") return null; // its WaitAny is unusable: nothing to enable
  const d = a.words(4);
  setU32(d, 16, 1); // timedWaitAnyEnable
  d[3] = 64n; // timedWaitAnyMaxCount
  return d;
}

/** WGPURequestAdapterOptions (32 B): {next, featureLevel, powerPreference, forceFallbackAdapter, backendType, surface}. */
export function requestAdapterOptions(a: Arena): BigUint64Array {
  const d = a.words(4);
  setU32(d, 8, 2); // featureLevel Core
  setU32(d, 12, 2); // powerPreference HighPerformance
  return d;
}

/** WGPUDeviceDescriptor (144 B) asking for `features` and the adapter's own `limits`. */
export function deviceDescriptor(a: Arena, features: number[], limits: BigUint64Array, lostCb: Pointer, errorCb: Pointer): BigUint64Array {
  const d = a.words(18);
  const f = new Uint32Array(Math.max(features.length, 1));
  f.set(features);
  a.held.push(f);
  d[1] = 0n; d[2] = STRLEN; // label
  d[3] = BigInt(features.length);
  d[4] = features.length ? addr(f) : 0n;
  d[5] = addr(limits);
  d[7] = 0n; d[8] = STRLEN; // defaultQueue {next, label}
  setU32(d, 80, CALLBACK_MODE.allowProcessEvents); // deviceLostCallbackInfo {next@72, mode@80, callback@88, ud1, ud2}
  d[11] = addr(lostCb);
  d[15] = addr(errorCb); // uncapturedErrorCallbackInfo {next@112, callback@120, ud1, ud2}
  return d;
}

/** Reads the fields kiln uses from a WGPULimits filled by wgpuAdapterGetLimits (same prefix in both headers). */
export function readLimits(l: BigUint64Array) {
  const v = new DataView(l.buffer);
  const u32 = (o: number) => v.getUint32(o, true);
  const u64 = (o: number) => Number(v.getBigUint64(o, true));
  return {
    maxStorageBufferBindingSize: u64(72),
    minUniformBufferOffsetAlignment: u32(80),
    maxBufferSize: u64(96),
    maxComputeWorkgroupStorageSize: u32(124),
    maxComputeInvocationsPerWorkgroup: u32(128),
    maxComputeWorkgroupsPerDimension: u32(144),
  };
}

/** WGPUBufferDescriptor (48 B): {next, label, usage u64, size u64, mappedAtCreation}. */
export function bufferDescriptor(a: Arena, usage: number, size: number, label: string): BigUint64Array {
  const d = a.words(6);
  const l = a.bytes(label);
  d[1] = addr(l); d[2] = BigInt(l.length);
  d[3] = BigInt(usage); d[4] = BigInt(size);
  return d;
}

/** WGPUShaderModuleDescriptor (24 B) chaining a WGPUShaderSourceWGSL (32 B). */
export function shaderModuleDescriptor(a: Arena, code: string): BigUint64Array {
  const c = a.bytes(code);
  const src = a.words(4);
  setU32(src, 8, STYPE_SHADER_SOURCE_WGSL);
  src[2] = addr(c); src[3] = BigInt(c.length);
  const d = a.words(3);
  d[0] = addr(src); d[2] = STRLEN;
  return d;
}

/** WGPUComputePipelineDescriptor (80 B), auto layout, with WGPUConstantEntry[] (32 B each: next, key, f64 value). */
export function computePipelineDescriptor(a: Arena, module: Pointer, entry: string, constants: Record<string, number>, label: string): BigUint64Array {
  const keys = Object.keys(constants);
  const ce = a.words(4 * Math.max(keys.length, 1));
  const f64 = new Float64Array(ce.buffer);
  keys.forEach((k, i) => {
    const kb = a.bytes(k);
    ce[4 * i + 1] = addr(kb); ce[4 * i + 2] = BigInt(kb.length);
    f64[4 * i + 3] = constants[k];
  });
  const l = a.bytes(label), e = a.bytes(entry);
  const d = a.words(10);
  d[1] = addr(l); d[2] = BigInt(l.length);
  d[3] = 0n; // layout: auto
  d[4] = 0n; d[5] = addr(module); // compute {next, module, entryPoint, constantCount, constants}
  d[6] = addr(e); d[7] = BigInt(e.length);
  d[8] = BigInt(keys.length); d[9] = keys.length ? addr(ce) : 0n;
  return d;
}

/** WGPUBindGroupDescriptor (48 B) with WGPUBindGroupEntry[] (56 B: next, binding, buffer, offset, size, sampler, view). */
export function bindGroupDescriptor(a: Arena, layout: Pointer, buffers: { handle: Pointer; offset: number; size: number }[]): BigUint64Array {
  const e = a.words(7 * buffers.length);
  buffers.forEach((b, i) => {
    e[7 * i + 1] = BigInt(i); e[7 * i + 2] = addr(b.handle);
    e[7 * i + 3] = BigInt(b.offset); e[7 * i + 4] = BigInt(b.size);
  });
  const d = a.words(6);
  d[2] = STRLEN; d[3] = addr(layout); d[4] = BigInt(buffers.length); d[5] = addr(e);
  return d;
}

/** Reads WGPUAdapterInfo (96 B): four string views, then backendType, adapterType, vendorID, deviceID. */
export function readAdapterInfo(w: BigUint64Array) {
  const sv = (i: number) => stringView(w[i] === 0n ? null : (Number(w[i]) as Pointer), w[i + 1]);
  const u32 = new Uint32Array(w.buffer);
  return {
    vendor: sv(1), architecture: sv(3), device: sv(5), description: sv(7), backendType: u32[18], adapterType: u32[19],
    subgroupMinSize: u32[22], subgroupMaxSize: u32[23],
  };
}

/** A WGPUStringView's text (length WGPU_STRLEN means NUL-terminated). */
export function stringView(data: Pointer | null, length: bigint | number): string {
  if (!data) return "";
  const n = typeof length === "bigint" ? (length === U64_MAX ? -1 : Number(length)) : length;
  if (n < 0) return new CString(data).toString();
  return n === 0 ? "" : new TextDecoder().decode(new Uint8Array(toArrayBuffer(data, 0, n)));
}
