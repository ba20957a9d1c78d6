// Element types. The same words are used in the TS API, WGSL and AssemblyScript. kiln computes in
// f32; i32 holds token ids and targets. Half precision appears only inside kernels (WebGPU's
// opt-in f16 matmul) and in files (f16/bf16 safetensors are converted to and from f32 at the file
// boundary).

export type DType = "f32" | "i32";

export const BYTES_PER_ELEMENT: Record<DType, number> = { f32: 4, i32: 4 };
