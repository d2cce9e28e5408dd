//! The global allocator of the gateway, the mock and the floor-proxy: mimalloc, called the way its C
//! API is fastest.
//!
//! The `mimalloc` crate's wrapper hands every allocation to `mi_malloc_aligned`, whatever the layout
//! asks for. mimalloc serves that from its fast path only for blocks of at most 1 KiB, or whose size
//! class happens to be a power of two; every other buffer (hyper's read buffers, request and answer
//! bodies, `BytesMut` growth) took the over-allocating path, and freeing such a block takes the slow
//! path as well: 3 % of the gateway's CPU at 32 connections (`perf`, BENCHMARKS.md). Here a layout
//! that plain `mi_malloc` already satisfies goes to plain `mi_malloc`: on x86-64 and aarch64 its
//! blocks are aligned to 16 bytes from 16 bytes up (`MI_MAX_ALIGN_SIZE`), to 8 below, which is the
//! rule the standard library applies to the C allocator (`align <= MIN_ALIGN && align <= size`).

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// The alignment every `mi_malloc` block of at least this size has.
const MIN_ALIGN: usize = 16;

pub struct Mimalloc;

/// Whether a plain allocation of `layout.size()` bytes is aligned enough for `layout`.
#[inline]
fn plain_is_aligned(size: usize, align: usize) -> bool {
    align <= MIN_ALIGN && align <= size
}

// SAFETY: every method forwards to mimalloc's allocation functions, which return null on failure and
// otherwise a block of at least the size asked for: plain ones only where `plain_is_aligned` says the
// block's natural alignment meets the layout's, aligned ones otherwise. `mi_free` and `mi_realloc*`
// accept a block from any of them.
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let (size, align) = (layout.size(), layout.align());
        // SAFETY: plain C calls; mimalloc checks its own arguments.
        unsafe {
            if plain_is_aligned(size, align) {
                mi::mi_malloc(size).cast()
            } else {
                mi::mi_malloc_aligned(size, align).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let (size, align) = (layout.size(), layout.align());
        // SAFETY: as in `alloc`.
        unsafe {
            if plain_is_aligned(size, align) {
                mi::mi_zalloc(size).cast()
            } else {
                mi::mi_zalloc_aligned(size, align).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator (the caller's contract).
        unsafe { mi::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let align = layout.align();
        // SAFETY: `ptr` came from this allocator with `layout` (the caller's contract).
        unsafe {
            if plain_is_aligned(new_size, align) {
                mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, align).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Mimalloc;
    use std::alloc::{GlobalAlloc, Layout};

    /// Every size class from tiny to large, with every alignment a Rust type asks for (and page and
    /// cache-line ones): each block is aligned as asked, writable over its whole size, zeroed when
    /// asked, keeps its bytes when it grows or shrinks, and is freed.
    #[test]
    fn blocks_are_aligned_as_asked_and_keep_their_bytes_across_realloc() {
        let a = Mimalloc;
        let sizes = [
            1, 7, 8, 12, 16, 24, 40, 72, 1000, 1025, 1500, 3000, 8192, 20_000, 70_000, 2_000_000,
        ];
        for align in [1, 2, 4, 8, 16, 32, 64, 128, 4096] {
            for &size in &sizes {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: non-zero sizes; every block is freed with its layout.
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "size {size}, align {align}");
                    std::ptr::write_bytes(p, 0xAB, size);
                    let grown = a.realloc(p, layout, size * 3);
                    assert_eq!(grown as usize % align, 0, "grown: size {size}, align {align}");
                    assert!(std::slice::from_raw_parts(grown, size).iter().all(|&b| b == 0xAB));
                    let shrunk = a.realloc(grown, Layout::from_size_align(size * 3, align).unwrap(), size);
                    assert_eq!(shrunk as usize % align, 0, "shrunk: size {size}, align {align}");
                    assert!(std::slice::from_raw_parts(shrunk, size)
                        .iter()
                        .all(|&b| b == 0xAB));
                    a.dealloc(shrunk, layout);

                    let z = a.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0, "zeroed: size {size}, align {align}");
                    assert!(std::slice::from_raw_parts(z, size).iter().all(|&b| b == 0));
                    a.dealloc(z, layout);
                }
            }
        }
    }
}
