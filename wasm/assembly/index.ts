// The wasm ABI: every kernel export, re-exported from its family file. Nothing else.
export function abi_version(): i32 { return 1; }
export * from "./matmul";
export * from "./elementwise";
export * from "./copy";
export * from "./reduce";
export * from "./softmax";
export * from "./embedding";
export * from "./layer_norm";
export * from "./rms_norm";
export * from "./rope";
export * from "./attention";
export * from "./cross_entropy";
export * from "./adamw";
export * from "./cast";
export { half_widen_rows } from "./matmul_half";
