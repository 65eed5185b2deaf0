//go:build cgo

// Package fakeapi is a PJRT function table for the tests of xla/device's
// widened table (compat.go): its Execute records what it receives, every
// other call what any call receives and writes outputs. There is no PJRT
// plugin on the machines the tests run on.
package fakeapi

/*
#include <stdlib.h>
#include <string.h>

typedef void* (*pjrt_fn)(void*);

static size_t fn_offset, options_offset;
// What the fakes saw, read by Go (so not static).
size_t fakeapi_seen_args, fakeapi_seen_options, fakeapi_tail_nonzero;
int fakeapi_seen_launch_id;

// fake_execute records the sizes it is given, the launch id (options
// offset 48: struct_size, extension_start, 2 callback lists, 2 counts) and
// whether the options hold anything past the caller's 112 bytes.
static void* fake_execute(void* args) {
	fakeapi_seen_args = *(size_t*)args;
	unsigned char* opts = *(unsigned char**)((char*)args + options_offset);
	fakeapi_seen_options = *(size_t*)opts;
	fakeapi_seen_launch_id = *(int*)(opts + 48);
	fakeapi_tail_nonzero = 0;
	for (size_t i = 112; i < fakeapi_seen_options; i++) {
		fakeapi_tail_nonzero += opts[i] != 0;
	}
	return NULL;
}

// fake_any records the size it is given and writes an output the caller
// knows (offset 24) and one past its struct (offset 200, as a newer plugin
// writes a field added since).
static void* fake_any(void* args) {
	fakeapi_seen_args = *(size_t*)args;
	*(long long*)((char*)args + 24) = 4242;
	*(long long*)((char*)args + 200) = -1;
	return NULL;
}

static void* make_table(size_t n, size_t fn_off, int execute_slot, size_t opts_off) {
	fn_offset = fn_off;
	options_offset = opts_off;
	void* t = calloc(1, n);
	*(size_t*)t = n;
	pjrt_fn* fns = (pjrt_fn*)((char*)t + fn_off);
	for (size_t i = 0; fn_off + (i + 1) * sizeof(pjrt_fn) <= n; i++) {
		fns[i] = fake_any;
	}
	if (fn_off + (execute_slot + 1) * sizeof(pjrt_fn) <= n) {
		fns[execute_slot] = fake_execute;
	}
	return t;
}

// execute calls the table's Execute slot with 80 bytes of arguments and
// 112 bytes of options (go-xla's sizes), launch id 7; restored says the
// caller's options pointer is in place after the call.
static void execute(void* table, int slot, int* restored) {
	pjrt_fn f = ((pjrt_fn*)((char*)table + fn_offset))[slot];
	unsigned char* args = calloc(1, 80);
	unsigned char* opts = calloc(1, 112);
	*(size_t*)args = 80;
	*(unsigned char**)(args + options_offset) = opts;
	*(size_t*)opts = 112;
	*(int*)(opts + 48) = 7;
	f(args);
	*restored = *(unsigned char**)(args + options_offset) == opts;
	free(args);
	free(opts);
}

// call calls the table's slot with 96 bytes of arguments followed by a
// 128-byte guard; it returns the output at 24 and whether the guard is
// intact.
static long long call(void* table, int slot, int* guard_intact) {
	pjrt_fn f = ((pjrt_fn*)((char*)table + fn_offset))[slot];
	unsigned char* buf = malloc(96 + 128);
	memset(buf, 0, 96);
	memset(buf + 96, 0xAB, 128);
	*(size_t*)buf = 96;
	f(buf);
	*guard_intact = 1;
	for (int i = 96; i < 96 + 128; i++) {
		if (buf[i] != 0xAB) {
			*guard_intact = 0;
		}
	}
	long long out = *(long long*)(buf + 24);
	free(buf);
	return out;
}
*/
import "C"

import "unsafe"

// Layout places the fake's slots, as xla/device's layout does.
type Layout struct {
	FnOffset, ExecuteSlot, OptionsOffset int
}

// Table returns a fake PJRT_Api of size bytes (never freed); an Execute
// slot past its end is left out.
func Table(size int, l Layout) unsafe.Pointer {
	return C.make_table(C.size_t(size), C.size_t(l.FnOffset), C.int(l.ExecuteSlot), C.size_t(l.OptionsOffset))
}

// Executed is what the fake Execute received.
type Executed struct {
	ArgsSize, OptionsSize int
	LaunchID              int
	TailNonzero           int  // bytes past the caller's 112 that are not zero
	Restored              bool // the caller's options pointer is back after the call
}

// Execute calls Execute through table (go-xla's struct sizes) and reports
// what the fake saw.
func Execute(table unsafe.Pointer, slot int) Executed {
	var restored C.int
	C.execute(table, C.int(slot), &restored)
	return Executed{ArgsSize: int(C.fakeapi_seen_args), OptionsSize: int(C.fakeapi_seen_options), LaunchID: int(C.fakeapi_seen_launch_id),
		TailNonzero: int(C.fakeapi_tail_nonzero), Restored: restored != 0}
}

// Call calls slot (not Execute's) through table with a 96-byte struct and
// reports the size the fake saw, the output it wrote inside the caller's
// struct, and whether the bytes after the struct are untouched.
func Call(table unsafe.Pointer, slot int) (argsSize int, out int64, guardIntact bool) {
	var intact C.int
	o := C.call(table, C.int(slot), &intact)
	return int(C.fakeapi_seen_args), int64(o), intact != 0
}
