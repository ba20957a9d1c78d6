// The wasm ABI: every kernel export, re-exported from its family file. Nothing else.
export function abi_version(): i32 { return 1; }
export * from "./matmul";
export * from "./elementwise";
