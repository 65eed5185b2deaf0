//go:build cgo

package device

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

// go-xla v0.1.4 speaks PJRT C API 0.83 and sets each argument struct's
// struct_size to that header's size. XLA's plugins check struct_size >=
// their own size (pjrt_c_api_wrapper_impl.cc), and structs grow:
// PJRT_ExecuteOptions in 0.97 (multi_slice_config), the output struct of
// GetCompiledMemoryStats in 0.90. A plugin of 0.97 or later, as jax 0.11's
// CUDA plugin is expected to be, refuses every Execute from go-xla.
// widen_api gives go-xla a copy of the plugin's function table in which
// every call hands the plugin a zero-extended copy of its argument struct
// (a field the caller does not know is zero, which PJRT reads as unset)
// and copies the caller's part back (the outputs); Execute widens its
// options, the one nested struct known to have grown, the same way.
//
// The layout is given by the Go side (layout in compat.go, checked against
// go-xla's header by TestCompatLayout).
enum {
	wide = 1024,     // bytes each widened struct gets: far above any PJRT struct
	max_slots = 256, // function pointers widened; a longer table keeps the rest as they are
};

typedef void* (*pjrt_fn)(void*);

static pjrt_fn plugin_fns[max_slots];
static size_t api_fn_offset, execute_options_offset;
static int execute_slot;

static pjrt_fn* slot(void* api, int i) {
	return (pjrt_fn*)((char*)api + api_fn_offset) + i;
}

// widen copies the struct at src into w zero-extended to wide bytes, with
// struct_size wide; 0 (w untouched) when src's struct_size is not a size
// it can widen.
static int widen(unsigned char w[wide], const void* src) {
	size_t n = *(const size_t*)src;
	if (n < sizeof(size_t) || n > wide) {
		return 0;
	}
	memset(w, 0, wide);
	memcpy(w, src, n);
	*(size_t*)w = wide;
	return 1;
}

// call_wide calls fn on a zero-extended copy of args and copies the
// caller's bytes back (outputs), but for struct_size.
static void* call_wide(pjrt_fn fn, void* args) {
	unsigned char w[wide];
	if (!widen(w, args)) {
		return fn(args);
	}
	void* err = fn(w);
	memcpy((char*)args + sizeof(size_t), w + sizeof(size_t), *(size_t*)args - sizeof(size_t));
	return err;
}

static void* wide_execute(void* args) {
	void** options = (void**)((char*)args + execute_options_offset);
	void* caller_options = *options;
	unsigned char w[wide];
	if (caller_options != NULL && widen(w, caller_options)) {
		*options = w;
	}
	void* err = call_wide(plugin_fns[execute_slot], args);
	*options = caller_options;
	return err;
}

// One trampoline per slot: tr_HL calls plugin function 0xHL widened.
#define TR(h, l) static void* tr_##h##l(void* a) { return call_wide(plugin_fns[0x##h##l], a); }
#define TR16(h) TR(h,0) TR(h,1) TR(h,2) TR(h,3) TR(h,4) TR(h,5) TR(h,6) TR(h,7) \
	TR(h,8) TR(h,9) TR(h,a) TR(h,b) TR(h,c) TR(h,d) TR(h,e) TR(h,f)
TR16(0) TR16(1) TR16(2) TR16(3) TR16(4) TR16(5) TR16(6) TR16(7)
TR16(8) TR16(9) TR16(a) TR16(b) TR16(c) TR16(d) TR16(e) TR16(f)
#define P16(h) tr_##h##0, tr_##h##1, tr_##h##2, tr_##h##3, tr_##h##4, tr_##h##5, tr_##h##6, tr_##h##7, \
	tr_##h##8, tr_##h##9, tr_##h##a, tr_##h##b, tr_##h##c, tr_##h##d, tr_##h##e, tr_##h##f,
static const pjrt_fn trampolines[max_slots] = {
	P16(0) P16(1) P16(2) P16(3) P16(4) P16(5) P16(6) P16(7)
	P16(8) P16(9) P16(a) P16(b) P16(c) P16(d) P16(e) P16(f)
};

// widen_api returns the widened copy of api (never freed: go-xla keeps it
// for the process), or NULL when api's table is too short to hold
// Execute.
static void* widen_api(void* api, size_t fn_offset, int exec_slot, size_t options_offset) {
	size_t n = *(size_t*)api;
	if (n < fn_offset + (exec_slot + 1) * sizeof(pjrt_fn)) {
		return NULL;
	}
	void* copy = malloc(n);
	if (copy == NULL) {
		return NULL;
	}
	memcpy(copy, api, n);
	api_fn_offset = fn_offset;
	execute_options_offset = options_offset;
	execute_slot = exec_slot;
	for (int i = 0; i < max_slots && fn_offset + (i + 1) * sizeof(pjrt_fn) <= n; i++) {
		plugin_fns[i] = *slot(api, i);
		if (plugin_fns[i] != NULL) { // a call the plugin lacks stays NULL
			*slot(copy, i) = i == exec_slot ? wide_execute : trampolines[i];
		}
	}
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
	"os"
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

// EnvDirect, set to 1, loads plugins as go-xla does, without widen_api:
// the way back should the widened table misbehave with a real plugin (it
// has run only against a fake one so far).
const EnvDirect = "SUPFLOW_PJRT_DIRECT"

// loadPlugin loads the plugin at abs (an absolute path) through widen_api
// and registers it with go-xla under its path, once per process.
func loadPlugin(abs string) (*pjrt.Plugin, error) {
	if os.Getenv(EnvDirect) == "1" {
		return pjrt.GetPlugin(abs)
	}
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
	optionsOffset int // PJRT_LoadedExecutable_Execute_Args.options
}{fnOffset: 40, executeSlot: 55, optionsOffset: 24}

// widenAPI is widen_api for Go: the table go-xla is to use.
func widenAPI(api unsafe.Pointer) (unsafe.Pointer, error) {
	table := C.widen_api(api, C.size_t(layout.fnOffset), C.int(layout.executeSlot), C.size_t(layout.optionsOffset))
	if table == nil {
		return nil, fmt.Errorf("its function table (%d bytes) is too short for PJRT 0.83", *(*C.size_t)(api))
	}
	return table, nil
}
