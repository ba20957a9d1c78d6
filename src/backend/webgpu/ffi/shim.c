/* kiln's webgpu.h shim, compiled at start-up by bun:ffi's cc (TinyCC). bun:ffi cannot pass or
 * receive structs by value, and webgpu.h passes callback-info structs, futures and string views
 * that way: these functions take pointers / scalars and forward by value (portable across the
 * x86-64 SysV, aarch64 and Win64 ABIs), and the callback trampolines below hand JS scalars only.
 * Not a general binding: only the entry points kiln's ffi_driver.ts needs. */
#include <stdint.h>
#include <stddef.h>

typedef struct { const char* data; size_t length; } StringView;
typedef struct { void* next; uint32_t mode; void* callback; void* ud1; void* ud2; } CallbackInfo;
typedef struct { uint64_t id; } Future;
typedef struct { uint64_t words[12]; } AdapterInfo; /* WGPUAdapterInfo, 96 bytes */

typedef Future (*RequestFn)(void*, const void*, CallbackInfo);
typedef Future (*MapFn)(void*, uint64_t, size_t, size_t, CallbackInfo);
typedef Future (*WorkDoneFn)(void*, CallbackInfo);
typedef void (*InfoFreeFn)(AdapterInfo);

/* JS callbacks, set once by kiln_set_callbacks. */
static void (*js_request)(uint32_t status, void* handle, const char* msg, uint64_t len, void* ud1);
static void (*js_status)(uint32_t status, const char* msg, uint64_t len, void* ud1);
static void (*js_error)(uint32_t type, const char* msg, uint64_t len);
static void (*js_lost)(uint32_t reason, const char* msg, uint64_t len);

static void on_request(uint32_t status, void* handle, StringView msg, void* ud1, void* ud2) { js_request(status, handle, msg.data, msg.length, ud1); }
static void on_map(uint32_t status, StringView msg, void* ud1, void* ud2) { js_status(status, msg.data, msg.length, ud1); }
/* (status, message, ud1, ud2) in both Dawn (bun-webgpu 0.1.7) and upstream webgpu.h 1.0. */
static void on_done(uint32_t status, StringView msg, void* ud1, void* ud2) { js_status(status, msg.data, msg.length, ud1); }
static void on_error(void* const* device, uint32_t type, StringView msg, void* ud1, void* ud2) { js_error(type, msg.data, msg.length); }
static void on_lost(void* const* device, uint32_t reason, StringView msg, void* ud1, void* ud2) { js_lost(reason, msg.data, msg.length); }

void kiln_set_callbacks(void* request, void* status, void* error, void* lost) {
  js_request = request; js_status = status; js_error = error; js_lost = lost;
}
void* kiln_error_trampoline(void) { return (void*)on_error; }
void* kiln_lost_trampoline(void) { return (void*)on_lost; }

static CallbackInfo info(void* cb, uint32_t mode, uint64_t ud1) {
  CallbackInfo i; i.next = 0; i.mode = mode; i.callback = cb; i.ud1 = (void*)(uintptr_t)ud1; i.ud2 = 0; return i;
}
uint64_t kiln_request(void* fn, void* object, const void* options, uint32_t mode, uint64_t ud1) {
  return ((RequestFn)fn)(object, options, info((void*)on_request, mode, ud1)).id;
}
uint64_t kiln_map(void* fn, void* buffer, uint64_t mapMode, uint64_t offset, uint64_t size, uint32_t mode, uint64_t ud1) {
  return ((MapFn)fn)(buffer, mapMode, (size_t)offset, (size_t)size, info((void*)on_map, mode, ud1)).id;
}
uint64_t kiln_work_done(void* fn, void* queue, uint32_t mode, uint64_t ud1) {
  return ((WorkDoneFn)fn)(queue, info((void*)on_done, mode, ud1)).id;
}
void kiln_adapter_info_free(void* fn, const void* adapterInfo) {
  ((InfoFreeFn)fn)(*(const AdapterInfo*)adapterInfo);
}
