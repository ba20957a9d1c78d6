// The op front end, re-exported: every differentiable op kiln has.
export * from "./elementwise.ts";
export * from "./reduce.ts";
export * from "./movement.ts";
export * from "./matmul.ts";
export * from "./softmax.ts";
export * from "./norm.ts";
export * from "./attention.ts";
export * from "./embedding.ts";
export * from "./loss.ts";
export * from "./cast.ts";
export * from "./linear_cross_entropy.ts";
export { activationScope } from "./autocast.ts";
