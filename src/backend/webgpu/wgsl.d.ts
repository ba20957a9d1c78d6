// WGSL kernels are imported as text (shaders.ts): `import src from "x.wgsl" with { type: "text" }`.
declare module "*.wgsl" {
  const source: string;
  export default source;
}
