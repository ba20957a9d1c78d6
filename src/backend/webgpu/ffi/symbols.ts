// The webgpu.h entry points kiln calls through bun:ffi, as one dlopen table. Symbols only: the
// structs they take are in structs.ts, the by-value callback plumbing in shim.c. Entry points that
// take a struct by value (RequestAdapter, MapAsync, ...) are listed with no arguments: kiln never
// calls them from JS, it only hands their address (`.ptr`) to the shim.
// Reference: webgpu.h (webgpu-native/webgpu-headers), as shipped by Dawn and wgpu-native.
import { FFIType as T } from "bun:ffi";

const P = T.ptr, U32 = T.u32, U64 = T.u64, V = T.void;
const ADDRESS_ONLY = { args: [], returns: V } as const;

export const SYMBOLS = {
  wgpuCreateInstance: { args: [P], returns: P },
  wgpuInstanceRequestAdapter: ADDRESS_ONLY,
  wgpuInstanceWaitAny: { args: [P, U64, P, U64], returns: U32 },
  wgpuInstanceProcessEvents: { args: [P], returns: V },
  wgpuInstanceRelease: { args: [P], returns: V },
  wgpuAdapterGetInfo: { args: [P, P], returns: U32 },
  wgpuAdapterInfoFreeMembers: ADDRESS_ONLY,
  wgpuAdapterGetLimits: { args: [P, P], returns: U32 },
  wgpuAdapterHasFeature: { args: [P, U32], returns: U32 },
  wgpuAdapterRequestDevice: ADDRESS_ONLY,
  wgpuAdapterRelease: { args: [P], returns: V },
  wgpuDeviceGetQueue: { args: [P], returns: P },
  wgpuDeviceCreateBuffer: { args: [P, P], returns: P },
  wgpuDeviceCreateShaderModule: { args: [P, P], returns: P },
  wgpuDeviceCreateComputePipeline: { args: [P, P], returns: P },
  wgpuDeviceCreateBindGroup: { args: [P, P], returns: P },
  wgpuDeviceCreateCommandEncoder: { args: [P, P], returns: P },
  wgpuDeviceDestroy: { args: [P], returns: V },
  wgpuDeviceRelease: { args: [P], returns: V },
  wgpuComputePipelineGetBindGroupLayout: { args: [P, U32], returns: P },
  wgpuComputePipelineRelease: { args: [P], returns: V },
  wgpuBindGroupLayoutRelease: { args: [P], returns: V },
  wgpuBindGroupRelease: { args: [P], returns: V },
  wgpuShaderModuleRelease: { args: [P], returns: V },
  wgpuCommandEncoderBeginComputePass: { args: [P, P], returns: P },
  wgpuCommandEncoderCopyBufferToBuffer: { args: [P, P, U64, P, U64, U64], returns: V },
  wgpuCommandEncoderFinish: { args: [P, P], returns: P },
  wgpuCommandEncoderRelease: { args: [P], returns: V },
  wgpuComputePassEncoderSetPipeline: { args: [P, P], returns: V },
  wgpuComputePassEncoderSetBindGroup: { args: [P, U32, P, U64, P], returns: V },
  wgpuComputePassEncoderDispatchWorkgroups: { args: [P, U32, U32, U32], returns: V },
  wgpuComputePassEncoderEnd: { args: [P], returns: V },
  wgpuComputePassEncoderRelease: { args: [P], returns: V },
  wgpuCommandBufferRelease: { args: [P], returns: V },
  wgpuQueueSubmit: { args: [P, U64, P], returns: V },
  wgpuQueueWriteBuffer: { args: [P, P, U64, P, U64], returns: V },
  wgpuQueueOnSubmittedWorkDone: ADDRESS_ONLY,
  wgpuQueueRelease: { args: [P], returns: V },
  wgpuBufferMapAsync: ADDRESS_ONLY,
  wgpuBufferGetConstMappedRange: { args: [P, U64, U64], returns: P },
  wgpuBufferUnmap: { args: [P], returns: V },
  wgpuBufferDestroy: { args: [P], returns: V },
  wgpuBufferRelease: { args: [P], returns: V },
} as const;

/** wgpu-native's extra entry point: its wgpuInstanceWaitAny is not implemented, so it polls. */
export const WGPU_NATIVE_SYMBOLS = {
  wgpuDevicePoll: { args: [P, U32, P], returns: U32 },
} as const;

/** The shim's exports (shim.c). */
export const SHIM_SYMBOLS = {
  kiln_set_callbacks: { args: [P, P, P, P], returns: V },
  kiln_error_trampoline: { args: [], returns: P },
  kiln_lost_trampoline: { args: [], returns: P },
  kiln_request: { args: [P, P, P, U32, U64], returns: U64 },
  kiln_map: { args: [P, P, U64, U64, U64, U32, U64], returns: U64 },
  kiln_work_done: { args: [P, P, U32, U64], returns: U64 },
  kiln_adapter_info_free: { args: [P, P], returns: V },
} as const;
