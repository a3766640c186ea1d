//! The panic boundary. Every exported function body runs inside [`ffi_boundary!`], which
//! catches a panic (unwinding into C is undefined behaviour) and turns it into
//! `JK_STATUS_PANIC` (with a `jk_error` when the caller asked for one) or, for functions without
//! a status, into a documented default value. Uniform, so no export can forget it.

/// Wraps an export body in `catch_unwind`.
///
/// - `ffi_boundary!(err_out = err_out; body)`: `body` returns `Result<(), Failure>`; the macro
///   returns the `jk_status` and stores the `jk_error` (or NULL on success) into `*err_out`.
/// - `ffi_boundary!(default = value; body)`: `body` returns a value; `value` after a panic.
macro_rules! ffi_boundary {
    (err_out = $err_out:expr; $($body:tt)*) => {{
        let err_out: *mut *mut $crate::error::jk_error = $err_out;
        let outcome = ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(
            || -> ::std::result::Result<(), $crate::error::Failure> { $($body)* },
        ));
        $crate::error::report(err_out, outcome)
    }};
    (default = $default:expr; $($body:tt)*) => {{
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| { $($body)* })) {
            Ok(value) => value,
            Err(_) => $default,
        }
    }};
}

/// The message of a caught panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        format!("panic in libjournalkeeper: {s}")
    } else if let Some(s) = payload.downcast_ref::<String>() {
        format!("panic in libjournalkeeper: {s}")
    } else {
        "panic in libjournalkeeper".to_string()
    }
}
