// Element types. The same words are used in the TS API, WGSL and AssemblyScript. kiln computes in
// f32; i32 holds token ids and targets. (f16 storage is planned with the WebGPU backend.)

export type DType = "f32" | "i32";

export const BYTES_PER_ELEMENT: Record<DType, number> = { f32: 4, i32: 4 };

export type TypedArrayFor<D extends DType> = D extends "i32" ? Int32Array : Float32Array;

export function arrayFor(dtype: DType, buffer: ArrayBuffer, length?: number): Float32Array | Int32Array {
  return dtype === "i32" ? new Int32Array(buffer, 0, length) : new Float32Array(buffer, 0, length);
}
