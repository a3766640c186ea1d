//! Handle ownership: how a C pointer relates to the Rust value behind it. Every handle type C
//! sees (`jk_client`, …) is an opaque zero-sized marker that implements [`Castable`], which names
//! the Rust value and how C holds it. All conversions between the two go through the functions
//! here, which check for NULL — no scattered `as` casts.
//!
//! Only one ownership kind exists today: [`OwnershipBox`] (made by one constructor, released by
//! exactly one `*_free` / `*_close`). Add an `Arc` kind here when a handle must be shared.
//!
//! Views ([`to_owned_view`]): a `#[repr(C)]` struct C reads directly (`jk_buffer`, `jk_entries`,
//! …) boxed together with the Rust storage its pointers point into, freed as one allocation.

use crate::error::Failure;

/// C holds a `Box<RustType>` made by [`to_boxed_mut_ptr`] and released by [`free_box`].
pub(crate) struct OwnershipBox;

/// A C handle type and the Rust value it stands for.
pub(crate) trait Castable {
    type Ownership;
    type RustType;
}

/// Moves `value` to the heap and hands C the pointer.
pub(crate) fn to_boxed_mut_ptr<C>(value: C::RustType) -> *mut C
where
    C: Castable<Ownership = OwnershipBox>,
{
    Box::into_raw(Box::new(value)).cast::<C>()
}

/// Borrows the value behind a handle; `NullArgument` naming `what` for NULL.
pub(crate) fn try_ref<'a, C>(ptr: *const C, what: &str) -> Result<&'a C::RustType, Failure>
where
    C: Castable<Ownership = OwnershipBox>,
{
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: a non-NULL handle was made by `to_boxed_mut_ptr` for this `C` (the header's
    // contract) and is not freed while borrowed (callers must not free a handle in use).
    Ok(unsafe { &*ptr.cast::<C::RustType>() })
}

/// Takes back ownership of a handle (NULL: `None`). The pointer is dangling afterwards.
pub(crate) fn free_box<C>(ptr: *mut C) -> Option<Box<C::RustType>>
where
    C: Castable<Ownership = OwnershipBox>,
{
    if ptr.is_null() {
        return None;
    }
    // SAFETY: a non-NULL handle was made by `to_boxed_mut_ptr` for this `C` and is freed once
    // (the header's contract).
    Some(unsafe { Box::from_raw(ptr.cast::<C::RustType>()) })
}

/// A C view boxed with the storage it points into; `view` is first so a pointer to the whole is
/// a pointer to the view.
#[repr(C)]
struct Owned<V, S> {
    view: V,
    storage: S,
}

/// Boxes `storage` with the view `make_view` builds from it (pointers into heap data owned by
/// `storage`, which does not move when `storage` itself moves) and returns the view pointer.
pub(crate) fn to_owned_view<V, S>(storage: S, make_view: impl FnOnce(&S) -> V) -> *mut V {
    let view = make_view(&storage);
    Box::into_raw(Box::new(Owned { view, storage })).cast::<V>()
}

/// Frees a view made by [`to_owned_view`] with the same `V` and `S` (NULL: nothing).
pub(crate) fn free_owned_view<V, S>(ptr: *mut V) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: the pointer was made by `to_owned_view::<V, S>` (each free function names the
    // storage type its constructor used) and is freed once (the header's contract).
    drop(unsafe { Box::from_raw(ptr.cast::<Owned<V, S>>()) });
}
