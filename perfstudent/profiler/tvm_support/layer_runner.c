/* Run one TVM-compiled TIR function from a shared object, outside Python.
 *
 * Used to check cross-compiled layers (e.g. aarch64 for a Raspberry Pi) under
 * qemu-user on a workstation: correctness only, emulated timings mean nothing.
 *
 *   layer_runner LIB.so SYMBOL SPEC...     SPEC = in:FILE:D0xD1x... | out:FILE:D0x...
 *
 * Every tensor is float32, C-contiguous, read from / written to a raw file.
 * The function is called with TVM FFI's packed calling convention
 * (TVMFFISafeCallType, DLTensor* arguments); the few runtime hooks a TIR
 * kernel needs (workspace allocation, error reporting) are provided here.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tvm/ffi/c_api.h>

static void* alloc_workspace(int device_type, int device_id, uint64_t nbytes, int code, int bits) {
  (void)device_type; (void)device_id; (void)code; (void)bits;
  return malloc(nbytes ? nbytes : 1);
}

static int free_workspace(int device_type, int device_id, void* ptr) {
  (void)device_type; (void)device_id;
  free(ptr);
  return 0;
}

/* Called by the kernel on a failed argument check; exported with -rdynamic. */
void TVMFFIErrorSetRaisedFromCStrParts(const char* kind, const char** parts, int32_t n) {
  fprintf(stderr, "%s:", kind);
  for (int32_t i = 0; i < n; ++i) fprintf(stderr, " %s", parts[i]);
  fprintf(stderr, "\n");
}

typedef struct { int out; char* file; int64_t shape[8]; int ndim; size_t count; } Spec;

static int parse_spec(char* text, Spec* spec) {
  char* kind = strtok(text, ":");
  spec->file = strtok(NULL, ":");
  char* dims = strtok(NULL, ":");
  if (!kind || !spec->file || !dims) return -1;
  spec->out = strcmp(kind, "out") == 0;
  spec->ndim = 0;
  spec->count = 1;
  for (char* d = strtok(dims, "x"); d && spec->ndim < 8; d = strtok(NULL, "x")) {
    spec->shape[spec->ndim++] = atoll(d);
    spec->count *= (size_t)atoll(d);
  }
  return 0;
}

static int io(const Spec* spec, float* data, int write) {
  FILE* f = fopen(spec->file, write ? "wb" : "rb");
  if (!f) { perror(spec->file); return -1; }
  size_t done = write ? fwrite(data, sizeof(float), spec->count, f)
                      : fread(data, sizeof(float), spec->count, f);
  fclose(f);
  return done == spec->count ? 0 : -1;
}

int main(int argc, char** argv) {
  if (argc < 4 || argc - 3 > 16) {
    fprintf(stderr, "usage: %s LIB.so SYMBOL in:FILE:D0xD1... out:FILE:D0x...\n", argv[0]);
    return 2;
  }
  void* lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) { fprintf(stderr, "%s\n", dlerror()); return 1; }
  void** alloc = (void**)dlsym(lib, "__TVMBackendAllocWorkspace");
  void** release = (void**)dlsym(lib, "__TVMBackendFreeWorkspace");
  if (alloc) *alloc = (void*)alloc_workspace;
  if (release) *release = (void*)free_workspace;
  char name[256];
  snprintf(name, sizeof name, "__tvm_ffi_%s", argv[2]);
  TVMFFISafeCallType func = (TVMFFISafeCallType)dlsym(lib, name);
  if (!func) { fprintf(stderr, "symbol %s not found\n", name); return 1; }
  int n = argc - 3;
  Spec specs[16];
  DLTensor tensors[16];
  TVMFFIAny args[16];
  for (int i = 0; i < n; ++i) {
    if (parse_spec(argv[3 + i], &specs[i])) { fprintf(stderr, "bad spec %s\n", argv[3 + i]); return 2; }
    float* data = calloc(specs[i].count, sizeof(float));
    if (!specs[i].out && io(&specs[i], data, 0)) return 1;
    DLTensor t = {data, {kDLCPU, 0}, specs[i].ndim, {kDLFloat, 32, 1}, specs[i].shape, NULL, 0};
    tensors[i] = t;
    memset(&args[i], 0, sizeof args[i]);
    args[i].type_index = kTVMFFIDLTensorPtr;
    args[i].v_ptr = &tensors[i];
  }
  TVMFFIAny result;
  memset(&result, 0, sizeof result);
  result.type_index = kTVMFFINone;
  if (func(NULL, args, n, &result) != 0) { fprintf(stderr, "kernel failed\n"); return 1; }
  for (int i = 0; i < n; ++i)
    if (specs[i].out && io(&specs[i], (float*)tensors[i].data, 1)) return 1;
  return 0;
}
