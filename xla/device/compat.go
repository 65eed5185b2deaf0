//go:build cgo

package device

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

// go-xla v0.1.4 speaks PJRT C API 0.83 and sets each argument struct's
// struct_size to that header's size. XLA's plugins check struct_size >=
// their own size (pjrt_c_api_wrapper_impl.cc), and PJRT_ExecuteOptions grew
// in 0.97 (multi_slice_config): a plugin of 0.97 or later, as jax 0.11's
// CUDA plugin is expected to be, refuses every Execute. widen_api gives go-xla
// a copy of the plugin's function table whose Execute hands the plugin
// zero-extended copies of the arguments and options (a field a caller does
// not know is zero, which PJRT reads as unset), and whose
// GetCompiledMemoryStats does the same for the output struct that grew in
// 0.90, copying back the caller's part. Every other call goes straight to
// the plugin.
//
// The layout is given by the Go side (layout in compat.go, checked against
// go-xla's header by TestCompatLayout).
enum {
	wide = 1024, // bytes each widened struct gets: far above any PJRT struct
};

typedef void* (*pjrt_fn)(void*);

static pjrt_fn plugin_execute, plugin_memory_stats;
static size_t api_fn_offset, execute_options_offset;

static pjrt_fn* slot(void* api, int i) {
	return (pjrt_fn*)((char*)api + api_fn_offset) + i;
}

// call_wide calls fn on a zero-extended copy of args and copies the
// caller's bytes back (outputs), but for struct_size.
static void* call_wide(pjrt_fn fn, void* args) {
	size_t n = *(size_t*)args;
	if (n < sizeof(size_t) || n > wide) {
		return fn(args);
	}
	unsigned char w[wide];
	memset(w, 0, wide);
	memcpy(w, args, n);
	*(size_t*)w = wide;
	void* err = fn(w);
	memcpy((char*)args + sizeof(size_t), w + sizeof(size_t), n - sizeof(size_t));
	return err;
}

static void* wide_execute(void* args) {
	void** options = (void**)((char*)args + execute_options_offset);
	void* caller_options = *options;
	unsigned char w[wide];
	if (caller_options != NULL) {
		size_t n = *(size_t*)caller_options;
		if (n >= sizeof(size_t) && n <= wide) {
			memset(w, 0, wide);
			memcpy(w, caller_options, n);
			*(size_t*)w = wide;
			*options = w;
		}
	}
	void* err = call_wide(plugin_execute, args);
	*options = caller_options;
	return err;
}

static void* wide_memory_stats(void* args) { return call_wide(plugin_memory_stats, args); }

// widen_api returns the widened copy of api (never freed: go-xla keeps it
// for the process), or NULL when api's table is too short to hold the
// slots.
static void* widen_api(void* api, size_t fn_offset, int execute_slot, int memory_stats_slot, size_t options_offset) {
	size_t n = *(size_t*)api;
	if (n < fn_offset + (memory_stats_slot + 1) * sizeof(pjrt_fn)) {
		return NULL;
	}
	api_fn_offset = fn_offset;
	execute_options_offset = options_offset;
	void* copy = malloc(n);
	if (copy == NULL) {
		return NULL;
	}
	memcpy(copy, api, n);
	plugin_execute = *slot(api, execute_slot);
	plugin_memory_stats = *slot(api, memory_stats_slot);
	*slot(copy, execute_slot) = wide_execute;
	*slot(copy, memory_stats_slot) = wide_memory_stats;
	return copy;
}

typedef void* (*get_api_fn)(void);

// load_api dlopens path and returns its GetPjrtApi(), or NULL with *err
// set to dlerror's message.
static void* load_api(const char* path, const char** err) {
	void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		*err = dlerror();
		return NULL;
	}
	get_api_fn get = (get_api_fn)dlsym(h, "GetPjrtApi");
	if (get == NULL) {
		*err = dlerror();
		return NULL;
	}
	void* api = get();
	if (api == NULL) {
		*err = "GetPjrtApi returned NULL";
	}
	return api;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"github.com/gomlx/go-xla/pkg/pjrt"
)

// widened records the plugin registered with go-xla, under its path: the
// C side keeps one plugin's functions, so a process loads one plugin.
var widened struct {
	sync.Mutex
	path string
}

// loadPlugin loads the plugin at abs (an absolute path) through widen_api
// and registers it with go-xla under its path, once per process.
func loadPlugin(abs string) (*pjrt.Plugin, error) {
	widened.Lock()
	defer widened.Unlock()
	switch widened.path {
	case abs:
		return pjrt.GetPlugin(abs)
	case "":
	default:
		return nil, fmt.Errorf("%q is loaded in this process already; one plugin per process", widened.path)
	}
	cpath := C.CString(abs)
	defer C.free(unsafe.Pointer(cpath))
	var cerr *C.char
	api := C.load_api(cpath, &cerr)
	if api == nil {
		return nil, errors.New(C.GoString(cerr))
	}
	table, err := widenAPI(api)
	if err != nil {
		return nil, err
	}
	if err := pjrt.RegisterPreloadedPlugin(abs, uintptr(table)); err != nil {
		return nil, err
	}
	widened.path = abs
	return pjrt.GetPlugin(abs)
}

// layout is where widen_api finds what it replaces, in go-xla's PJRT
// header (0.83; the PJRT_Api only grows at its end since 0.57): PJRT_Api
// is struct_size, extension_start and a 24-byte PJRT_Api_Version, then one
// function pointer per call.
var layout = struct {
	fnOffset      int // bytes before the first function pointer
	executeSlot   int // PJRT_LoadedExecutable_Execute
	statsSlot     int // PJRT_Executable_GetCompiledMemoryStats
	optionsOffset int // PJRT_LoadedExecutable_Execute_Args.options
}{fnOffset: 40, executeSlot: 55, statsSlot: 96, optionsOffset: 24}

// widenAPI is widen_api for Go: the table go-xla is to use.
func widenAPI(api unsafe.Pointer) (unsafe.Pointer, error) {
	table := C.widen_api(api, C.size_t(layout.fnOffset), C.int(layout.executeSlot), C.int(layout.statsSlot), C.size_t(layout.optionsOffset))
	if table == nil {
		return nil, fmt.Errorf("its function table (%d bytes) is too short for PJRT 0.83", *(*C.size_t)(api))
	}
	return table, nil
}
